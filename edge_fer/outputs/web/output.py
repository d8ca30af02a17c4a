"""The browser preview as an :class:`~edge_fer.outputs.base.Output`: the one door the pipeline feeds it through.

Events, annotated frames and stats snapshots all arrive here, on this output's runner thread, and are only
stored (a reference swapped, a deque appended), so a browser never slows inference. Frames are wanted for a
camera only while someone watches its stream, which keeps the pipeline from annotating for nobody.
``/healthz`` asks ``health`` at request time: health is a question about now, not a feed.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from edge_fer.config.comms import HttpSettings
from edge_fer.events import FaceEvent
from edge_fer.outputs.base import FrameInfo, Output, StatsView
from edge_fer.outputs.web.server import HealthProvider, PreviewServer

STOP_TIMEOUT = 1.0


class PreviewOutput(Output):
    name = "http"
    queue_size = 100  # the page shows the last 50 events; more backlog than that is never seen

    def __init__(self, settings: HttpSettings, health: HealthProvider, *, cameras: Iterable[str] = ()) -> None:
        self._latest: StatsView | None = None  # replaced whole; request threads read it
        self.server = PreviewServer(settings, self._stats, health, cameras=cameras)

    def _stats(self) -> dict:
        latest = self._latest
        return latest.to_dict() if latest is not None else {}

    def start(self) -> None:
        """Bind the port and serve; PreviewError (one line) when it cannot."""
        self.server.start()

    def on_event(self, event: FaceEvent) -> None:
        self.server.offer_event(event.to_dict())

    def wants_frames(self, camera: str) -> bool:
        return self.server.watchers(camera) > 0

    def on_frame(self, frame: FrameInfo, image: np.ndarray) -> None:
        self.server.offer_frame(frame.camera, image, frame.t_mono)

    def on_stats(self, snapshot: StatsView) -> None:
        self._latest = snapshot

    def close(self) -> None:
        self.server.stop(STOP_TIMEOUT)

"""An output that records everything the pipeline hands it, for tests that check what came out.

Written against :class:`edge_fer.outputs.base.Output`, so it goes through the same runner as
stdout, MQTT and the preview. The recorder is small on purpose: tests that need an output to
fail, stall or count its threads subclass it next to the test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from edge_fer.outputs.base import Output


class ListOutput(Output):
    """Events, camera states, stats snapshots and, for the cameras in ``watch``, annotated frames.

    ``frames`` holds ``(camera, index, image)``; ``states`` holds ``(camera, state, detail)``.
    :meth:`wait_for` blocks until the recorded events satisfy a predicate, without polling.
    """

    def __init__(self, name: str = "list", watch: Iterable[str] = ()) -> None:
        self.name = name
        self.watch = set(watch)
        self.events: list = []
        self.states: list[tuple[str, str, str]] = []
        self.snapshots: list = []
        self.frames: list = []
        self.closed = False
        self._cond = threading.Condition()

    def _record(self, into: list, item: object) -> None:
        with self._cond:
            into.append(item)
            self._cond.notify_all()

    def on_event(self, event) -> None:
        self._record(self.events, event)

    def on_camera_state(self, camera: str, state: str, detail: str) -> None:
        self._record(self.states, (camera, state, detail))

    def on_stats(self, snapshot) -> None:
        self._record(self.snapshots, snapshot)

    def wants_frames(self, camera: str) -> bool:
        return camera in self.watch

    def on_frame(self, frame, image) -> None:
        self._record(self.frames, (frame.camera, frame.index, image))

    def close(self) -> None:
        self.closed = True

    def wait_for(self, predicate: Callable[[list], object], timeout: float = 10.0) -> list:
        """Wait until ``predicate(events)`` holds; the events then. AssertionError listing them if it never does."""
        with self._cond:
            ok = self._cond.wait_for(lambda: predicate(self.events), timeout)
            events = list(self.events)
        assert ok, f"timed out after {timeout:g} s; events: {[(e.type, e.track_id) for e in events]}"
        return events

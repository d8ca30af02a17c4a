"""What an output is: the one interface that stdout, video, MQTT, the browser preview and the local window share.

The pipeline hands four kinds of things to its outputs, all through :class:`~edge_fer.outputs.runner.OutputRunner`
and never to an output by name: face events, annotated frames (only for cameras some output watches), camera
connection states, and stats snapshots. Each ``on_*`` method is optional: the default does nothing, and the
runner does not even queue a kind an output leaves alone. Outputs are called from their own runner thread, so
they need no locks of their own; an output that sets ``direct`` is the exception (see there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from edge_fer.events import FaceEvent


class FrameInfo(Protocol):
    """Where a frame came from (``edge_fer.capture.frame.Frame`` satisfies this)."""

    camera: str
    index: int
    t_mono: float
    t_wall: float
    scale: tuple[float, float]  # source pixels per image pixel: event boxes are in the source's pixels


class StatsView(Protocol):
    """A stats snapshot as outputs see it (``edge_fer.runtime.stats.StatsSnapshot``): read-only."""

    due: bool  # the stats interval came round: outputs that report periodically report this one

    def to_dict(self) -> dict[str, Any]: ...


class Output:
    """One place the daemon's results go. Override only what the output needs.

    ``direct``: the output promises delivery and keeps its own bounded store (MQTT's outbox). The runner then
    calls its ``on_event``, ``on_camera_state`` and ``on_stats`` on the caller's thread, with no lossy queue in
    front, so the only place such an event can be dropped is the store's own documented bound. Those calls
    must only append under a lock and never block.
    """

    name: str = "output"
    direct: bool = False
    queue_size: int | None = None  # pending events allowed in the runner's queue; None: the runner's default

    def start(self) -> None:
        """Open connections or sockets; called once by the runner's ``start``, never by the constructor."""

    def on_event(self, event: FaceEvent) -> None:
        """One face event, in ``seq`` order per camera."""

    def wants_frames(self, camera: str) -> bool:
        """Whether annotated frames of ``camera`` are wanted now; asked per frame, so keep it cheap."""
        return False

    def on_frame(self, frame: FrameInfo, image: np.ndarray) -> None:
        """``image`` is the annotated BGR image of ``frame``; other outputs see the same array: never draw on it."""

    def on_camera_state(self, camera: str, state: str, detail: str) -> None:
        """A camera's connection state changed (``connecting``, ``connected``, ``reconnecting``...)."""

    def on_stats(self, snapshot: StatsView) -> None:
        """The pipeline's latest stats; it arrives about once a second, ``snapshot.due`` once per interval."""

    def stats_section(self) -> tuple[str, Mapping[str, Any]] | None:
        """A top-level section this output adds to the stats payload (MQTT: ``("mqtt", {...})``); any thread."""
        return None

    def flush(self, timeout: float) -> bool:
        """Push out what is buffered within ``timeout`` seconds; True when everything went out."""
        return True

    def close(self) -> None:
        """Release files, windows and connections; called once, last (also when ``start`` never ran)."""

    @property
    def problem(self) -> str | None:
        """Why the output stopped working (one line), or None while it works."""
        return None


def overrides(output: Output, method: str) -> bool:
    """Whether ``output`` does something with ``method``; the runner skips kinds left at the no-op default."""
    return getattr(type(output), method) is not getattr(Output, method)


@dataclass(frozen=True, slots=True)
class OutputStats:
    """The runner's counters for one output. ``dropped`` counts events; each other kind has its own count."""

    name: str
    delivered: int
    dropped: int
    errors: int
    queued: int
    frames_delivered: int
    frames_dropped: int
    states_dropped: int
    stats_dropped: int
    problem: str | None

    def to_dict(self) -> dict:
        return asdict(self)

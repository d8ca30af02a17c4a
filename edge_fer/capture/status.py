"""The words a capture thread reports itself in: its state and its counters.

Kept apart from the thread so that sinks (MQTT availability, the stats line) can import them
without the capture machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edge_fer.wire import WireWord


class CaptureState(WireWord):
    """Where a camera is; the value is what MQTT ``status`` topics, stats and logs carry."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"  # gave up (max_attempts) or a fatal error
    ENDED = "ended"  # a file or clip reached its end
    STOPPED = "stopped"  # the daemon is shutting down


CONNECTING, CONNECTED, RECONNECTING = CaptureState.CONNECTING, CaptureState.CONNECTED, CaptureState.RECONNECTING
FAILED, ENDED, STOPPED = CaptureState.FAILED, CaptureState.ENDED, CaptureState.STOPPED
STATES = tuple(CaptureState)
TERMINAL_STATES = frozenset({FAILED, ENDED, STOPPED})

StateCallback = Callable[[str, str, str], None]


@dataclass(frozen=True, slots=True)
class CaptureStats:
    """A consistent snapshot: ``captured == processed + skipped + dropped + queued`` always holds.

    ``queued`` counts frames accepted and not yet marked processed (``waiting`` in the queue or
    held by the consumer). ``errors`` counts failed opens and reads and rejected images;
    ``reconnects`` counts connections re-established after a loss.
    """

    camera: str
    state: str
    captured: int
    processed: int
    skipped: int
    dropped: int
    queued: int
    waiting: int
    errors: int
    reconnects: int

    @property
    def balanced(self) -> bool:
        return self.captured == self.processed + self.skipped + self.dropped + self.queued

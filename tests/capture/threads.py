"""Helpers for capture-thread tests: a consumer that records what it got, and a state log."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from edge_fer.capture.thread import CaptureThread
from edge_fer.clock import SYSTEM_CLOCK, Clock


@dataclass
class StateLog:
    """Records ``on_state`` calls; with a ``clock`` (a FakeClock) also when each came, in ``at``."""

    clock: Clock | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    at: list[float] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, camera: str, state: str, detail: str) -> None:
        with self._cond:
            self.events.append((camera, state, detail))
            self.at.append(self.clock.monotonic() if self.clock is not None else time.monotonic())
            self._cond.notify_all()

    @property
    def states(self) -> list[str]:
        with self._cond:
            return [s for _, s, _ in self.events]

    def wait_for(self, *states: str, timeout: float = 5.0) -> bool:
        """Wait until ``states`` have occurred in this order (other states may come between)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                it = iter(s for _, s, _ in self.events)
                if all(any(s == want for s in it) for want in states):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)


class Consumer(threading.Thread):
    """Takes frames from a capture thread's queue like the inference worker will; each frame
    costs ``delay`` seconds on ``clock`` (the real one unless a test drives a fake one)."""

    def __init__(
        self, capture: CaptureThread, delay: float = 0.0, limit: int | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        super().__init__(name=f"test-consumer-{capture.camera}", daemon=True)
        self.capture, self.delay, self.limit, self.clock = capture, delay, limit, clock
        self.frames = []
        self.lags = []  # at each get: how many newer frames the camera had captured already
        self.unbalanced = []

    def run(self) -> None:
        q = self.capture.queue
        while self.limit is None or len(self.frames) < self.limit:
            frame = q.get(timeout=0.05)
            stats = self.capture.stats()
            if not stats.balanced:
                self.unbalanced.append(stats)
            if frame is None:
                if q.exhausted:
                    return
                continue
            self.lags.append(stats.captured - 1 - frame.index)
            if self.delay:
                self.clock.sleep(self.delay)
            self.frames.append(frame)
            q.mark_processed()

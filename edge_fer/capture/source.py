"""The interface every frame source implements, its error type, and real-time pacing.

A source is driven by exactly one :class:`~edge_fer.capture.thread.CaptureThread`, which calls
``open``, then ``read`` until it returns None (end of stream) or raises :class:`SourceError`,
then ``close``; after a failure it may call ``open`` again. Only :meth:`Source.interrupt` is
called from another thread (the capture watchdog): it must make a ``read`` that is sleeping or
stalled inside Python return soon. Blocking inside OpenCV cannot be interrupted safely, so
OpenCV sources bound their reads with timeouts instead.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

import numpy as np

from edge_fer.clock import SYSTEM_CLOCK, Clock


class SourceError(RuntimeError):
    """A source could not be opened or read. The message is one line naming the source.

    ``permanent`` errors (a missing file, an undecodable video) are not retried: the capture
    thread goes to ``failed`` at once instead of backing off forever.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Source(ABC):
    """A stream of BGR images.

    ``is_live``: a camera or network stream, which is reconnected when it fails or ends, as
    opposed to a file, which ends. ``paced``: frames arrive at the source's real-time rate
    (live sources, files with ``realtime=True``); the capture thread drops the oldest queued
    frame for paced sources and waits for room for unpaced ones, so batch work loses nothing.
    ``fps``: the nominal rate, None when unknown (valid after ``open``).
    ``clock``: what pacing and stalls wait on (the real clock unless a test passes a fake one).
    """

    is_live: bool = True
    fps: float | None = None
    clock: Clock = SYSTEM_CLOCK

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._interrupted = threading.Event()
        self.clock = clock

    @property
    def paced(self) -> bool:
        return self.is_live

    @abstractmethod
    def open(self) -> None:
        """Acquire the device or stream; raise SourceError when it is not available."""

    @abstractmethod
    def read(self) -> np.ndarray | None:
        """The next image, None at the end of the stream; raise SourceError on failure."""

    @abstractmethod
    def close(self) -> None:
        """Release the device. Safe to call twice or after a failed open."""

    @abstractmethod
    def describe(self) -> str:
        """A short human name for logs and errors, without secrets (URL passwords are masked)."""

    def interrupt(self) -> None:
        """Ask a read that is waiting in Python to return early. Thread-safe; sticky until cleared."""
        self._interrupted.set()

    def clear_interrupt(self) -> None:
        self._interrupted.clear()

    @property
    def interrupted(self) -> bool:
        return self._interrupted.is_set()

    def _pause(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` on the source's clock; False when woken early by :meth:`interrupt`."""
        if seconds <= 0:
            return not self._interrupted.is_set()
        return not self.clock.wait(self._interrupted, seconds)

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class Pacer:
    """Releases frames on a fixed-rate schedule without accumulating debt.

    A frame is due one period after the previous one was due; when the consumer of the
    schedule falls behind by more than a period, the schedule restarts from now instead of
    releasing a burst to catch up (a live camera does not deliver old frames faster later).
    It only computes delays; the source waits them out on the same ``clock``.
    """

    def __init__(self, fps: float, clock: Clock = SYSTEM_CLOCK) -> None:
        if not fps > 0:
            raise ValueError(f"pacing needs fps > 0, got {fps}")
        self.period = 1.0 / fps
        self._clock = clock
        self._due: float | None = None

    def reset(self) -> None:
        self._due = None

    def delay(self) -> float:
        """Seconds to wait before releasing the next frame (0 when it is due), and book it."""
        now = self._clock.monotonic()
        if self._due is None or now - self._due > self.period:
            self._due = now
        wait = max(0.0, self._due - now)
        self._due += self.period
        return wait

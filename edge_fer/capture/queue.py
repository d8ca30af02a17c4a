"""The bounded hand-off between one camera's capture thread and the inference worker.

It is also that camera's ledger. Every frame the capture thread delivers is counted exactly
once, under one lock, as skipped, dropped, queued or processed, so that at any moment::

    captured == processed + skipped + dropped + queued

where ``queued`` means accepted and not yet processed: ``waiting`` in the queue, or taken by
the consumer with :meth:`FrameQueue.get` and not yet confirmed with
:meth:`FrameQueue.mark_processed`. The consumer must call ``mark_processed`` once for every
frame it got, whatever it did with it.

One worker serving several cameras passes the same ``wakeup`` event to every queue and waits
on it instead of polling::

    while not stop.is_set():
        wakeup.clear()
        got = [f for q in queues if (f := q.get_nowait()) is not None]  # one per camera: fair
        if not got:
            wakeup.wait(0.5)
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from edge_fer.capture.frame import Frame


@dataclass(frozen=True, slots=True)
class QueueCounts:
    captured: int
    processed: int
    skipped: int
    dropped: int
    waiting: int
    in_hand: int

    @property
    def queued(self) -> int:
        return self.waiting + self.in_hand


class FrameQueue:
    """Bounded FIFO of frames with drop-oldest and wait-for-room puts."""

    def __init__(self, maxsize: int = 2, *, wakeup: threading.Event | None = None) -> None:
        if maxsize < 1:
            raise ValueError(f"queue maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._frames: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._wakeup = wakeup
        self._closed = False
        self._captured = self._processed = self._skipped = self._dropped = self._in_hand = 0

    @property
    def lock(self) -> threading.Condition:
        """The ledger's lock; hold it to read these counts together with other state."""
        return self._cond

    def __len__(self) -> int:
        with self._cond:
            return len(self._frames)

    def _notify(self) -> None:
        self._cond.notify_all()
        if self._wakeup is not None:
            self._wakeup.set()

    def put_drop_oldest(self, frame: Frame) -> Frame | None:
        """Queue ``frame`` now; when full, evict and return the oldest one (counted as dropped).

        For live sources: the newest picture is the one worth analysing, and the capture
        thread must never wait for inference.
        """
        with self._cond:
            if self._closed:
                raise RuntimeError("put on a closed FrameQueue")
            self._captured += 1
            evicted = None
            if len(self._frames) >= self.maxsize:
                evicted = self._frames.popleft()
                self._dropped += 1
            self._frames.append(frame)
            self._notify()
            return evicted

    def put_wait(self, frame: Frame, stop: threading.Event, poll: float = 0.1) -> bool:
        """Queue ``frame`` once there is room; False (and counted as dropped) if ``stop`` is set first.

        For batch work on files, where losing frames would change the result. The frame is
        counted as captured only when it is queued or given up, so the ledger balances while
        this waits.
        """
        with self._cond:
            while len(self._frames) >= self.maxsize:
                if stop.is_set() or self._closed:
                    self._captured += 1
                    self._dropped += 1
                    return False
                self._cond.wait(poll)
            if self._closed:
                raise RuntimeError("put on a closed FrameQueue")
            self._captured += 1
            self._frames.append(frame)
            self._notify()
            return True

    def count_skipped(self) -> None:
        """A frame was captured but deliberately not queued (detect_every, max_fps)."""
        with self._cond:
            self._captured += 1
            self._skipped += 1

    def get(self, timeout: float | None = None) -> Frame | None:
        """The oldest frame, or None after ``timeout`` seconds or once closed and empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._frames:
                if self._closed:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            frame = self._frames.popleft()
            self._in_hand += 1
            self._cond.notify_all()  # room for a waiting put
            return frame

    def get_nowait(self) -> Frame | None:
        with self._cond:
            if not self._frames:
                return None
            self._in_hand += 1
            self._cond.notify_all()
            return self._frames.popleft()

    def mark_processed(self, count: int = 1) -> None:
        """Confirm that ``count`` frames obtained with ``get`` are done with."""
        with self._cond:
            if count < 1 or count > self._in_hand:
                raise ValueError(f"mark_processed({count}) but only {self._in_hand} frame(s) were taken from the queue")
            self._in_hand -= count
            self._processed += count

    def close(self) -> None:
        """No more frames will come: ``get`` returns the rest, then None without waiting."""
        with self._cond:
            self._closed = True
            self._notify()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    @property
    def exhausted(self) -> bool:
        """Closed and nothing left to get."""
        with self._cond:
            return self._closed and not self._frames

    @property
    def drained(self) -> bool:
        """Closed, nothing left to get, and every frame taken has been marked processed."""
        with self._cond:
            return self._closed and not self._frames and self._in_hand == 0

    def counts(self) -> QueueCounts:
        with self._cond:
            return QueueCounts(
                captured=self._captured,
                processed=self._processed,
                skipped=self._skipped,
                dropped=self._dropped,
                waiting=len(self._frames),
                in_hand=self._in_hand,
            )

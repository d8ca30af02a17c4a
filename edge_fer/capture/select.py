"""Which captured frames are worth sending to inference.

Detection is the expensive step, and a face does not change much in 33 ms, so a small CPU can
look at every Nth frame (``detect_every``) or at a fixed rate (``max_fps``). The rate limit
keeps a schedule rather than a minimum gap: with a 30 fps camera and ``max_fps: 20``, a minimum
gap of 50 ms would keep every other frame (15 fps), while the schedule keeps 2 of every 3.
Falling behind the schedule (a slow or paused source) restarts it instead of releasing a burst.
"""

from __future__ import annotations


class FrameSelector:
    # A frame this close to its slot (as a fraction of the interval) still takes it: camera
    # timestamps jitter by a millisecond or two, which must not turn 15 fps into 10.
    TOLERANCE = 0.1

    def __init__(self, detect_every: int = 1, max_fps: float | None = None) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        if max_fps is not None and not max_fps > 0:
            raise ValueError(f"max_fps must be > 0 or None, got {max_fps}")
        self.detect_every = detect_every
        self.interval = None if max_fps is None else 1.0 / max_fps
        self._next_due: float | None = None

    def keep(self, index: int, t: float) -> bool:
        """Whether frame ``index``, taken at time ``t`` (seconds, any origin), should be queued."""
        if self.detect_every > 1 and index % self.detect_every:
            return False
        interval = self.interval
        if interval is None:
            return True
        due = self._next_due
        if due is not None and t < due - self.TOLERANCE * interval:
            return False
        self._next_due = t + interval if due is None or t - due > interval else due + interval
        return True

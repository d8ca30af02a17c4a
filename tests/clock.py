"""A fake clock for the time-keeping code (pacing, frame selection, stall watchdog, backoff).

Tests that slept and then asserted on wall-clock windows were slow and flaky under load: a
60 fps schedule checked to ±30 % fails as soon as a CI neighbour takes the CPU. On a
:class:`FakeClock` time moves only when the test says so, so the same checks become exact and
take no real time. It implements :class:`edge_fer.clock.Clock`; hand it to a source
(``DemoSource(clock=clock)``) and the capture thread follows the source's clock.

Two ways to let time pass:

- ``FakeClock(auto=True)``: a thread that sleeps or waits jumps the clock to its own deadline
  at once. Right when one thread is the only one waiting on the clock (a source read in the
  test's own thread, a capture thread whose watchdog is off), wrong when two threads wait at
  once (each would push time forward for the other).
- ``FakeClock()`` (manual): waiters block, in real time, until the test calls :meth:`advance`
  far enough or their event is set. :meth:`wait_for_waiters` tells the test that the code under
  test has reached its wait, so the next :meth:`advance` is not lost in a race, and
  :meth:`run_until` steps from one waiter's deadline to the next like a discrete-event
  simulation, so each frame, retry and timeout happens at its exact time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class FakeClock:
    # How often (real seconds) a blocked ``wait`` looks at its event: a threading.Event cannot
    # notify this clock's condition when another thread sets it, so it is polled.
    EVENT_POLL = 0.002
    # Waiters wake when the fake time is this close to their deadline: ``now + (due - now)`` is
    # not always ``due`` in floating point, and a 1 ns miss must not leave a thread stuck.
    EPSILON = 1e-9

    def __init__(self, start: float = 1000.0, *, auto: bool = False) -> None:
        self._now = float(start)
        self.auto = auto
        self._cond = threading.Condition()
        self._deadlines: list[float] = []  # of the threads blocked in sleep/wait right now
        self.slept: list[float] = []  # every timeout asked for, in order: what the code waited for

    # ---- edge_fer.clock.Clock ------------------------------------------------------------

    def monotonic(self) -> float:
        with self._cond:
            return self._now

    def sleep(self, seconds: float) -> None:
        self.wait(threading.Event(), seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        with self._cond:
            timeout = max(0.0, timeout)
            self.slept.append(timeout)
            if event.is_set():
                return True
            deadline = self._now + timeout
            if self.auto:
                self._now = max(self._now, deadline)
                self._cond.notify_all()
                return event.is_set()
            self._deadlines.append(deadline)
            self._cond.notify_all()  # wakes wait_for_waiters
            try:
                while not event.is_set() and self._now < deadline - self.EPSILON:
                    self._cond.wait(self.EVENT_POLL)
                return event.is_set()
            finally:
                self._deadlines.remove(deadline)

    # ---- driving it from a test ----------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every waiter whose deadline has come."""
        if seconds < 0:
            raise ValueError(f"a monotonic clock does not go back ({seconds} s)")
        with self._cond:
            self._now += seconds
            self._cond.notify_all()

    def advance_to_next(self) -> float:
        """Jump to the earliest deadline among the blocked waiters; the seconds that passed."""
        with self._cond:
            pending = self._pending()
            if not pending:
                raise RuntimeError("nobody is waiting on the clock")
            step = max(0.0, min(pending) - self._now)
            self._now += step
            self._cond.notify_all()
            return step

    def _pending(self) -> list[float]:
        # A waiter whose deadline has come may not have woken yet: it no longer counts, so the
        # next step waits for it to block again instead of skipping its next deadline.
        return [d for d in self._deadlines if d - self.EPSILON > self._now]

    @property
    def waiters(self) -> int:
        """How many threads are blocked in sleep/wait on this clock, with their deadline still ahead."""
        with self._cond:
            return len(self._pending())

    def wait_for_waiters(self, count: int = 1, timeout: float = 5.0) -> None:
        """Block (real time) until ``count`` threads wait on the clock; AssertionError if they never do."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._pending()) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} waiter(s) on the fake clock, have {len(self._pending())}")
                self._cond.wait(min(left, 0.05))

    def run_until(
        self,
        done: Callable[[], object],
        *,
        ready: Callable[[], object] = lambda: True,
        max_step: float | None = None,
        timeout: float = 10.0,
    ) -> None:
        """Let fake time pass, one waiter deadline at a time (at most ``max_step`` per step), until ``done()``.

        A step is taken only while some thread is blocked on the clock and ``ready()`` holds
        (for example: the consumer has taken every queued frame), so nothing races ahead of
        the code under test. ``max_step`` lets threads that watch the clock without waiting
        on it (the stall watchdog) see time pass gradually. AssertionError after ``timeout``
        real seconds.
        """
        give_up = time.monotonic() + timeout
        while True:
            with self._cond:
                pending = self._pending()
            # done() after looking for waiters: what done() checks happens before the code under
            # test blocks again, so a waiter seen above means done() below is up to date.
            if done():
                return
            if time.monotonic() > give_up:
                raise AssertionError(f"fake clock ran {timeout:g} s (real) without the condition; {self!r}")
            if not pending or not ready():
                with self._cond:
                    self._cond.wait(0.002)
                continue
            with self._cond:
                step = max(0.0, min(pending) - self._now)
                if max_step is not None:
                    step = min(step, max_step)
                self._now += step
                self._cond.notify_all()

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now:.6f}, waiters={len(self._deadlines)}, auto={self.auto})"

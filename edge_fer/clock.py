"""The one seam through which time-keeping code reads and spends time.

Pacing, frame selection, the stall watchdog and reconnect backoff all depend on time passing.
Taking a :class:`Clock` (the real one by default) instead of calling :mod:`time` directly lets
their tests drive a fake clock: a 10 s stall timeout or a 30 s backoff is then checked
exactly, in milliseconds of real time, instead of by sleeping and asserting on wall-clock
windows that a loaded machine misses.

Only *measuring* and *waiting* go through the clock. Polling loops whose interval is just how
often a thread looks at something (the watchdog's poll, queue timeouts on the consumer side)
stay on real time: they decide latency, not behaviour.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the capture code needs from time: read it, and wait on it."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (any origin)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass on this clock."""
        ...

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait until ``event`` is set or ``timeout`` seconds have passed on this clock;
        True when the event is set (like :meth:`threading.Event.wait`)."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`time.sleep` and :meth:`threading.Event.wait`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        return event.wait(max(0.0, timeout))

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK: Clock = SystemClock()
"""The default for every ``clock=`` parameter; stateless, so one instance serves everyone."""

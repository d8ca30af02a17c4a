"""The one way tests wait for something that happens on another thread or process.

Sleeping a fixed time and hoping the condition holds is slow when it is generous and flaky
when it is not; polling the real condition returns as soon as it holds and fails with a
message naming what never happened. (Time that the code under test measures is better
driven with tests.clock.FakeClock; this is for waiting on real threads, sockets and processes.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01, *, what: str = "") -> T:
    """Poll ``predicate`` every ``interval`` s until it returns something true, and return that.

    AssertionError naming ``what`` after ``timeout`` s. Returning the value lets a caller wait
    for a page element or a message and use it; ``assert wait_until(...)`` also reads well.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or 'the condition'}")
        time.sleep(interval)

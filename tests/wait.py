"""The one way tests wait for something that happens on another thread or process.

Sleeping a fixed time and hoping the condition holds is slow when it is generous and flaky
when it is not; polling the real condition returns as soon as it holds and fails with a
message naming what never happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.01, what: str = "") -> bool:
    """Poll ``predicate`` every ``interval`` s until it is true; True, or AssertionError after ``timeout`` s.

    Returning True keeps ``assert wait_until(...)`` readable at call sites that prefer it.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            if predicate():  # one last look: the condition may have come true during the last nap
                return True
            name = what or getattr(predicate, "__name__", "condition")
            raise AssertionError(f"timed out after {timeout:g} s waiting for {name}")
        time.sleep(interval)
    return True

"""The clock seam: the real clock behaves like time and Event.wait, and the fake one is exact."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from edge_fer.clock import SYSTEM_CLOCK
from tests.clock import FakeClock


def test_system_clock_is_time_monotonic_and_event_wait():
    a = SYSTEM_CLOCK.monotonic()
    assert a <= time.monotonic() <= SYSTEM_CLOCK.monotonic()
    event = threading.Event()
    event.set()
    t0 = time.monotonic()
    assert SYSTEM_CLOCK.wait(event, 30) is True and time.monotonic() - t0 < 1
    assert SYSTEM_CLOCK.wait(threading.Event(), 0.001) is False
    assert SYSTEM_CLOCK.wait(threading.Event(), -1) is False  # a late deadline is no wait, not an error
    SYSTEM_CLOCK.sleep(-1)


def test_auto_fake_clock_jumps_to_each_deadline_and_records_it():
    clock = FakeClock(start=5.0, auto=True)
    clock.sleep(2.5)
    assert clock.wait(threading.Event(), 0.25) is False
    assert clock.monotonic() == 7.75 and clock.slept == [2.5, 0.25]
    event = threading.Event()
    event.set()
    assert clock.wait(event, 100) is True and clock.monotonic() == 7.75  # a set event costs no time


def test_manual_fake_clock_holds_waiters_until_advanced_or_set():
    clock = FakeClock()
    event = threading.Event()
    with ThreadPoolExecutor(2) as pool:
        timed_out = pool.submit(clock.wait, threading.Event(), 10)
        woken = pool.submit(clock.wait, event, 60)
        clock.wait_for_waiters(2)
        clock.advance(9.5)
        assert not timed_out.done() and clock.waiters == 2
        clock.advance(0.5)
        assert timed_out.result(timeout=2) is False
        assert clock.waiters == 1 and not woken.done()
        event.set()
        assert woken.result(timeout=2) is True
    assert clock.monotonic() == 1010.0
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_run_until_steps_from_deadline_to_deadline():
    clock = FakeClock(start=0.0)
    woke = []

    def ticker():
        for period in (0.1, 0.2, 0.3):
            clock.sleep(period)
            woke.append(round(clock.monotonic(), 9))

    thread = threading.Thread(target=ticker)
    thread.start()
    clock.run_until(lambda: len(woke) == 3)
    thread.join(2)
    assert woke == [0.1, 0.3, 0.6]
    with pytest.raises(AssertionError, match="without the condition"):
        clock.run_until(lambda: False, timeout=0.05)  # nobody waits: time cannot pass

"""Pacer: the fixed-rate schedule real-time sources wait on, checked exactly on a fake clock."""

import pytest

from edge_fer.capture.source import Pacer
from tests.clock import FakeClock


def test_frames_are_due_one_period_apart_from_the_first():
    clock = FakeClock(start=0.0)
    pacer = Pacer(25, clock)
    assert pacer.delay() == 0.0  # the first frame goes at once
    for _ in range(5):
        assert pacer.delay() == pytest.approx(0.04)
        clock.advance(0.04)


def test_a_late_consumer_waits_less_and_gets_no_burst():
    clock = FakeClock(start=0.0)
    pacer = Pacer(10, clock)
    pacer.delay()
    clock.advance(0.15)  # 50 ms late for the frame due at 0.1: release it now
    assert pacer.delay() == 0.0
    assert pacer.delay() == pytest.approx(0.05)  # the next keeps its slot at 0.2
    clock.advance(5.0)  # far behind: the schedule restarts from now instead of releasing 50 frames
    assert pacer.delay() == 0.0
    assert pacer.delay() == pytest.approx(0.1)


def test_reset_starts_a_new_schedule():
    clock = FakeClock(start=0.0)
    pacer = Pacer(10, clock)
    pacer.delay()
    assert pacer.delay() == pytest.approx(0.1)
    pacer.reset()
    assert pacer.delay() == 0.0


@pytest.mark.parametrize("fps", [0, -1, float("nan")])
def test_rejects_a_rate_that_is_not_positive(fps):
    with pytest.raises(ValueError):
        Pacer(fps)

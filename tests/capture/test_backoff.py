import random

import pytest

from edge_fer.capture.backoff import Backoff
from edge_fer.config.settings import ReconnectSettings


def test_delays_double_up_to_the_cap_within_the_jitter():
    backoff = Backoff(ReconnectSettings(initial_delay=0.5, max_delay=30, jitter=0.2), random.Random(0))
    delays = [backoff.next_delay() for _ in range(10)]
    bases = [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30]
    for delay, base in zip(delays, bases):
        assert base * 0.8 <= delay <= min(30, base * 1.2)
    assert delays[:6] != bases[:6]  # jittered


def test_no_jitter_is_exact_and_reset_starts_over():
    backoff = Backoff(ReconnectSettings(initial_delay=1, max_delay=5, jitter=0))
    assert [backoff.next_delay() for _ in range(5)] == [1, 2, 4, 5, 5]
    backoff.reset()
    assert backoff.next_delay() == 1


def test_exhausted_after_max_attempts_and_never_when_unlimited():
    limited = Backoff(ReconnectSettings(max_attempts=3))
    for _ in range(2):
        limited.next_delay()
    assert not limited.exhausted
    limited.next_delay()
    assert limited.exhausted
    unlimited = Backoff(ReconnectSettings(max_attempts=None))
    for _ in range(1000):
        unlimited.next_delay()
    assert not unlimited.exhausted


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_delay": 0},
        {"initial_delay": 5, "max_delay": 1},
        {"factor": 0.5},
        {"jitter": 1.0},
        {"max_attempts": 0},
        {"stable_after": -1},
    ],
)
def test_policy_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        ReconnectSettings(**kwargs)

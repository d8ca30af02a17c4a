"""Frame rates from the capture ledger: both over one window, processed never above captured."""

from __future__ import annotations

import pytest

from edge_fer.runtime.stats import FrameRates


def test_steady_rates_over_the_window():
    rates = FrameRates(window=5.0)
    for t in range(11):  # 30 frames/s captured, 20 processed, every second
        got = rates.update(float(t), 30 * t, 20 * t)
    assert got == pytest.approx((30.0, 20.0))


def test_a_drained_backlog_never_shows_processed_above_captured():
    """The reported contradictions: 30.8/29.8 while a queue drains, 29.1/0.0 after capture stopped."""
    rates = FrameRates(window=5.0)
    captured = processed = 0
    seen = []
    for t in range(1, 21):
        if t <= 10:
            captured += 30
        processed = min(captured, processed + 35)  # faster than capture while there is a backlog
        seen.append(rates.update(float(t), captured, processed))
    assert all(p <= c for c, p in seen), seen
    assert seen[11][0] > 0, "right after capture stopped the window still shows what it captured"


def test_reading_often_does_not_reset_the_window():
    rates = FrameRates(window=5.0)
    for i in range(0, 101):  # read ten times a second
        t = i / 10
        got = rates.update(t, int(30 * t), int(30 * t))
    assert got[0] == pytest.approx(30.0, abs=0.3) and got[1] == pytest.approx(30.0, abs=0.3)


def test_first_sample_gives_zero():
    assert FrameRates().update(1.0, 10, 10) == (0.0, 0.0)


def test_the_histogram_counts_every_observation_cumulatively():
    from edge_fer.runtime.stats import Window

    window = Window(size=3)
    for ms in (0.5, 3.0, 3.0, 40.0, 5000.0):
        window.add(ms)
    counts = window.histogram.counts()
    assert len(window) == 3 and counts.count == 5, "the window forgets, the histogram does not"
    by_bound = dict(zip(counts.bounds, counts.cumulative, strict=False))
    assert (by_bound[1.0], by_bound[5.0], by_bound[50.0], by_bound[2500.0]) == (1, 3, 4, 4)
    assert counts.total == pytest.approx(5046.5)

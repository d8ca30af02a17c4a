import pytest

from edge_fer.capture.select import FrameSelector


def kept(selector, times):
    return [i for i, t in enumerate(times) if selector.keep(i, t)]


def test_detect_every_keeps_every_nth_index():
    assert kept(FrameSelector(detect_every=3), [i / 30 for i in range(10)]) == [0, 3, 6, 9]


@pytest.mark.parametrize("max_fps, expected", [(10, 10), (15, 15), (20, 20), (30, 30), (60, 30)])
def test_max_fps_keeps_the_average_rate_of_a_30fps_stream(max_fps, expected):
    times = [i / 30 for i in range(30)]  # one second
    assert len(kept(FrameSelector(max_fps=max_fps), times)) == expected


def test_max_fps_tolerates_timestamp_jitter():
    times = [i / 30 + (0.002 if i % 2 else -0.002) for i in range(60)]
    assert len(kept(FrameSelector(max_fps=15), times)) == 30


def test_max_fps_restarts_after_a_gap_instead_of_bursting():
    selector = FrameSelector(max_fps=10)
    times = [0.0, 0.1, 5.0, 5.01, 5.02, 5.05, 5.1]
    assert kept(selector, times) == [0, 1, 2, 6]


def test_both_rules_combine():
    times = [i / 30 for i in range(30)]
    assert kept(FrameSelector(detect_every=2, max_fps=5), times) == [0, 6, 12, 18, 24]


@pytest.mark.parametrize("kwargs", [{"detect_every": 0}, {"max_fps": 0}, {"max_fps": -1}])
def test_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        FrameSelector(**kwargs)

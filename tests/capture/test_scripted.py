from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edge_fer.capture.source import SourceError
from tests.clips import clip_frame
from tests.clock import FakeClock
from tests.scripted import End, Fail, Gone, ScriptedSource, Stall


def test_plays_frames_failures_and_ends_across_reopens():
    a, b = clip_frame(0), clip_frame(1)
    src = ScriptedSource([a, Fail("usb reset"), b, End(), a])
    src.open()
    assert src.read() is a
    with pytest.raises(SourceError, match="scripted source scripted: usb reset"):
        src.read()
    src.close()
    src.open()  # the script continues after a reconnect
    assert src.read() is b
    assert src.read() is None
    assert src.read() is a
    assert src.read() is None  # exhausted
    with pytest.raises(SourceError, match="script finished") as info:
        src.open()
    assert info.value.permanent and src.opens == 3


def test_gone_fails_the_next_opens_then_comes_back():
    src = ScriptedSource([Gone(opens=2), clip_frame(0)], open_failures=1)
    with pytest.raises(SourceError, match="device not found"):
        src.open()
    src.open()
    with pytest.raises(SourceError, match="device disappeared"):
        src.read()
    for _ in range(2):
        with pytest.raises(SourceError, match="device not found"):
            src.open()
    src.open()
    assert src.read().shape == (240, 320, 3)


def test_stall_blocks_until_interrupted():
    clock = FakeClock()
    src = ScriptedSource([Stall(0.05), "after", Stall(30)], clock=clock)
    src.open()
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(src.read)
        clock.wait_for_waiters()
        clock.advance(0.05)
        assert first.result(timeout=2) == "after"  # non-images pass through: the capture thread rejects them
        second = pool.submit(src.read)
        clock.wait_for_waiters()
        clock.advance(29.9)
        assert not second.done() and clock.waiters == 1  # still stalled 100 ms before its end
        src.interrupt()
        with pytest.raises(SourceError, match="interrupted while stalled"):
            second.result(timeout=1)
    assert clock.slept == [0.05, 30]


def test_fps_paces_reads_from_an_iterator():
    frames = (np.full((8, 8, 3), i, np.uint8) for i in range(11))
    clock = FakeClock(auto=True)
    src = ScriptedSource(frames, fps=50, clock=clock)
    src.open()
    t0 = clock.monotonic()
    values = [int(src.read()[0, 0, 0]) for _ in range(11)]
    assert values == list(range(11))
    assert clock.monotonic() - t0 == pytest.approx(0.2) and clock.slept == pytest.approx([0.02] * 10)
    assert src.is_live and src.paced
    assert not ScriptedSource([], live=False).paced


def test_read_before_open_is_an_error():
    with pytest.raises(SourceError, match="read before open"):
        ScriptedSource([clip_frame(0)]).read()

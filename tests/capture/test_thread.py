import itertools
import threading
import time

import numpy as np
import pytest

from edge_fer.capture import CaptureThread, DemoSource, FileSource
from edge_fer.config.settings import ReconnectSettings
from tests.capture.threads import Consumer, StateLog
from tests.clips import clip_frame, frame_number, write_clip
from tests.clock import FakeClock
from tests.scripted import End, ScriptedSource, Stall
from tests.wait import wait_until


def run_to_end(capture: CaptureThread, consumer: Consumer, timeout: float = 10.0) -> None:
    for thread in (capture, consumer):
        if thread.ident is None:
            thread.start()
    capture.join(timeout)
    consumer.join(timeout)
    assert not capture.is_alive() and not consumer.is_alive()


def test_slow_consumer_on_a_live_source_drops_the_oldest_and_the_ledger_balances(stop):
    # 1.2 s on a fake clock: the camera paces at 100 fps and inference takes 50 ms a frame,
    # both on that clock, and time moves on only once both are waiting for it.
    clock = FakeClock(start=0.0)
    states = StateLog()
    source = DemoSource(width=160, height=120, fps=100, clock=clock)
    capture = CaptureThread("cam0", source, stop, on_state=states)
    consumer = Consumer(capture, delay=0.05, clock=clock)
    audits = []

    def auditor():  # samples concurrently, in real time, while the threads run
        while not stop.is_set():
            audits.append(capture.stats())
            time.sleep(0.001)

    def both_waiting():  # and the ledger is audited at every step of the fake clock
        audits.append(capture.stats())
        return clock.waiters == 2

    audit = threading.Thread(target=auditor, daemon=True)
    capture.start()
    consumer.start()
    audit.start()
    clock.run_until(lambda: clock.monotonic() >= 1.2 - 1e-9, ready=both_waiting)
    stop.set()
    capture.join(2)
    clock.run_until(lambda: not consumer.is_alive())  # it works through what was queued, then sees the end
    for t in (capture, consumer, audit):
        t.join(2)
    s = capture.stats()
    assert s.state == "stopped" and states.states == ["connecting", "connected", "stopped"]
    assert s.captured >= 120  # the camera kept its pace while inference crawled at 20 fps
    assert 20 <= s.processed <= 26 and s.dropped > 90
    assert s.balanced and s.skipped == 0 and s.queued == 0
    assert len(audits) > 100 and all(a.balanced for a in audits) and not consumer.unbalanced
    indices = [f.index for f in consumer.frames]
    assert indices == sorted(indices)
    assert sorted(consumer.lags)[len(consumer.lags) // 2] <= 2  # it got fresh frames, not ones 50 ms old


def test_batch_file_loses_nothing_even_with_a_slow_consumer(tmp_path, stop):
    path = write_clip(tmp_path / "clip.avi", frames=60, fps=30)
    states = StateLog()
    capture = CaptureThread("file", FileSource(path, realtime=False), stop, queue_size=2, on_state=states)
    assert capture.policy == "wait"
    consumer = Consumer(capture, delay=0.003)
    run_to_end(capture, consumer)
    s = capture.stats()
    assert (s.captured, s.processed, s.dropped, s.skipped, s.queued) == (60, 60, 0, 0, 0)
    assert [frame_number(f.image) for f in consumer.frames] == list(range(60))
    assert [f.index for f in consumer.frames] == list(range(60))
    assert states.states == ["connecting", "connected", "ended"]
    assert capture.state == "ended" and "after 60 frames" in capture.detail
    assert capture.finished and capture.queue.drained


def test_realtime_file_plays_at_its_frame_rate(tmp_path, stop):
    path = write_clip(tmp_path / "clip.avi", frames=31, fps=60)
    clock = FakeClock(start=0.0)
    capture = CaptureThread("file", FileSource(path, clock=clock), stop)
    assert capture.policy == "drop_oldest"
    consumer = Consumer(capture)
    capture.start()
    consumer.start()
    # A consumer that keeps up: the clock moves on only once it has taken every queued frame.
    clock.run_until(lambda: capture.state == "ended", ready=lambda: capture.stats().queued == 0)
    run_to_end(capture, consumer)
    assert clock.monotonic() == pytest.approx(0.5)  # 30 periods of 1/60 s after the first frame
    s = capture.stats()
    assert s.captured == 31 and s.processed + s.dropped == 31 and s.processed == 31
    t = [f.t_mono for f in consumer.frames]
    assert t[-1] - t[0] == pytest.approx(0.5)
    assert [b - a for a, b in itertools.pairwise(t)] == pytest.approx([1 / 60] * 30)


@pytest.mark.parametrize(
    "kwargs, processed",
    [({"detect_every": 3}, 10), ({"max_fps": 10}, 10), ({"max_fps": 20}, 20), ({"detect_every": 2, "max_fps": 5}, 5)],
)
def test_detect_every_and_max_fps_skip_on_the_stream_clock(tmp_path, stop, kwargs, processed):
    path = write_clip(tmp_path / "clip.avi", frames=30, fps=30)
    capture = CaptureThread("file", FileSource(path, realtime=False), stop, **kwargs)
    consumer = Consumer(capture)
    run_to_end(capture, consumer)
    s = capture.stats()
    assert (s.captured, s.processed, s.skipped, s.dropped) == (30, processed, 30 - processed, 0)
    assert [frame_number(f.image) for f in consumer.frames] == [f.index for f in consumer.frames]


def test_max_fps_on_a_live_source_uses_real_time(stop):
    # "Real time" is the capture clock (a fake one here), not the stream's frame numbers.
    clock = FakeClock(start=0.0)
    capture = CaptureThread("cam0", DemoSource(width=160, height=120, fps=60, clock=clock), stop, max_fps=15)
    consumer = Consumer(capture)
    capture.start()
    consumer.start()
    clock.run_until(lambda: capture.stats().captured >= 60, ready=lambda: capture.stats().queued == 0)
    stop.set()
    capture.join(2)
    consumer.join(2)
    s = capture.stats()
    rate = s.processed / max(1, s.captured) * 60
    assert s.captured == 60 and rate == 15 and s.skipped > s.processed and s.balanced
    assert [f.index for f in consumer.frames] == list(range(0, 60, 4))  # one slot every 1/15 s


def test_loop_restarts_the_file_until_stopped(tmp_path, stop):
    path = write_clip(tmp_path / "clip.mp4", frames=10)
    capture = CaptureThread("file", FileSource(path, realtime=False, loop=True), stop)
    consumer = Consumer(capture, limit=35)
    capture.start()
    consumer.start()
    consumer.join(10)
    stop.set()
    capture.join(2)
    numbers = [frame_number(f.image) for f in consumer.frames]
    assert numbers == (list(range(10)) * 4)[:35]
    assert [f.index for f in consumer.frames] == list(range(35))
    assert capture.state == "stopped"


def test_bad_frames_are_rejected_or_converted_never_passed_on(stop):
    gray = clip_frame(0)[:, :, 0].copy()
    script = [
        clip_frame(1),
        gray,
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((240, 320, 3), np.float32),
        "not an image",
        clip_frame(2),
        End(),
    ]
    capture = CaptureThread("cam0", ScriptedSource(script, live=False), stop)
    consumer = Consumer(capture)
    run_to_end(capture, consumer)
    s = capture.stats()
    assert (s.captured, s.processed, s.errors) == (3, 3, 3)
    assert [f.index for f in consumer.frames] == [0, 1, 2]
    converted = consumer.frames[1].image
    assert converted.shape == (240, 320, 3) and np.array_equal(converted[:, :, 2], gray)
    assert capture.state == "ended"


def test_stop_is_prompt_while_waiting_on_a_full_queue(tmp_path, stop):
    path = write_clip(tmp_path / "clip.avi", frames=20)
    capture = CaptureThread("file", FileSource(path, realtime=False), stop, queue_size=1)
    capture.start()
    wait_until(lambda: capture._waiting_for_room, what="the thread to block on the full queue (no consumer)")
    assert capture.stats().captured == 1
    t0 = time.monotonic()
    stop.set()
    capture.join(2)
    assert time.monotonic() - t0 < 1.0 and capture.state == "stopped"
    s = capture.stats()
    assert (s.captured, s.dropped, s.waiting) == (2, 1, 1) and s.balanced  # the frame in hand was given up


def test_stop_is_prompt_during_a_stalled_read(stop):
    clock = FakeClock()
    source = ScriptedSource([clip_frame(0), Stall(60)], clock=clock)
    capture = CaptureThread("cam0", source, stop, stall_timeout=None)
    capture.start()
    clock.wait_for_waiters()  # the read is in its 60 s stall
    t0 = time.monotonic()
    stop.set()
    capture.join(2)
    assert time.monotonic() - t0 < 1.0 and not capture.is_alive() and capture.state == "stopped"


def test_thread_names_and_argument_checks(stop):
    capture = CaptureThread("door", DemoSource(), stop)
    assert capture.name == "capture-door" and capture.daemon and capture.state == "connecting"
    capture.start()
    wait_until(lambda: any(t.name == "capture-door-watchdog" for t in threading.enumerate()))
    stop.set()
    capture.join(2)
    for kwargs in ({"detect_every": 0}, {"max_fps": 0}, {"stall_timeout": 0}, {"policy": "lifo"}):
        with pytest.raises(ValueError):
            CaptureThread("door", DemoSource(), stop, **kwargs)
    with pytest.raises(ValueError):
        CaptureThread("", DemoSource(), stop)
    assert ReconnectSettings().max_attempts is None

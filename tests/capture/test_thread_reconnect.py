import logging
import time

import pytest

from edge_fer.capture import CaptureThread, FileSource, UrlSource
from edge_fer.config.settings import ReconnectSettings
from tests.capture.threads import Consumer, StateLog
from tests.clips import clip_frame, frame_number
from tests.clock import FakeClock
from tests.scripted import End, Gone, ScriptedSource, Stall
from tests.wait import wait_until

FAST = ReconnectSettings(initial_delay=0.05, max_delay=0.2, jitter=0.0)


def frames(start: int, count: int) -> list:
    return [clip_frame(i) for i in range(start, start + count)]


def test_reconnects_after_the_camera_disappears_and_comes_back(stop):
    states = StateLog()
    source = ScriptedSource([*frames(0, 5), Gone(opens=2), *frames(5, 5), Stall(60)], fps=100)
    capture = CaptureThread("cam0", source, stop, reconnect=FAST, on_state=states, stall_timeout=None)
    consumer = Consumer(capture)
    capture.start()
    consumer.start()
    assert states.wait_for("connecting", "connected", "reconnecting", "connected")
    wait_until(lambda: len(consumer.frames) >= 10, what="the consumer to take the 10 frames")
    assert states.states == ["connecting", "connected", "reconnecting", "connected"]
    reconnecting = states.events[2][2]
    assert "device disappeared" in reconnecting and "retrying in" in reconnecting
    s = capture.stats()
    assert (s.reconnects, s.errors, source.opens) == (1, 3, 4)  # one failed read, two failed opens
    assert [frame_number(f.image) for f in consumer.frames] == list(range(10))
    assert [f.index for f in consumer.frames] == list(range(10))  # indices continue across reconnects
    stop.set()
    capture.join(2)
    assert capture.state == "stopped"


def test_gives_up_after_max_attempts(stop):
    states = StateLog()
    source = ScriptedSource([], open_failures=100)
    policy = ReconnectSettings(initial_delay=0.02, max_delay=0.05, max_attempts=3)
    capture = CaptureThread("cam0", source, stop, reconnect=policy, on_state=states)
    capture.start()
    capture.join(3)
    assert not capture.is_alive()
    assert states.states == ["connecting", "reconnecting", "failed"]
    assert capture.state == "failed" and "gave up after 3 attempts" in capture.detail
    assert source.opens == 3 and capture.stats().errors == 3 and capture.queue.exhausted


def test_a_missing_file_fails_at_once_without_retrying(tmp_path, stop):
    states = StateLog()
    capture = CaptureThread("file", FileSource(tmp_path / "gone.mp4"), stop, on_state=states)
    t0 = time.monotonic()
    capture.start()
    capture.join(3)
    assert time.monotonic() - t0 < 1
    assert states.states == ["connecting", "failed"]
    assert "gone.mp4: not found" in capture.detail


def test_a_read_error_in_a_file_is_final(stop):
    source = ScriptedSource([clip_frame(0), Gone()], live=False)
    capture = CaptureThread("file", source, stop, reconnect=FAST)
    consumer = Consumer(capture)
    capture.start()
    consumer.start()
    capture.join(3)
    assert capture.state == "failed" and "device disappeared" in capture.detail
    assert source.opens == 1 and len(consumer.frames) in (0, 1)


def test_stop_is_prompt_during_backoff(stop):
    policy = ReconnectSettings(initial_delay=20, max_delay=30)
    states = StateLog()
    capture = CaptureThread("cam0", ScriptedSource([], open_failures=5), stop, reconnect=policy, on_state=states)
    capture.start()
    assert states.wait_for("reconnecting")
    t0 = time.monotonic()
    stop.set()
    capture.join(2)
    assert time.monotonic() - t0 < 1.0 and capture.state == "stopped"


def test_watchdog_reconnects_a_stalled_live_source(stop):
    clock = FakeClock(start=0.0)
    states = StateLog(clock)
    source = ScriptedSource([*frames(0, 3), Stall(60), *frames(3, 3), Stall(60)], fps=100, clock=clock)
    capture = CaptureThread("cam0", source, stop, reconnect=FAST, stall_timeout=10, on_state=states)
    consumer = Consumer(capture)
    capture.start()
    consumer.start()
    drained = lambda: capture.stats().queued == 0  # noqa: E731 - a consumer that keeps up with 100 fps
    clock.run_until(lambda: capture.stats().captured == 3, ready=drained)  # frames 0-2
    last_frame = clock.monotonic()
    clock.wait_for_waiters()  # the read is in the 60 s stall
    clock.advance(9.9)
    # 9.9 s of silence is not a stall yet: three of the watchdog's (real-time) polls see nothing.
    assert not states.wait_for("reconnecting", timeout=0.3)
    clock.advance(0.2)
    assert states.wait_for("connected", "reconnecting", timeout=5)
    at = states.at[states.states.index("reconnecting")]
    assert at - last_frame == pytest.approx(10.1)  # 10 s of silence, not the 60 s stall
    detail = states.events[states.states.index("reconnecting")][2]
    assert "no frame for 10 s (stalled)" in detail
    clock.run_until(lambda: len(consumer.frames) >= 6, ready=drained, max_step=0.05)  # the backoff, frames 3-5
    assert states.wait_for("connected", "reconnecting", "connected")
    assert [frame_number(f.image) for f in consumer.frames] == list(range(6))
    stop.set()
    capture.join(2)


def test_watchdog_also_catches_a_source_sending_only_garbage(stop):
    def garbage():
        while True:
            yield b"\x00" * 16

    clock = FakeClock(start=0.0)
    states = StateLog(clock)
    source = ScriptedSource(garbage(), fps=50, clock=clock)
    capture = CaptureThread("cam0", source, stop, reconnect=FAST, stall_timeout=10, on_state=states)
    capture.start()
    clock.run_until(lambda: "reconnecting" in states.states, timeout=30)
    assert states.wait_for("connected", "reconnecting", timeout=5)
    connected = states.at[states.states.index("connected")]
    reconnecting = states.at[states.states.index("reconnecting")]
    assert reconnecting - connected >= 10  # a steady flow of unusable frames is silence all the same
    assert "no usable frame for 10 s" in states.events[states.states.index("reconnecting")][2]
    assert capture.stats().captured == 0 and capture.stats().errors > 10


def test_url_stream_reconnects_when_the_server_closes_it(mjpeg_server, stop):
    mjpeg_server.frames = 8
    states = StateLog()
    source = UrlSource(mjpeg_server.url, open_timeout=5, read_timeout=5)
    capture = CaptureThread("ipcam", source, stop, reconnect=FAST, on_state=states)
    consumer = Consumer(capture)
    capture.start()
    consumer.start()
    assert states.wait_for("connected", "reconnecting", "connected", timeout=10)
    wait_until(lambda: any(frame_number(f.image) >= 100 for f in consumer.frames), what="a second-connection frame")
    numbers = [frame_number(f.image) for f in consumer.frames]
    assert numbers[0] == 0 and 100 in numbers  # frames from the first and the second connection
    assert "stream ended" in states.events[states.states.index("reconnecting")][2]
    stop.set()
    capture.join(3)
    assert mjpeg_server.connections >= 2 and capture.stats().balanced


def test_a_broken_state_callback_does_not_stop_the_camera(stop):
    def callback(camera, state, detail):
        raise RuntimeError("mqtt down")

    capture = CaptureThread("cam0", ScriptedSource(frames(0, 3), live=False), stop, on_state=callback)
    consumer = Consumer(capture)
    capture.start()
    consumer.start()
    capture.join(3)
    wait_until(lambda: len(consumer.frames) >= 3, timeout=3)  # the consumer may still be taking the last frame
    assert capture.state == "ended" and len(consumer.frames) == 3


def test_a_camera_failing_all_the_time_logs_only_a_few_lines(stop, caplog):
    clock = FakeClock()
    policy = ReconnectSettings(initial_delay=0.005, max_delay=0.005, jitter=0.0)
    source = ScriptedSource([], open_failures=10_000, clock=clock)
    capture = CaptureThread("cam0", source, stop, reconnect=policy, log_interval=60)
    with caplog.at_level(logging.INFO, logger="edge_fer.capture"):
        capture.start()
        clock.run_until(lambda: source.opens >= 200)  # a second of failing every 5 ms
        stop.set()
        capture.join(2)
    lines = [r.getMessage() for r in caplog.records if r.name == "edge_fer.capture"]
    assert source.opens > 30 and capture.state == "stopped"
    assert len(lines) <= 5, lines
    assert any("device not found" in line for line in lines)
    # the first failure is in the reconnecting line, the second logged, the rest summarised on exit
    assert any(f"{source.opens - 2} more 'cam0 open' messages" in line for line in lines)


class Flaky(ScriptedSource):
    """Raises what OpenCV raises (cv2.error is not a SourceError) on some opens and reads."""

    def __init__(self, script, bad_opens):
        super().__init__(script)
        self.bad_opens = bad_opens

    def open(self):
        if self.bad_opens:
            self.bad_opens -= 1
            raise OSError("VIDIOC_STREAMON: No space left on device\nsecond line")
        super().open()


def test_unexpected_exceptions_from_a_backend_are_failures_not_crashes(stop):
    states = StateLog()
    source = Flaky([clip_frame(0), ZeroDivisionError, clip_frame(1), Stall(60)], bad_opens=1)
    source_read = source.read

    def read():
        item = source_read()
        if item is ZeroDivisionError:
            raise ZeroDivisionError("backend bug")
        return item

    source.read = read
    capture = CaptureThread("cam0", source, stop, reconnect=FAST, on_state=states, stall_timeout=None)
    consumer = Consumer(capture)
    capture.start()
    consumer.start()
    assert states.wait_for("reconnecting", "connected", "reconnecting", "connected")
    details = [d for _, s, d in states.events if s == "reconnecting"]
    assert "open raised OSError: VIDIOC_STREAMON: No space left on device;" in details[0]
    assert "read raised ZeroDivisionError: backend bug" in details[1]
    assert capture.stats().errors == 2 and capture.is_alive()


def test_a_live_stream_that_ends_is_reopened(stop):
    states = StateLog()
    source = ScriptedSource([clip_frame(0), End(), clip_frame(1), Stall(60)])
    capture = CaptureThread("cam0", source, stop, reconnect=FAST, on_state=states, stall_timeout=None)
    Consumer(capture).start()
    capture.start()
    assert states.wait_for("connected", "reconnecting", "connected")
    assert "stream ended" in states.events[states.states.index("reconnecting")][2]
    assert capture.stats().errors == 0  # an orderly end is not an error


def test_stable_connections_reset_the_attempt_count_and_short_ones_do_not(stop):
    # Every connection delivers one frame and is lost; max_attempts=2.
    def script(pause):
        while True:
            yield clip_frame(0)
            yield Stall(pause)
            yield Gone(opens=0, message="lost")

    policy = ReconnectSettings(initial_delay=0.02, max_delay=0.02, jitter=0.0, max_attempts=2, stable_after=0.15)
    short_clock, stable_clock = FakeClock(), FakeClock()
    short = CaptureThread(
        "short", ScriptedSource(script(0.0), clock=short_clock), stop, reconnect=policy, stall_timeout=None
    )
    stable = CaptureThread(
        "stable", ScriptedSource(script(0.25), clock=stable_clock), stop, reconnect=policy, stall_timeout=None
    )
    for capture in (short, stable):
        Consumer(capture).start()
        capture.start()
    short_clock.run_until(lambda: not short.is_alive())
    assert short.state == "failed" and "lost; gave up after 2 attempts" in short.detail
    stable_clock.run_until(lambda: stable.stats().reconnects >= 5)  # well past max_attempts=2
    assert stable.is_alive() and stable.state in ("connected", "reconnecting")
    assert stable.stats().reconnects >= 3

"""Log lines: journal vs terminal format, rate limiting of repeats, secrets masked."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import tempfile

import pytest

from edge_fer.logs import LineFormatter, RateLimitHandler, get_logger, journal_stream, setup_logging
from edge_fer.redact import Redactor


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(autouse=True)
def restore_logging():
    """setup_logging changes process-wide state; put it back for the other tests."""
    root, ours = logging.getLogger(), logging.getLogger("edge_fer")
    saved = (root.level, ours.level, list(root.handlers))
    yield
    for handler in [h for h in root.handlers if h not in saved[2]]:
        root.removeHandler(handler)
    root.setLevel(saved[0])
    ours.setLevel(saved[1])
    logging.captureWarnings(False)


@pytest.fixture
def limited():
    clock = Clock()
    sink = Collect()
    handler = RateLimitHandler(sink, window=60.0, clock=clock)
    log = logging.getLogger("edge_fer.test_ratelimit")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    yield log, clock, sink, handler
    log.removeHandler(handler)
    log.propagate = True


def test_a_camera_failing_every_second_logs_one_line_per_window(limited):
    log, clock, sink, handler = limited
    for _ in range(3600):  # one hour, one failure per second
        log.error("camera %s: cannot open %s", "door", "/dev/video0")
        clock.now += 1
    handler.close()
    assert sink.lines[0] == "camera door: cannot open /dev/video0"
    kind = "'camera door: cannot open /dev/video0'"  # the summary names what it counts
    assert sink.lines[1] == f"59 more {kind} messages in the last 60 s"
    assert sink.lines[2:-1] == [f"60 more {kind} messages in the last 60 s"] * 58
    assert len(sink.lines) == 61  # 3600 failures -> 61 lines, the last written at close


def test_summary_of_a_burst_is_written_when_the_window_has_passed(limited):
    log, clock, sink, _ = limited
    for _ in range(5):
        log.warning("MQTT publish failed: %s", "timeout")
        clock.now += 0.2
    log.info("stats: 14.9 fps")  # INFO is never limited
    clock.now += 61
    log.info("stats: 15.0 fps")  # any record lets expired summaries out
    assert sink.lines == [
        "MQTT publish failed: timeout",
        "stats: 14.9 fps",
        "4 more 'MQTT publish failed: timeout' messages in the last 62 s",
        "stats: 15.0 fps",
    ]
    clock.now += 61
    log.warning("MQTT publish failed: %s", "timeout")  # a new window: first one shows again
    assert sink.lines[-1] == "MQTT publish failed: timeout"


def test_kinds_are_kept_apart_by_template_and_rate_key_not_by_level_or_logger(limited):
    log, _, sink, _ = limited
    for _ in range(3):
        log.warning("a %s", 1)
        log.error("a %s", 1)
        log.warning("b")
        log.warning("cam %s lost", "x", extra={"rate_key": "x"})
        log.warning("cam %s lost", "y", extra={"rate_key": "y"})
        log.warning("always", extra={"rate_limit": False})
        logging.getLogger("edge_fer.test_ratelimit.other").warning("b")
    assert sink.lines == ["a 1", "b", "cam x lost", "cam y lost", "always", "always", "always"]


def test_two_different_problems_through_one_logger_and_one_template_are_both_written(limited):
    """`log.error("%s", exc)` used to be one kind: a second, different MQTT problem within the window was
    hidden, and its summary was labelled '%s'."""
    log, clock, sink, handler = limited
    for second in range(120):
        log.error("%s", "MQTT: broker refused the connection: not authorised")
        if second == 5:
            log.error("%s", "MQTT: TLS handshake failed: certificate expired")
        clock.now += 1
    handler.close()
    refused, expired = "MQTT: broker refused the connection: not authorised", "MQTT: TLS handshake failed: ..."
    assert sink.lines[:2] == [refused, expired.replace("...", "certificate expired")]
    assert sink.lines[2:] == [
        f"59 more '{refused}' messages in the last 60 s",
        f"60 more '{refused}' messages in the last 60 s",
    ]


def test_numbers_do_not_make_each_repeat_a_new_kind_but_names_with_digits_stay_apart(limited):
    log, clock, sink, handler = limited
    for frame in range(100):
        log.error("camera %s: frame %d could not be processed (%.1f ms)", "cam0", frame, frame * 1.5)
        log.error("camera %s: frame %d could not be processed (%.1f ms)", "cam1", frame, frame * 1.5)
    clock.now += 61
    handler.flush()
    assert sink.lines == [
        "camera cam0: frame 0 could not be processed (0.0 ms)",
        "camera cam1: frame 0 could not be processed (0.0 ms)",
        "99 more 'camera cam0: frame N could not be processed (N ms)' messages in the last 61 s; "
        "the latest: camera cam0: frame 99 could not be processed (148.5 ms)",
        "99 more 'camera cam1: frame N could not be processed (N ms)' messages in the last 61 s; "
        "the latest: camera cam1: frame 99 could not be processed (148.5 ms)",
    ]


def test_a_flood_of_ever_new_kinds_shares_one_window_past_the_kind_limit(limited):
    """Messages can carry outside text (a topic name); 100,000 different ones must not grow the table."""
    from edge_fer.logs import MAX_KINDS, OVERFLOW_KIND

    log, clock, sink, handler = limited
    for i in range(100_000):
        log.warning("MQTT: no handler for topic %s", f"x/{chr(65 + i % 26)}{i:x}")
    assert len(handler.throttle._windows) == MAX_KINDS + 1  # a private view: the table's own size
    assert len(sink.lines) == MAX_KINDS + 1
    clock.now += 61
    handler.flush()
    assert sink.lines[-1].startswith(f"{100_000 - MAX_KINDS - 1} more '{OVERFLOW_KIND}' messages in the last 61 s")


def test_window_zero_turns_limiting_off(limited):
    log, _, sink, handler = limited
    handler.window = 0
    for _ in range(3):
        log.error("same")
    assert sink.lines == ["same"] * 3


def record(msg: str, level: int = logging.WARNING, name: str = "edge_fer.capture", exc_info=None) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, None, exc_info)


def test_journal_lines_carry_priority_and_no_timestamp():
    fmt = LineFormatter(journal=True, redactor=Redactor())
    assert fmt.format(record("camera door lost")) == "<4>WARNING capture: camera door lost"
    assert fmt.format(record("up", logging.INFO, "edge_fer")) == "<6>INFO edge_fer: up"
    try:
        raise ValueError("boom")
    except ValueError:
        text = fmt.format(record("failed", logging.ERROR, exc_info=sys.exc_info()))
    lines = text.split("\n")
    assert lines[0] == "<3>ERROR capture: failed"
    assert all(line.startswith("<3>  ") for line in lines[1:]) and lines[-1] == "<3>  ValueError: boom"


def test_terminal_lines_start_with_a_timestamp():
    text = LineFormatter(journal=False, redactor=Redactor()).format(record("camera door lost"))
    stamp, rest = text[:23], text[24:]
    assert stamp[4] == "-" and stamp[13] == ":" and stamp[19] == "."
    assert rest == "WARNING capture: camera door lost"


def test_secrets_never_reach_a_log_line_even_in_tracebacks():
    redactor = Redactor()
    redactor.add("broker-pa55")
    stream = io.StringIO()
    handler = setup_logging("debug", stream=stream, journal=False, redactor=redactor)
    try:
        log = get_logger("mqtt")
        log.info("connecting with password %s", "broker-pa55")
        log.warning("camera url rtsp://admin:camera-pw@10.0.0.9/live unreachable")
        try:
            raise ConnectionError("auth failed for broker-pa55")
        except ConnectionError:
            log.exception("giving up")
    finally:
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert "broker-pa55" not in text and "camera-pw" not in text
    assert "connecting with password ***" in text
    assert "rtsp://admin:***@10.0.0.9/live" in text
    assert "ConnectionError: auth failed for ***" in text


def test_setup_logging_replaces_its_own_handler_and_sets_levels():
    first = setup_logging("warning", stream=io.StringIO(), journal=False)
    second = setup_logging("debug", stream=io.StringIO(), journal=False)
    root = logging.getLogger()
    try:
        assert first not in root.handlers and second in root.handlers
        assert logging.getLogger("edge_fer").level == logging.DEBUG
        assert get_logger("capture").name == "edge_fer.capture"
    finally:
        root.removeHandler(second)
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        setup_logging("loud", stream=io.StringIO())


def test_replacing_a_handler_whose_stream_was_closed_writes_no_logging_error(capsys):
    gone = io.StringIO()
    setup_logging("info", stream=gone, journal=False)
    log = logging.getLogger("edge_fer.test_closed")
    for _ in range(3):
        log.warning("stdout: standard output is closed")  # held back: a summary is pending
    gone.close()
    kept = io.StringIO()
    setup_logging("info", stream=kept, journal=False)
    log.warning("after")
    assert "Logging error" not in capsys.readouterr().err
    assert "after" in kept.getvalue()


def test_journal_is_detected_only_when_journal_stream_names_our_stderr():
    with tempfile.TemporaryFile() as f:
        st = os.fstat(f.fileno())
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        code = "from edge_fer.logs import journal_stream; print(journal_stream())"
        same = subprocess.run(
            [sys.executable, "-c", code], env=env, stderr=f, capture_output=False, stdout=subprocess.PIPE
        )
        assert same.stdout.decode().strip() == "True"
        other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
        assert other.stdout.decode().strip() == "False"  # stderr is a pipe, not the journal's stream
    assert not journal_stream(io.StringIO())

"""The one log throttle: keyed by message kind, summaries that name the kind, on an injected clock."""

from __future__ import annotations

import logging

import pytest

from edge_fer.logs import Throttle

LOGGER = "edge_fer.test.throttle"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def throttle(caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    clock = Clock()
    return Throttle(60, logger=logging.getLogger(LOGGER), clock=clock), clock, caplog


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_a_flood_of_one_kind_leaves_one_message_and_one_summary_per_window(throttle):
    t, clock, caplog = throttle
    for tenth in range(6000):  # ten minutes, ten refusals a second
        clock.now = tenth / 10
        t.log("mqtt connect refused", logging.ERROR, "MQTT: broker refused the connection (#%d)", tenth)
    t.flush()
    out = lines(caplog)
    assert out[0] == "MQTT: broker refused the connection (#0)"
    assert out[1] == "599 more 'mqtt connect refused' messages in the last 60 s"
    assert out[2] == "MQTT: broker refused the connection (#600)"
    assert len(out) == 20  # a message and a summary per minute
    assert all(r.levelno == logging.ERROR for r in caplog.records)


def test_two_problems_in_one_window_are_both_logged(throttle):
    t, clock, caplog = throttle
    for i in range(100):
        clock.now = i * 0.1
        t.log("mqtt connect refused", logging.ERROR, "refused")
        t.log("mqtt buffer full", logging.WARNING, "buffer full")
    clock.now = 30
    t.flush("mqtt buffer full")
    assert lines(caplog) == ["refused", "buffer full", "99 more 'mqtt buffer full' messages in the last 30 s"]
    assert t.log("mqtt buffer full", logging.WARNING, "buffer full again")  # flushed: logged at once
    assert not t.log("mqtt connect refused", logging.ERROR, "refused")  # still within its window


def test_one_logger_many_kinds_and_arguments_pass_through(throttle):
    t, _, caplog = throttle
    err = ValueError("boom")
    assert t.log("cam0 read failed", logging.WARNING, "%s: read failed", "cam0")
    assert t.log("cam1 read failed", logging.WARNING, "%s: read failed", "cam1")
    assert t.log("output video failed", logging.ERROR, "video failed", exc_info=err)
    assert lines(caplog) == ["cam0: read failed", "cam1: read failed", "video failed"]
    assert caplog.records[-1].exc_info[1] is err


def test_sweep_writes_passed_windows_and_keeps_a_steady_kind_held(throttle):
    t, clock, caplog = throttle
    t.log("disk full", logging.ERROR, "disk full")
    t.log("disk full", logging.ERROR, "disk full")
    clock.now = 59
    t.sweep()
    assert lines(caplog) == ["disk full"]
    clock.now = 60
    t.sweep()
    assert lines(caplog)[-1] == "1 more 'disk full' message in the last 60 s"
    assert not t.log("disk full", logging.ERROR, "disk full")  # held for the next window
    clock.now = 70
    t.sweep(force=True)  # at close: whatever is held is said
    assert lines(caplog)[-1] == "1 more 'disk full' message in the last 10 s"


def test_window_zero_never_holds_anything_back(throttle):
    t, _, caplog = throttle
    t.window = 0
    assert all(t.log("same", logging.WARNING, "same") for _ in range(3))
    assert lines(caplog) == ["same"] * 3

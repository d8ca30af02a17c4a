"""The durable outbox under a real daemon: SIGKILL with the broker down, a restart, the broker back, and every
numbered event of both runs delivered in order; and one queue per device.

The collector is a persistent-session QoS 1 subscriber registered before the daemon starts, so a missing seq
is the daemon's loss, not the test's. The daemon prints every event on stdout only after the MQTT output has
committed it (MQTT is the first output), so every printed event must arrive."""

from __future__ import annotations

import json
import re
import signal

import pytest

from tests.mosquitto import Subscriber, free_port
from tests.reliability.harness import DaemonProcess, first_occurrences
from tests.reliability.test_mqtt_faults import COLLECTOR, FACE, config, register_session

pytestmark = pytest.mark.slow


def by_run(received: list[dict]) -> dict[str, list[int]]:
    runs: dict[str, list[int]] = {}
    for e in received:
        runs.setdefault(e["run_id"], []).append(e["seq"])
    return runs


def test_sigkill_with_the_broker_down_then_a_restart_delivers_every_seq_of_both_runs(make_broker, tmp_path):
    broker = make_broker(persistence=True)
    register_session(broker.port)
    broker.stop()
    path = config(tmp_path, broker.url)
    with DaemonProcess("--config", str(path)) as first:
        first.wait_events(40)
        first.wait_stderr("cannot connect")
        first.signal(signal.SIGKILL)  # no shutdown at all: what a power cut or the watchdog leaves
        assert first.wait(10) == -signal.SIGKILL
    printed1 = first.events()
    run1 = printed1[0]["run_id"]
    broker.start()
    sub = Subscriber(broker.port, [FACE], client_id=COLLECTOR).start()
    try:
        with DaemonProcess("--config", str(path)) as second:
            left = second.wait_stderr("from an earlier run are sent first")
            second.wait_stderr("MQTT: connected to", timeout=30)
            second.wait_events(30)
            second.signal(signal.SIGTERM)
            assert second.wait(20) == 0, second.stderr
        printed2 = second.events()
        run2 = printed2[0]["run_id"]
        sub.wait_for(lambda ms: len(by_run([json.loads(m.payload) for m in ms]).get(run2, ())) >= len(printed2), 30)
        received = [json.loads(m.payload) for m in sub.on(FACE)]
    finally:
        sub.stop()
    runs = by_run(received)
    assert set(runs) == {run1, run2}
    seqs1, seqs2 = runs[run1], runs[run2]
    stored = max(seqs1) + 1
    assert int(re.search(r"(\d+) messages from an earlier run", left.text).group(1)) >= stored
    assert sorted(set(seqs1)) == list(range(stored)), "0 gaps in the killed run"
    assert stored >= len(printed1), "every event printed before the kill was stored"
    assert first_occurrences(seqs1) == list(range(stored)), "the killed run's events arrive in order"
    assert sorted(set(seqs2)) == list(range(len(printed2))), "0 gaps in the second run"
    order = [e["run_id"] for e in received]
    assert max(i for i, r in enumerate(order) if r == run1) < order.index(run2), "what was left goes first"
    assert "Traceback" not in first.stderr + second.stderr


def test_a_second_daemon_on_the_same_queue_says_so_in_one_line_and_exits_78(tmp_path):
    url = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens: the queue is what matters
    path = config(tmp_path, url)
    with DaemonProcess("--config", str(path)) as first:
        first.wait_events(5)
        with DaemonProcess("--config", str(path)) as second:
            assert second.wait(60) == 78
        first.signal(signal.SIGTERM)
        assert first.wait(20) == 0, first.stderr
    lines = [line.text for line in second.err if line.text.strip()]  # before the models load: nothing else
    assert len(lines) == 1 and "in use by another edge-fer" in lines[0] and f"pid {first.pid}" in lines[0], lines


def test_sigterm_with_the_broker_unreachable_keeps_the_events_and_says_where(tmp_path):
    url = f"mqtt://127.0.0.1:{free_port()}"
    with DaemonProcess("--config", str(config(tmp_path, url))) as daemon:
        daemon.wait_events(20)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.stderr
    line = daemon.wait_stderr("MQTT: closed;").text
    counts = re.search(r"queued (\d+): acknowledged (\d+), dropped (\d+), not delivered (\d+) \(kept in ", line)
    assert counts, line
    queued, acked, dropped, undelivered = map(int, counts.groups())
    assert queued == acked + dropped + undelivered and undelivered >= len(daemon.events()) and acked == 0

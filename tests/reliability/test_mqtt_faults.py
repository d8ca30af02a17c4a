"""The broker misbehaves under a running daemon: absent at start, restarted mid-run, gone at SIGTERM, and the
daemon killed outright. Real daemon processes, a real Mosquitto, and a persistent-session QoS 1 subscriber
that registers its session before the daemon starts and collects afterwards, so that any missing ``seq`` is
the daemon's loss and not the test's."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest

from edge_fer.runtime.pipeline import FLUSH_TIMEOUT
from tests.mosquitto import Subscriber, free_port
from tests.reliability.harness import DaemonProcess, check_seqs, first_occurrences, write_config

DEVICE = "relcam"
FACE = f"edge-fer/{DEVICE}/cam0/face"
AVAILABILITY = f"edge-fer/{DEVICE}/availability"
COLLECTOR = "reliability-collector"

pytestmark = pytest.mark.slow


def config(
    tmp_path: Path, url: str, *, source: str = "demo", keepalive: int = 5, outbox: dict | None = None, **camera
) -> Path:
    mqtt = {
        "url": url,
        "keepalive": keepalive,
        "client_id": "edge-fer-reliability",
        **({"outbox": outbox} if outbox else {}),
    }
    return write_config(
        tmp_path / "edge-fer.yaml",
        {
            "device": DEVICE,
            "cameras": [{"name": "cam0", "source": source, **camera}],
            "events": {"mode": "every_frame"},
            "output": {"stdout": "on"},  # the daemon's own record of every event, to compare MQTT against
            "mqtt": mqtt,
        },
    )


def register_session(port: int) -> None:
    """Subscribe once with clean session off, then leave: the broker queues face events for us from now on."""
    Subscriber(port, [FACE], client_id=COLLECTOR).start().stop()


def collect(port: int, count: int, timeout: float = 30.0) -> list[dict]:
    sub = Subscriber(port, [FACE], client_id=COLLECTOR).start()
    try:
        return [json.loads(m.payload) for m in sub.wait_count(FACE, count, timeout)]
    finally:
        sub.stop()


def test_broker_down_at_start_buffers_then_delivers_every_event_in_order(make_broker, notify, tmp_path):
    broker = make_broker(persistence=True)
    register_session(broker.port)
    broker.stop()  # the session is saved in the broker's database; no broker now
    with DaemonProcess("--config", str(config(tmp_path, broker.url)), env=notify.env) as daemon:
        notify.wait_for("READY=1")  # systemd hears READY although the broker is away
        daemon.wait_events(20)
        daemon.wait_stderr("cannot connect")
        time.sleep(2.0)  # the behaviour under test: the broker stays away while events are buffered
        broker.start()
        connected = daemon.wait_stderr("MQTT: connected to", timeout=30)
        waiting = int(re.search(r"\((\d+) messages waiting\)", connected.text).group(1))
        assert waiting >= 20, connected.text  # what was buffered while the broker was away
        daemon.wait_events(len(daemon.events()) + 20)  # and events keep flowing once connected
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(20) == 0, daemon.stderr
    printed = daemon.events()
    received = collect(broker.port, len(printed))
    assert [e["seq"] for e in received] == [e["seq"] for e in printed] == list(range(len(printed)))
    assert {e["run_id"] for e in received} == {printed[0]["run_id"]}
    assert "Traceback" not in daemon.stderr


def test_broker_restarted_mid_run_loses_no_seq(make_broker, face_clip, tmp_path):
    """The acceptance check: every_frame events of a 300-frame real-time clip, broker SIGTERMed in the
    middle and back 2 s later; the subscriber gets every seq 0..N-1, duplicates only from the re-send."""
    broker = make_broker(persistence=True)
    register_session(broker.port)
    path = config(tmp_path, broker.url, source=str(face_clip), realtime=True)
    with DaemonProcess("--config", str(path)) as daemon:
        daemon.wait_events(75, timeout=60)  # well into the clip (about 2.5 s of its 10)
        broker.stop()  # SIGTERM: a clean broker exit that saves queued messages
        down_at = len(daemon.events())
        time.sleep(2.0)  # the behaviour under test: the broker is away 2 s while the clip plays
        broker.start()
        daemon.wait_stderr_count("MQTT: connected to", 2, timeout=10)  # reconnected while the clip plays
        assert daemon.wait(60) == 0, daemon.stderr  # the clip ended; the daemon drained and flushed
    printed = daemon.events()
    n = len(printed)
    assert [e["seq"] for e in printed] == list(range(n))
    assert n > down_at + 30, "events were produced after the broker came back"
    assert sum(e["type"] == "face" for e in printed) >= 150, "most of the 300 frames gave a face event"
    assert len(re.findall(r"MQTT: connected to", daemon.stderr)) == 2
    received = collect(broker.port, n)
    seqs = [e["seq"] for e in received]
    missing, duplicates = check_seqs(seqs, n - 1)
    assert missing == [], f"lost seqs {missing[:20]}"
    assert first_occurrences(seqs) == list(range(n)), "nothing arrived out of order"
    assert duplicates <= 20, f"{duplicates} duplicates: more than one in-flight window re-sent"


def test_sigterm_while_the_broker_is_unreachable_exits_0_quickly_and_counts_the_loss(tmp_path):
    """Memory mode: what was not delivered is lost, said in one line, and the exit status says so (75)."""
    url = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    path = config(tmp_path, url, outbox={"durable": False})
    with DaemonProcess("--config", str(path)) as daemon:
        daemon.wait_events(20)
        daemon.wait_stderr("cannot connect")
        t0 = time.monotonic()
        daemon.signal(signal.SIGTERM)
        rc = daemon.wait(30)
        elapsed = time.monotonic() - t0
    assert rc == 75, daemon.stderr
    assert elapsed < 5.0 + FLUSH_TIMEOUT, f"shutdown took {elapsed:.1f} s"
    lost = re.search(r"MQTT: closed; .* not delivered (\d+) \(lost", daemon.stderr)
    assert lost, daemon.stderr[-2000:]
    assert int(lost.group(1)) >= len(daemon.events()), "every printed event is counted as undelivered"
    assert "Traceback" not in daemon.stderr


def test_sigkill_fires_the_last_will_within_the_keepalive_window(make_broker, tmp_path):
    broker = make_broker()
    sub = Subscriber(broker.port, [AVAILABILITY]).start()
    keepalive = 2
    try:
        with DaemonProcess("--config", str(config(tmp_path, broker.url, keepalive=keepalive))) as daemon:
            sub.wait_for(lambda ms: any(m.payload == b"online" for m in ms), timeout=30)
            daemon.wait_events(5)
            t0 = time.monotonic()
            daemon.signal(signal.SIGKILL)
            sub.wait_for(lambda ms: ms[-1].payload == b"offline", timeout=1.5 * keepalive + 2)
            elapsed = time.monotonic() - t0
            assert daemon.wait(10) == -signal.SIGKILL
    finally:
        sub.stop()
    assert elapsed <= 1.5 * keepalive + 1.0
    assert [m.payload for m in sub.on(AVAILABILITY)] == [b"online", b"offline"]

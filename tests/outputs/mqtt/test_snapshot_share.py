"""Snapshots in the MQTT outbox: their own byte share in both the memory and the durable outbox, so a flood of
pictures drops the oldest pictures (counted) and never an event; sent after the events waiting; kept across a
reopen of the file; and a queue file of the format before snapshots upgraded in place with its events."""

from __future__ import annotations

import sqlite3
import time

import pytest

from edge_fer.outputs.mqtt.outbox import Message, Outbox
from edge_fer.outputs.mqtt.store import DurableOutbox
from tests.clock import FakeClock

FACE, SNAP = "p/d/c/face", "p/d/c/snapshot"


def ev(i: int) -> Message:
    return Message(FACE, str(i).encode())


def shot(i: int, size: int = 1000) -> Message:
    return Message(SNAP, str(i).encode().ljust(size, b"\xff"), 1, snapshot=True)


def drain(box) -> list[Message]:
    out = []
    while (m := box.pop()) is not None:
        out.append(m)
        box.ack(m)
    return out


def label(m: Message) -> str:
    return ("s" if m.snapshot else "e") + m.payload.rstrip(b"\xff").decode()


@pytest.fixture(params=["memory", "durable"])
def box(request, tmp_path):
    if request.param == "memory":
        made = Outbox(5, snapshot_bytes=3500)
    else:
        made = DurableOutbox(tmp_path / "o.sqlite3", max_bytes=10_000, max_age=3600, sync="normal",
                             snapshot_bytes=3500, clock=FakeClock(1000.0).monotonic)  # fmt: skip
    yield made
    made.close()


def test_a_flood_of_snapshots_drops_the_oldest_snapshots_and_no_event(box):
    for i in range(3):
        assert box.put(ev(i)) == 0
    for i in range(10):
        assert box.put(shot(i)) == 0  # the return value counts events only
    assert box.events == 3 and box.snapshots == 3  # 3 x 1000 bytes fit in 3500 (topic not counted)
    assert box.snapshots_dropped == 7 and box.dropped == 0
    assert [label(m) for m in drain(box)] == ["e0", "e1", "e2", "s7", "s8", "s9"]  # events first


def test_events_over_their_bound_do_not_touch_the_snapshots(tmp_path):
    box = Outbox(2, snapshot_bytes=10_000)
    box.put(shot(0))
    for i in range(5):
        box.put(ev(i))
    assert box.dropped == 3 and box.snapshots == 1 and box.snapshots_dropped == 0


def test_snapshots_in_flight_keep_their_share_and_come_back_first(box):
    for i in range(3):
        box.put(shot(i))
    sent = [box.pop(), box.pop()]
    assert [label(m) for m in sent] == ["s0", "s1"]
    box.put(shot(3))  # 4000 bytes with the two in flight: the oldest WAITING one goes
    assert box.snapshots_dropped == 1
    assert box.requeue(sent) == 2
    assert [label(m) for m in drain(box)] == ["s0", "s1", "s3"]


def test_the_file_keeps_snapshots_across_a_reopen_until_acknowledged(tmp_path):
    path = tmp_path / "o.sqlite3"
    first = DurableOutbox(path, max_bytes=10_000, max_age=3600, sync="full", snapshot_bytes=5000)
    first.put(ev(1))
    first.put(shot(1))
    first.put(shot(2))
    m = first.pop()
    first.ack(m)  # the event
    sent = first.pop()
    first.ack(sent)  # the first snapshot: its row goes at once
    first.close()
    again = DurableOutbox(path, max_bytes=10_000, max_age=3600, sync="full", snapshot_bytes=5000)
    assert again.recovered == 0 and again.recovered_snapshots == 1
    assert [label(m) for m in drain(again)] == ["s2"]
    again.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM snapshots").fetchone() == (0,)


def test_old_snapshots_go_with_max_age(tmp_path):
    clock = FakeClock(1000.0)
    box = DurableOutbox(tmp_path / "o.sqlite3", max_bytes=10_000, max_age=60, sync="normal", snapshot_bytes=9000,
                        clock=clock.monotonic)  # fmt: skip
    box.put(shot(0))
    clock.advance(61)
    box.put(shot(1))
    assert box.snapshots_dropped == 1 and [label(m) for m in drain(box)] == ["s1"]
    box.close()


def test_a_queue_file_from_before_snapshots_is_upgraded_with_its_events(tmp_path):
    path = tmp_path / "o.sqlite3"
    with sqlite3.connect(path) as db:  # format 1, as edge-fer wrote it before snapshots
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
                   " payload BLOB NOT NULL, qos INTEGER NOT NULL, created REAL NOT NULL)")  # fmt: skip
        db.execute("CREATE TABLE retained (topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL,"
                   " ord INTEGER NOT NULL)")  # fmt: skip
        db.execute("INSERT INTO events (topic, payload, qos, created) VALUES (?, ?, 1, ?)", (FACE, b"7", time.time()))
        db.execute("PRAGMA user_version = 1")
    box = DurableOutbox(path, max_bytes=10_000, max_age=1e9, sync="normal")
    assert box.recovered == 1
    box.put(shot(1))
    assert [label(m) for m in drain(box)] == ["e7", "s1"]
    box.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (2,)
    assert not list(tmp_path.glob("o.sqlite3.v1-*"))  # nothing set aside


def test_a_snapshot_is_never_retained():
    with pytest.raises(ValueError, match="retained"):
        Message(SNAP, b"x", 1, True, snapshot=True)


@pytest.mark.parametrize("durable", [False, True])
def test_with_the_broker_away_snapshots_give_way_to_each_other_and_events_all_arrive(
    make_broker, subscribe, tmp_path, caplog, durable
):
    """Through the real publisher and a real Mosquitto: 40 snapshots of 100 KB into a 1 MB share while the broker
    is down; the events queued between them all arrive in order, the newest snapshots arrive, and the two
    ledgers each add up, the events' showing no loss (no exit 75)."""
    import logging

    from edge_fer.config.comms import MqttSettings
    from edge_fer.outputs.mqtt.client import MqttPublisher

    broker = make_broker(persistence=True)
    sub = subscribe(broker.port, ["p/d/+/#"], client_id=f"share-sub-{durable}")
    broker.stop()
    outbox = {"durable": durable, "path": str(tmp_path / "o.sqlite3")} if durable else {"durable": False}
    s = MqttSettings.from_url(broker.url, device="d", topic_prefix="p", outbox=outbox, buffer_size=1000)
    pub = MqttPublisher(s, snapshot_bytes=1024 * 1024)
    pub.start()
    picture = b"\xff\xd8" + bytes(100 * 1024 - 2)
    with caplog.at_level(logging.WARNING, logger="edge_fer.mqtt"):
        for i in range(40):
            pub.publish("p/d/c/face", str(i))
            pub.publish("p/d/c/snapshot", picture[:-4] + i.to_bytes(4, "big"), qos=1, snapshot=True)
        assert pub.ledger()["dropped"] == 0
        pictures = pub.snapshot_ledger()
        assert (pictures["queued"], pictures["dropped"], pictures["undelivered"]) == (40, 30, 10)
        broker.start()
        assert pub.flush(20)
    with caplog.at_level(logging.INFO, logger="edge_fer.mqtt"):
        assert pub.close(timeout=5)
    faces = [int(m.payload) for m in sub.wait_count("p/d/c/face", 40, timeout=20)]
    shots = sub.wait_count("p/d/c/snapshot", 10, timeout=20)
    assert faces == list(range(40))
    assert [int.from_bytes(m.payload[-4:], "big") for m in shots] == list(range(30, 40))
    assert all(len(m.payload) == 100 * 1024 and not m.retain for m in shots)
    events, pictures = pub.ledger(), pub.snapshot_ledger()
    assert events["lost"] == 0 and events["acked"] == events["queued"]
    assert pictures["acked"] + pictures["dropped"] + pictures["undelivered"] == pictures["queued"] == 40
    assert any("snapshot share of the outbox full (1 MB" in r.getMessage() for r in caplog.records)
    (closed,) = [r for r in caplog.records if "MQTT: closed" in r.getMessage()]
    assert closed.levelno == logging.INFO  # no event was lost
    assert closed.getMessage().endswith("; snapshots queued 40: acknowledged 10, dropped 30, not delivered 0")

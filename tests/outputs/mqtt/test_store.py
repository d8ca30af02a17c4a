"""The durable outbox on a real SQLite file: order and contents across reopen, acknowledgement, the byte and age
bounds, the lock, the format version, a corrupt or truncated file, and a disk that refuses writes."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys

import pytest

from edge_fer.config.comms import MqttSettings
from edge_fer.outputs.mqtt.outbox import Message, Outbox
from edge_fer.outputs.mqtt.queuefile import OutboxLocked, OutboxStoreError, state_directory
from edge_fer.outputs.mqtt.store import DurableOutbox, open_outbox
from tests.clock import FakeClock

TOPIC = "p/d/c/face"


def ev(i: int, size: int = 0) -> Message:
    return Message(TOPIC, str(i).encode().ljust(size, b" "))


def drain(box) -> list[Message]:
    out = []
    while (m := box.pop()) is not None:
        out.append(m)
    return out


def ints(messages) -> list[int]:
    return [int(m.payload) for m in messages if not m.retain]


@pytest.fixture
def path(tmp_path):
    return tmp_path / "state" / "outbox-dev.sqlite3"


@pytest.fixture
def opened():
    made: list[DurableOutbox] = []

    def make(path, **kw) -> DurableOutbox:
        box = DurableOutbox(path, **{"max_bytes": 10**9, "max_age": 10**6, "sync": "normal", **kw})
        made.append(box)
        return box

    yield make
    for box in made:
        box.close()


def test_what_was_not_acknowledged_is_there_after_a_reopen_in_order(path, opened):
    box = opened(path)
    for i in range(10):
        box.put(ev(i))
    sent = [box.pop() for _ in range(4)]
    for m in sent[:3]:
        box.ack(m)  # 0, 1, 2 acknowledged; 3 in flight when the process ends
    box.close()
    again = opened(path)
    assert again.recovered == 7 and again.events == 7
    assert ints(drain(again)) == list(range(3, 10))


def test_a_killed_process_leaves_every_committed_message(path, tmp_path):
    """No close at all: the process dies with os._exit right after the puts (what SIGKILL leaves)."""
    code = (
        "import os, sys; from edge_fer.outputs.mqtt.store import DurableOutbox; "
        "from edge_fer.outputs.mqtt.outbox import Message; "
        f"b = DurableOutbox({str(path)!r}, max_bytes=10**9, max_age=10**6, sync='full'); "
        "[b.put(Message('p/d/c/face', str(i).encode())) for i in range(500)]; "
        "[b.ack(b.pop()) for _ in range(100)]; os._exit(9)"
    )
    subprocess.run([sys.executable, "-c", code], check=False, timeout=60)
    box = DurableOutbox(path, max_bytes=10**9, max_age=10**6)
    try:
        got = ints(drain(box))
    finally:
        box.close()
    # Acknowledgements are deleted in batches: a kill may re-send the last unwritten batch, never lose one.
    assert got == list(range(got[0], 500)) and got[0] <= 100


def test_requeue_puts_sent_messages_back_in_front(path, opened):
    box = opened(path)
    for i in range(6):
        box.put(ev(i))
    sent = [box.pop(), box.pop(), box.pop()]
    box.ack(sent[0])
    assert box.requeue(sent[1:]) == 2
    box.put(ev(6))
    assert ints(drain(box)) == [1, 2, 3, 4, 5, 6]


def test_retained_keep_the_latest_per_topic_go_first_and_survive(path, opened):
    box = opened(path)
    box.put(ev(0))
    box.put(Message("s/a", b"1", retain=True))
    box.put(Message("s/b", b"1", retain=True))
    box.put(Message("avail", b"online", retain=True), first=True)
    old_a = box.pop(), box.pop()  # avail, then s/a = 1 goes out...
    box.put(Message("s/a", b"2", retain=True))  # ...and is replaced before its acknowledgement
    box.ack(old_a[1])  # the old value's acknowledgement must not delete the new value
    box.close()
    again = opened(path)
    out = drain(again)
    assert [(m.topic, m.payload) for m in out if m.retain] == [("avail", b"online"), ("s/b", b"1"), ("s/a", b"2")]
    assert ints(out) == [0]


def test_over_the_byte_bound_the_oldest_waiting_events_go_and_are_counted(path, opened, caplog):
    size = 100 - len(TOPIC)  # 100 bytes a message
    box = opened(path, max_bytes=1000)
    for i in range(10):
        assert box.put(ev(i, size)) == 0
    inflight = box.pop()  # 0 is in flight: never dropped under the sender
    assert box.put(ev(10, size)) == 1 and box.dropped == 1
    assert sum(box.put(ev(i, size)) for i in range(11, 15)) == 4
    assert [inflight.payload.strip()] + [m.payload.strip() for m in drain(box)] == [
        str(i).encode() for i in (0, 6, 7, 8, 9, 10, 11, 12, 13, 14)
    ]


def test_events_older_than_max_age_are_dropped(path, opened):
    clock = FakeClock(start=1000.0)
    box = opened(path, max_age=60, clock=clock.monotonic)
    for i in range(5):
        box.put(ev(i))
        clock.advance(10)
    clock.advance(25)  # 0 is now 75 s old, 1 is 65 s old, 2 is 55 s old
    box.put(ev(5))
    assert box.dropped == 2
    assert ints(drain(box)) == [2, 3, 4, 5]


def test_the_bounds_apply_to_what_an_earlier_run_left(path, opened):
    box = opened(path)
    for i in range(20):
        box.put(ev(i, 100 - len(TOPIC)))
    box.close()
    again = opened(path, max_bytes=500)
    assert again.dropped == 15 and ints(drain(again)) == [15, 16, 17, 18, 19]


def test_a_second_outbox_on_the_same_file_is_refused_in_one_line(path, opened):
    opened(path)
    with pytest.raises(OutboxLocked) as err:
        DurableOutbox(path, max_bytes=10**9, max_age=10**6)
    text = str(err.value)
    assert "\n" not in text and str(path) in text and f"pid {os.getpid()}" in text


def test_the_lock_goes_with_the_process(path, opened):
    opened(path).close()
    opened(path)  # released by close; a killed process's lock is released by the kernel likewise


def test_an_unknown_format_is_set_aside_with_a_line_and_a_new_queue_starts(path, opened, caplog):
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE future (x)")
        db.execute("PRAGMA user_version = 7")
    with caplog.at_level(logging.WARNING, logger="edge_fer.mqtt"):
        box = opened(path)
    assert box.events == 0
    (line,) = [r.getMessage() for r in caplog.records]
    assert "format 7" in line and "set aside" in line
    assert len(list(path.parent.glob("outbox-dev.sqlite3.v7-*Z"))) == 1


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_file_is_moved_aside_with_one_error_and_the_outbox_works(path, opened, caplog, damage):
    box = opened(path)
    for i in range(3000):
        box.put(ev(i, 200))
    box.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    path.write_bytes(os.urandom(len(data)) if damage == "garbage" else data[: len(data) // 3])
    with caplog.at_level(logging.WARNING, logger="edge_fer.mqtt"):
        box = opened(path)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "moved aside" in errors[0], caplog.text
    assert len(list(path.parent.glob("outbox-dev.sqlite3.corrupt-*Z"))) == 1
    box.put(ev(1))
    assert ints(drain(box)) == [1]


def test_a_refused_write_keeps_messages_in_memory_in_order(path, opened, caplog):
    """SQLITE_FULL from a page limit: the error a full disk gives, without filling the disk."""
    box = opened(path)
    box.put(ev(0))
    pages = box._db.execute("PRAGMA page_count").fetchone()[0]
    box._db.execute(f"PRAGMA max_page_count = {pages}")
    with caplog.at_level(logging.ERROR, logger="edge_fer.mqtt"):
        for i in range(1, 200):
            box.put(ev(i, 500))
    errors = [r.getMessage() for r in caplog.records]
    assert len(errors) == 1 and "cannot write" in errors[0] and "full" in errors[0], errors
    assert box.events == 200
    assert ints(drain(box)) == list(range(200))


def test_an_unwritable_directory_is_an_error_for_a_set_path_and_memory_for_the_default(tmp_path, monkeypatch, caplog):
    if os.geteuid() == 0:
        blocked = tmp_path / "file"
        blocked.write_text("not a directory")  # root ignores permissions, not a file in the way
    else:
        blocked = tmp_path / "ro"
        blocked.mkdir(mode=0o500)
    s = MqttSettings.from_url("mqtt://127.0.0.1", device="dev", outbox={"path": str(blocked / "q.sqlite3")})
    with pytest.raises(OutboxStoreError, match="cannot use the MQTT outbox"):
        open_outbox(s)
    monkeypatch.setenv("STATE_DIRECTORY", str(blocked / "state"))
    with caplog.at_level(logging.ERROR, logger="edge_fer.mqtt"):
        box = open_outbox(MqttSettings.from_url("mqtt://127.0.0.1", device="dev"))
    assert isinstance(box, Outbox) and "wait in memory instead" in caplog.text


def test_the_state_directory_follows_systemd_then_xdg_then_home():
    assert state_directory({"STATE_DIRECTORY": "/var/lib/edge-fer:/var/lib/other"}) == state_directory(
        {"STATE_DIRECTORY": "/var/lib/edge-fer"}
    )
    assert str(state_directory({"STATE_DIRECTORY": "/var/lib/edge-fer"})) == "/var/lib/edge-fer"
    assert str(state_directory({"XDG_STATE_HOME": "/x/state", "HOME": "/h"})) == "/x/state/edge-fer"
    assert str(state_directory({"XDG_STATE_HOME": "relative", "HOME": "/h"})) == "/h/.local/state/edge-fer"
    assert str(state_directory({"HOME": "/h"})) == "/h/.local/state/edge-fer"


def test_the_default_file_is_per_device_and_memory_mode_is_one_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    box = open_outbox(MqttSettings.from_url("mqtt://127.0.0.1", device="Front Door"))
    try:
        assert isinstance(box, DurableOutbox) and box.path == tmp_path / "outbox-front_door.sqlite3"
    finally:
        box.close()
    assert isinstance(open_outbox(MqttSettings.from_url("mqtt://h", outbox={"durable": False})), Outbox)


def test_the_oldest_waiting_message_has_an_age_and_acknowledged_ones_do_not_count(path, opened):
    clock = FakeClock(start=1000.0)
    box = opened(path, clock=clock.monotonic)
    assert box.oldest_age() is None
    for i in range(3):
        box.put(ev(i))
        clock.advance(10)
    assert box.oldest_age() == 30.0
    box.ack(box.pop())  # 0 acknowledged (its row waits for the next write to be deleted)
    assert box.oldest_age() == 20.0
    assert Outbox(5).oldest_age() is None

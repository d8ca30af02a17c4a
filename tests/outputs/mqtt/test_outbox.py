"""The offline buffer: order kept, oldest dropped and counted, latest retained value per topic, re-queue in front."""

import pytest

from edge_fer.outputs.mqtt.outbox import Message, Outbox


def ev(i: int) -> Message:
    return Message("p/d/c/face", str(i).encode())


def ret(topic: str, value: str) -> Message:
    return Message(topic, value.encode(), retain=True)


def drain(box: Outbox) -> list[Message]:
    out = []
    while (m := box.pop()) is not None:
        out.append(m)
    return out


def test_events_come_out_in_order():
    box = Outbox(10)
    for i in range(5):
        box.put(ev(i))
    assert [m.payload for m in drain(box)] == [b"0", b"1", b"2", b"3", b"4"]
    assert box.pop() is None and len(box) == 0


@pytest.mark.parametrize(("capacity", "n"), [(100, 150), (1, 5), (10, 10), (10, 11)])
def test_overflow_drops_exactly_the_oldest(capacity, n):
    box = Outbox(capacity)
    dropped = sum(box.put(ev(i)) for i in range(n))
    assert dropped == box.dropped == max(0, n - capacity)
    assert [int(m.payload) for m in drain(box)] == list(range(max(0, n - capacity), n))


def test_retained_keep_only_the_latest_per_topic_and_go_first():
    box = Outbox(2)
    box.put(ev(0))
    box.put(ret("s/a", "1"))
    box.put(ret("s/b", "1"))
    box.put(ret("s/a", "2"))
    for i in range(1, 5):
        box.put(ev(i))
    assert box.dropped == 3  # retained messages never push events out
    out = drain(box)
    assert [(m.topic, m.payload) for m in out[:2]] == [("s/b", b"1"), ("s/a", b"2")]
    assert [m.payload for m in out[2:]] == [b"3", b"4"]


def test_first_puts_in_front():
    box = Outbox(5)
    box.put(ret("s/a", "x"))
    box.put(ret("avail", "online"), first=True)
    assert drain(box)[0].topic == "avail"


def test_requeue_puts_unacknowledged_back_in_front_in_order():
    box = Outbox(3)
    for i in range(3, 6):
        box.put(ev(i))
    box.put(ret("s/a", "new"))
    n = box.requeue([ev(0), ret("s/a", "old"), ret("s/b", "old"), ev(1), ev(2)])
    assert n == 4  # the old s/a is superseded by the newer value already waiting
    out = drain(box)
    assert [(m.topic, m.payload) for m in out if m.retain] == [("s/b", b"old"), ("s/a", b"new")]
    assert [int(m.payload) for m in out if not m.retain] == [0, 1, 2, 3, 4, 5]  # above capacity: nothing lost
    box.requeue([ev(0), ev(1)])
    box.put(ev(2))
    box.put(ev(3))
    assert box.dropped == 1 and [int(m.payload) for m in drain(box)] == [1, 2, 3]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"topic": ""}, ValueError),
        ({"topic": "a/+/b"}, ValueError),
        ({"topic": "a/#"}, ValueError),
        ({"topic": "a", "qos": 3}, ValueError),
        ({"topic": "a", "payload": "text"}, TypeError),
    ],
)
def test_bad_messages(kwargs, error):
    with pytest.raises(error):
        Message(**{"payload": b"x", **kwargs})


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        Outbox(0)

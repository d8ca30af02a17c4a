"""The publisher against a real Mosquitto: order, availability, last will, broker restarts, overflow, auth.

Subscribers use a fixed client id, a persistent session and QoS 1, and restarted brokers use persistence
and SIGTERM, so that a missing message is the publisher's fault and not the test's.
"""

import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.publish as mqtt_publish
import pytest

from edge_fer.config.comms import MqttSettings
from tests.wait import wait_until

FACE = "edge-fer/dev/cam0/face"
AVAIL = "edge-fer/dev/availability"
MARKER = "edge-fer/test/marker"
ROOT = Path(__file__).resolve().parents[3]


def settings(url: str, **kw) -> MqttSettings:
    base = {"device": "dev", "keepalive": 5, "reconnect_min_delay": 0.1, "reconnect_max_delay": 0.5}
    return MqttSettings.from_url(url, **{**base, **kw})


def seqs(messages) -> list[int]:
    return [int(m.payload) for m in messages]


def assert_complete_in_order(received: list[int], n: int, reconnects: int) -> None:
    """Every message arrived, and in order the first time; the only disorder is a replay at a reconnect.

    A reconnect may replay on both hops: our re-send of unacknowledged messages (publisher to broker) and the
    broker's re-send to the subscriber's persistent session (broker to subscriber)."""
    assert set(received) == set(range(n)), f"lost: {sorted(set(range(n)) - set(received))[:20]}"
    rewinds = [(a, b) for a, b in itertools.pairwise(received) if b <= a]
    assert len(rewinds) <= 2 * reconnects, f"replays at {rewinds} for {reconnects} reconnects"
    first_seen = list(dict.fromkeys(received))
    assert first_seen == list(range(n))


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_messages_arrive_in_order_after_online(broker, subscribe, publisher, protocol):
    sub = subscribe(broker.port, ["edge-fer/#"])
    pub = publisher(settings(broker.url, protocol=protocol))
    for i in range(300):  # queued before the connection exists: they wait in the buffer
        pub.publish(FACE, str(i))
    pub.start()
    assert pub.flush(10)
    sub.wait_count(FACE, 300)
    assert seqs(sub.on(FACE)) == list(range(300))
    assert sub.messages[0].topic == AVAIL and sub.messages[0].payload == b"online"
    s = pub.stats()
    assert (s.published, s.acked, s.buffered, s.inflight, s.dropped, s.failed) == (301, 301, 0, 0, 0, 0)
    assert s.connected and pub.connected and pub.last_error is None and s.connects == 1


def test_close_delivers_then_clears_retained_then_goes_offline(broker, subscribe, publisher):
    sub = subscribe(broker.port, ["edge-fer/#"])
    pub = publisher(settings(broker.url))
    pub.start()
    pub.publish("edge-fer/dev/cam0/state", '{"faces": 1}', retain=True)
    for i in range(100):
        pub.publish(FACE, str(i))
    assert pub.close(timeout=5, farewell=[("edge-fer/dev/cam0/state", b"")])
    sub.wait_for(lambda ms: ms and ms[-1].topic == AVAIL and ms[-1].payload == b"offline")
    assert seqs(sub.on(FACE)) == list(range(100))
    topics = [m.topic for m in sub.messages]
    assert topics.index("edge-fer/dev/cam0/state") < topics.index(FACE)  # retained state went first
    assert sub.on("edge-fer/dev/cam0/state")[-1].payload == b""  # cleared before offline
    assert not pub.connected
    late = subscribe(broker.port, ["edge-fer/#"])  # what the broker retained
    # Retained messages reach a new subscription before anything published after it: once a marker
    # published now has arrived, everything retained has too.
    mqtt_publish.single(MARKER, "end", qos=1, hostname="127.0.0.1", port=broker.port)
    late.wait_for(lambda ms: any(m.topic == MARKER for m in ms))
    retained = [(m.topic, m.payload, m.retain) for m in late.messages if m.topic != MARKER]
    assert retained == [(AVAIL, b"offline", True)]


PUBLISHER_SCRIPT = """
import sys, time
from edge_fer.outputs.mqtt.client import MqttPublisher
from edge_fer.config.comms import MqttSettings
p = MqttPublisher(MqttSettings.from_url(sys.argv[1], device="dev", keepalive=2))
p.start()
assert p.wait_connected(10), p.last_error
p.publish("edge-fer/dev/cam0/face", "0")
assert p.flush(10)
print("ready", flush=True)
time.sleep(60)
"""


def test_last_will_says_offline_when_the_publisher_is_killed(broker, subscribe):
    sub = subscribe(broker.port, [AVAIL])
    proc = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER_SCRIPT, broker.url],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        sub.wait_for(lambda ms: [m.payload for m in ms] == [b"online"])
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        sub.wait_for(lambda ms: [m.payload for m in ms] == [b"online", b"offline"], timeout=8)
    finally:
        proc.kill()
        proc.wait()


def test_online_again_after_the_broker_comes_back(make_broker, subscribe, publisher):
    broker = make_broker()  # its own: this test stops it
    pub = publisher(settings(broker.url))
    pub.start()
    assert pub.wait_connected(5)
    broker.stop()
    wait_until(lambda: not pub.connected, 5, what="the publisher to notice")
    assert "connection lost" in pub.last_error
    broker.start()
    sub = subscribe(broker.port, [AVAIL])
    assert pub.wait_connected(5)
    sub.wait_for(lambda ms: ms and ms[-1].payload == b"online")
    assert pub.stats().connects == 2 and pub.last_error is None


@pytest.mark.slow
def test_broker_stopped_mid_stream_and_back_5_s_later_loses_nothing(make_broker, subscribe, publisher):
    broker = make_broker(persistence=True)
    sub = subscribe(broker.port, [FACE], client_id="restart-sub")
    pub = publisher(settings(broker.url))
    pub.start()
    assert pub.wait_connected(5)
    stop, sent = threading.Event(), []

    def produce() -> None:
        while not stop.is_set():
            pub.publish(FACE, str(len(sent)))
            sent.append(1)
            time.sleep(0.004)

    producer = threading.Thread(target=produce, name="test-producer")
    producer.start()
    try:
        wait_until(lambda: len(sent) >= 150, 10, what="a stream in progress")
        broker.stop()  # SIGTERM: the broker saves the subscriber's queue
        time.sleep(5.0)  # the behaviour under test: 5 s without a broker while the stream goes on
        broker.start()
        assert pub.wait_connected(10)
        resumed = len(sent)
        wait_until(lambda: len(sent) >= resumed + 150, 10, what="the stream to go on after the reconnect")
    finally:
        stop.set()
        producer.join()
    n = len(sent)
    assert pub.flush(15)
    sub.wait_for(lambda ms: len({m.payload for m in ms}) >= n, timeout=15)
    assert_complete_in_order(seqs(sub.on(FACE)), n, reconnects=1)
    s = pub.stats()
    assert (s.dropped, s.connects) == (0, 2) and n > 300, (s, n)


@pytest.mark.slow
def test_unacknowledged_messages_are_sent_again_after_a_dead_connection(make_broker, subscribe, publisher):
    """SIGSTOP freezes the broker: messages go out and are never acknowledged until the keepalive gives up on
    the connection. Those in-flight messages must be sent again, in order, on the next connection."""
    broker = make_broker()  # its own: this test freezes it
    sub = subscribe(broker.port, [FACE], client_id="frozen-sub")
    pub = publisher(settings(broker.url, keepalive=1, max_inflight=10))
    pub.start()
    assert pub.wait_connected(5)
    for i in range(20):
        pub.publish(FACE, str(i))
    assert pub.flush(5)
    broker.proc.send_signal(signal.SIGSTOP)
    try:
        for i in range(20, 60):
            pub.publish(FACE, str(i))
        wait_until(lambda: not pub.connected, 10, what="the keepalive to drop the frozen connection")
        assert pub.stats().inflight == 10
    finally:
        broker.proc.send_signal(signal.SIGCONT)
    assert pub.flush(10)
    sub.wait_for(lambda ms: len({m.payload for m in ms}) >= 60)
    assert_complete_in_order(seqs(sub.on(FACE)), 60, reconnects=1)
    assert pub.stats().resent == 10


def test_full_buffer_drops_exactly_the_oldest_and_says_so(make_broker, subscribe, publisher, caplog):
    broker = make_broker(persistence=True)
    sub = subscribe(broker.port, [FACE], client_id="overflow-sub")
    broker.stop()
    pub = publisher(settings(broker.url, buffer_size=100, outbox={"durable": False}))  # the memory outbox
    pub.start()
    with caplog.at_level(logging.WARNING, logger="edge_fer.mqtt"):
        for i in range(150):
            pub.publish(FACE, str(i))
    s = pub.stats()
    assert (s.dropped, s.buffered, s.published, s.connected) == (50, 100, 0, False)
    drops = [r.getMessage() for r in caplog.records if "buffer full" in r.getMessage()]
    assert drops == ["MQTT: buffer full (100 messages): dropped 1 oldest since the last report, 1 in total"]
    with caplog.at_level(logging.WARNING, logger="edge_fer.mqtt"):
        broker.start()
        assert pub.flush(10)
    drops = [r.getMessage() for r in caplog.records if "buffer full" in r.getMessage()]
    assert drops[1:] == ["MQTT: buffer full (100 messages): dropped 49 oldest since the last report, 50 in total"]
    sub.wait_count(FACE, 100)
    assert seqs(sub.on(FACE)) == list(range(50, 150))


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
@pytest.mark.parametrize(
    ("username", "password"),
    [("edge", "wrong"), ("nobody", "right"), (None, None)],
    ids=["bad-password", "bad-user", "anonymous"],
)
def test_refused_credentials_give_one_clear_error_and_keep_retrying(
    make_broker, publisher, caplog, protocol, username, password
):
    broker = make_broker(users={"edge": "right"})
    pub = publisher(settings(broker.url, username=username, password=password, protocol=protocol))
    with caplog.at_level(logging.INFO, logger="edge_fer.mqtt"):
        pub.start()
        pub.publish(FACE, "kept")
        wait_until(lambda: pub.stats().connect_failures >= 4, 10, what="several refused attempts")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    text = errors[0].getMessage()
    assert "refused the connection" in text and "check username and password" in text and broker.url[7:] in text
    assert password is None or password not in caplog.text
    assert not pub.connected and "refused" in pub.last_error
    assert pub.stats().buffered == 1  # the message waits for a working login
    wait_until(lambda: broker.log_text().count("not authorised") >= 4, 5, what="the broker to log the refusals")


@pytest.mark.parametrize(("durable", "fate"), [(True, "kept in "), (False, "lost (mqtt.outbox.durable is off)")])
def test_close_with_the_broker_away_is_quick_and_says_what_was_lost(make_broker, publisher, caplog, durable, fate):
    broker = make_broker()  # its own: this test stops it
    pub = publisher(settings(broker.url, outbox={"durable": durable}))
    pub.start()
    assert pub.wait_connected(5) and pub.flush(5)
    broker.stop()
    wait_until(lambda: not pub.connected, 5, what="the publisher to notice")
    for i in range(10):
        pub.publish(FACE, str(i))
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="edge_fer.mqtt"):
        assert pub.close(timeout=5) is False
    assert time.monotonic() - t0 < 2.0
    closed = [r.getMessage() for r in caplog.records if "MQTT: closed" in r.getMessage()]
    assert len(closed) == 1 and closed[0].startswith(
        "MQTT: closed; messages (events and stats) queued 10: acknowledged 0, dropped 0, not delivered 10 ("
    ), closed
    assert fate in closed[0]
    assert pub.ledger()["lost"] == (0 if durable else 10)


def test_the_next_publisher_sends_what_the_last_one_left_first_and_in_order(make_broker, subscribe, publisher):
    """The durable outbox (the default) between two publishers on one device: nothing is lost, old goes first."""
    broker = make_broker(persistence=True)
    sub = subscribe(broker.port, [FACE], client_id="durable-sub")
    broker.stop()
    first = publisher(settings(broker.url))
    first.start()
    for i in range(50):
        first.publish(FACE, str(i))
    assert first.close(timeout=0.5) is False
    assert first.ledger()["undelivered"] == 50 and first.ledger()["lost"] == 0
    broker.start()
    second = publisher(settings(broker.url))
    assert second.ledger()["recovered"] == 50
    for i in range(50, 80):
        second.publish(FACE, str(i))
    second.start()
    assert second.flush(10)
    sub.wait_count(FACE, 80)
    assert seqs(sub.on(FACE)) == list(range(80))
    assert second.ledger() | {"kept": ""} == {
        "queued": 80, "recovered": 50, "acked": 80, "unsendable": 0, "dropped": 0, "undelivered": 0, "lost": 0,
        "kept": "",
    }  # fmt: skip

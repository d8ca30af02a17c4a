"""The MQTT output behind the real OutputRunner, against a real Mosquitto: events in, delivered, clean goodbye."""

import json

import pytest

from edge_fer.config.comms import MqttSettings
from edge_fer.outputs.mqtt.sink import MqttSink
from edge_fer.outputs.runner import OutputRunner
from tests.mosquitto import MOSQUITTO, Mosquitto, Subscriber
from tests.outputs.mqtt.face_events import happy_then_sad, play
from tests.wait import wait_until

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="needs the mosquitto broker (apt-get install mosquitto)")


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.kill()


def settings(url: str) -> MqttSettings:
    return MqttSettings.from_url(url, device="kiosk-1", keepalive=5, reconnect_min_delay=0.1, reconnect_max_delay=0.3)


def test_runner_delivers_every_event_and_close_says_goodbye(broker):
    sub = Subscriber(broker.port, ["edge-fer/#"]).start()
    try:
        sink = MqttSink(settings(broker.url), ["cam0"], run_id="a1b2c3d4e5f6")
        runner = OutputRunner([sink], queue_size=1).start()  # a direct output: the runner's queue is not in front
        runner.on_camera_state("cam0", "connected", "demo")
        events = [e for _, e in play(happy_then_sad())]
        for e in events:
            runner.on_event(e)
        assert runner.close(10)
        sub.wait_for(
            lambda ms: bool(ms) and ms[-1].topic == "edge-fer/kiosk-1/availability" and ms[-1].payload == b"offline"
        )
        faces = [json.loads(m.payload) for m in sub.on("edge-fer/kiosk-1/cam0/face")]
        assert [f["seq"] for f in faces] == list(range(len(events))) and faces[0]["type"] == "start"
        assert sub.on("edge-fer/kiosk-1/cam0/state")[-1].payload == b""
        assert json.loads(sub.on("edge-fer/kiosk-1/cam0/status")[-1].payload)["state"] == "stopped"
        (stats,) = runner.stats()
        assert (stats.delivered, stats.dropped, stats.errors) == (len(events), 0, 0)
        assert sink.mqtt_stats()["dropped"] == 0
    finally:
        sub.stop()


def test_problem_says_why_while_the_broker_is_away(broker):
    broker.stop()
    sink = MqttSink(settings(broker.url), ["cam0"], run_id="r", close_timeout=0.2)
    assert sink.problem is None, "nothing to say before it starts"
    sink.start()
    try:
        wait_until(lambda: sink.problem is not None and "Connection refused" in sink.problem, 5, what="a problem")
        broker.start()
        wait_until(lambda: sink.problem is None, 5, what="the sink to connect")
    finally:
        sink.close()


def test_built_but_never_started_it_opens_no_connection_and_closes_at_once(broker):
    sink = MqttSink(settings(broker.url), ["cam0"], run_id="r")
    runner = OutputRunner([sink])
    assert runner.close(5.0)
    assert sink.mqtt_stats()["connects"] == 0 and not sink.started

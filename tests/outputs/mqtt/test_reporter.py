"""Everything edge-fer says over MQTT, end to end through a real Mosquitto, validated against the schemas."""

import json
import re
import time
from importlib import resources

import jsonschema
import paho.mqtt.publish as mqtt_publish
import pytest

from edge_fer.config.comms import MqttSettings
from edge_fer.outputs.mqtt.reporter import MqttReporter
from tests.outputs.mqtt.face_events import happy_then_sad, play

BASE = "edge-fer/kiosk-1"
CAM = f"{BASE}/front_door"


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((resources.files("edge_fer") / "schema" / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def pipeline_stats(reporter: MqttReporter | None = None) -> dict:
    """What the pipeline's stats look like: the schema's core fields plus a field the schema does not know."""
    camera = {
        "captured": 120, "processed": 100, "skipped": 15, "dropped": 5, "fps_capture": 12.0, "fps_processed": 10.0,
        "latency_ms_p50": 41.5, "latency_ms_p95": 80.2, "faces": 1, "state": "connected", "queued": 0,
    }  # fmt: skip
    out = {"schema": 1, "device": "kiosk-1", "run_id": "a1b2c3d4e5f6", "ts": "2026-11-30T05:50:29.123Z"}
    out |= {"uptime_s": 10.4, "cameras": {"Front Door": camera}}
    if reporter is not None:
        out["mqtt"] = reporter.mqtt_stats()
    return out


def make_reporter(url: str, **kw) -> MqttReporter:
    s = MqttSettings.from_url(
        url, device="kiosk-1", keepalive=5, reconnect_min_delay=0.1, reconnect_max_delay=0.5, **kw
    )
    return MqttReporter(s, ["Front Door"], run_id="a1b2c3d4e5f6")


def test_events_state_status_and_stats_arrive_and_validate(broker, subscribe):
    sub = subscribe(broker.port, ["edge-fer/#"])
    reporter = make_reporter(broker.url)
    reporter.start()
    assert reporter.flush(5)  # the initial state (no faces) is out before the first event can replace it
    reporter.camera_status("Front Door", "connected", "demo source")
    events = [e for _, e in play(happy_then_sad(), camera="Front Door", device="kiosk-1")]
    for e in events:
        reporter.face_event(e)
        assert reporter.flush(5)  # at camera pace; a burst would coalesce the retained state to its latest value
    reporter.stats(pipeline_stats())
    assert reporter.flush(10)
    sub.wait_count(f"{BASE}/stats", 1)

    faces = [json.loads(m.payload) for m in sub.on(f"{CAM}/face")]
    face_schema = validator("face_event")
    for f in faces:
        face_schema.validate(f)
    assert [f["seq"] for f in faces] == [e.seq for e in events] == list(range(len(events)))

    states = [json.loads(m.payload) for m in sub.on(f"{CAM}/state")]
    state_schema = validator("state")
    for s in states:
        state_schema.validate(s)
    assert [(s["faces"], s["dominant_emotion"]) for s in states] == [(0, None), (1, "happy"), (1, "sad"), (0, None)]
    assert all(m.retain is False for m in sub.on(f"{CAM}/face"))

    (status,) = [json.loads(m.payload) for m in sub.on(f"{CAM}/status")]
    assert status["camera"] == "Front Door" and status["state"] == "connected" and status["detail"] == "demo source"

    (stats,) = [json.loads(m.payload) for m in sub.on(f"{BASE}/stats")]
    validator("stats").validate(stats)
    assert stats["mqtt"]["connected"] is True and stats["cameras"]["Front Door"]["queued"] == 0

    assert reporter.close(5)
    sub.wait_for(lambda ms: bool(ms) and ms[-1].topic == f"{BASE}/availability" and ms[-1].payload == b"offline")
    late = subscribe(broker.port, ["edge-fer/#"])
    late.wait_for(lambda ms: len(ms) >= 2, timeout=2)
    retained = {m.topic: m.payload for m in late.messages}
    assert retained[f"{BASE}/availability"] == b"offline"
    assert json.loads(retained[f"{CAM}/status"])["state"] == "stopped"
    assert f"{CAM}/state" not in retained  # cleared by the empty retained message


def test_discovery_is_published_on_connect_and_when_home_assistant_comes_online(broker, subscribe):
    sub = subscribe(broker.port, ["homeassistant/sensor/#"])
    reporter = make_reporter(broker.url, discovery=True)
    reporter.start()
    try:
        first = sub.wait_for(lambda ms: len(ms) >= 2)
        assert {m.topic for m in first} == {
            "homeassistant/sensor/edge_fer_kiosk-1_front_door_dominant_emotion/config",
            "homeassistant/sensor/edge_fer_kiosk-1_front_door_faces/config",
        }
        mqtt_publish.single("homeassistant/status", "online", hostname="127.0.0.1", port=broker.port)
        sub.wait_for(lambda ms: len(ms) >= 4)
        mqtt_publish.single("homeassistant/status", "offline", hostname="127.0.0.1", port=broker.port)
        reporter.flush(2)
        assert len(sub.messages) == 4
        late = subscribe(broker.port, ["homeassistant/sensor/#"])
        late.wait_for(lambda ms: len(ms) >= 2)
        assert all(m.retain for m in late.messages)
    finally:
        reporter.close(2)


@pytest.mark.parametrize(
    "remove",
    [
        ("device",),
        ("run_id",),
        ("ts",),
        ("uptime_s",),
        ("cameras",),
        ("mqtt",),
        ("cameras", "Front Door", "fps_capture"),
    ],
)
def test_stats_schema_requires_the_core_fields(remove):
    stats = pipeline_stats()
    stats["mqtt"] = {"connected": False, "published": 0, "buffered": 3, "dropped": 0}
    validator("stats").validate(stats)
    target = stats
    for key in remove[:-1]:
        target = target[key]
    del target[remove[-1]]
    with pytest.raises(jsonschema.ValidationError):
        validator("stats").validate(stats)


def test_stats_schema_allows_mqtt_null_when_mqtt_is_off():
    validator("stats").validate({**pipeline_stats(), "mqtt": None})


def _answered(records) -> list[int]:
    """How many `online` announcements each republish logged in ``records`` answered."""
    out = []
    for r in list(records):
        text = r.getMessage()
        if "Home Assistant came online" in text:
            more = re.search(r"online (\d+) more times", text)
            out.append(int(more[1]) if more else 1)
    return out


@pytest.mark.slow
def test_a_flood_of_online_announcements_is_answered_by_one_republish_per_interval(broker, subscribe, caplog):
    """20,000 `online` on homeassistant/status used to mean 20,002 log lines and 40,000 discovery messages.
    Every announcement is answered, by at most one republish per interval the flood lasted (plus the one at
    the end): a loaded machine may take longer than one interval to deliver the flood."""
    import logging

    import paho.mqtt.client as mqtt

    from edge_fer.outputs.mqtt.discovery import REDISCOVERY_INTERVAL_S

    caplog.set_level(logging.INFO, logger="edge_fer.mqtt")
    sub = subscribe(broker.port, ["homeassistant/sensor/#"])
    reporter = make_reporter(broker.url, discovery=True)
    reporter.start()
    flooder = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="flooder")
    try:
        sub.wait_for(lambda ms: len(ms) >= 2)  # on connect
        flooder.connect("127.0.0.1", broker.port)
        flooder.loop_start()
        started = time.monotonic()
        infos = [flooder.publish("homeassistant/status", "online", qos=1) for _ in range(20_000)]
        for info in infos:
            info.wait_for_publish(10)
        lasted = time.monotonic() - started
        deadline = time.monotonic() + lasted + 3 * REDISCOVERY_INTERVAL_S
        while sum(_answered(caplog.records)) < 20_000 and time.monotonic() < deadline:
            time.sleep(0.05)  # the broker may still be delivering the last announcements
        republishes = len(_answered(caplog.records))
        sub.wait_for(lambda ms: len(ms) >= 2 + 2 * republishes, timeout=15)
        assert reporter.flush(5)
        stats = reporter.mqtt_stats()
    finally:
        flooder.loop_stop()
        flooder.disconnect()
        reporter.close(2)
    answered = _answered(caplog.records)
    assert sum(answered) == 20_000, answered
    assert 2 <= len(answered) <= 2 + int(lasted / REDISCOVERY_INTERVAL_S), (answered, lasted)
    assert len(sub.messages) == 2 + 2 * len(answered) and stats["dropped"] == 0

"""Home Assistant discovery payloads, checked against HA's documented MQTT discovery format.

The format (home-assistant.io, MQTT integration, "Discovery messages"): topic
``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config`` with ids in ``[a-zA-Z0-9_-]``; a JSON object
payload; ``unique_id`` to register the entity; a ``device`` mapping with ``identifiers`` and/or
``connections`` for the device registry; availability either as ``availability_topic`` with
``payload_available``/``payload_not_available`` or as an ``availability`` list, never both.
"""

import json
import re

import pytest

from edge_fer import __version__
from edge_fer.outputs.mqtt.discovery import discovery_messages, unique_id
from edge_fer.outputs.mqtt.topics import Topics

TOPIC = re.compile(r"^homeassistant/(?P<component>[a-z_]+)/(?:[a-zA-Z0-9_-]+/)?(?P<object_id>[a-zA-Z0-9_-]+)/config$")
# Keys HA documents for the `device` mapping of an MQTT entity.
DEVICE_KEYS = {
    "configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model", "model_id",
    "name", "serial_number", "suggested_area", "sw_version", "via_device",
}  # fmt: skip
SENSOR_KEYS = {
    "availability_topic", "payload_available", "payload_not_available", "device", "icon", "json_attributes_topic",
    "json_attributes_template", "name", "origin", "state_class", "state_topic", "unique_id", "value_template",
}  # fmt: skip


@pytest.fixture
def messages():
    return discovery_messages(Topics("Kitchen Pi"), ["Front Door", "cam1"], device_name="Kitchen Pi")


def test_topics_follow_the_discovery_topic_format(messages):
    assert len(messages) == 4  # two sensors per camera
    for topic, payload in messages:
        m = TOPIC.match(topic)
        assert m, topic
        assert m["component"] == "sensor"
        assert m["object_id"] == json.loads(payload)["unique_id"]  # HA's best practice: object_id = unique_id


def test_unique_ids_are_stable_and_unique(messages):
    ids = [json.loads(p)["unique_id"] for _, p in messages]
    assert len(set(ids)) == len(ids)
    again = discovery_messages(Topics("Kitchen Pi"), ["Front Door", "cam1"], device_name="Kitchen Pi")
    assert [json.loads(p)["unique_id"] for _, p in again] == ids
    assert unique_id("Kitchen Pi", "Front Door", "faces") == "edge_fer_kitchen_pi_front_door_faces"
    assert unique_id("kitchen-pi", "cam1", "faces") != unique_id("kitchen_pi", "cam1", "faces")


def test_payloads_have_the_documented_keys(messages):
    for _, payload in messages:
        config = json.loads(payload)
        assert set(config) <= SENSOR_KEYS, set(config) - SENSOR_KEYS
        assert not ("availability" in config and "availability_topic" in config)
        assert config["availability_topic"] == "edge-fer/kitchen_pi/availability"
        assert (config["payload_available"], config["payload_not_available"]) == ("online", "offline")
        device = config["device"]
        assert set(device) <= DEVICE_KEYS
        assert isinstance(device["identifiers"], list) and all(isinstance(i, str) for i in device["identifiers"])
        assert device["manufacturer"] == "edge-fer" and device["model"] and device["sw_version"] == __version__
        assert config["origin"]["name"] == "edge-fer"


def test_each_camera_is_one_device_with_both_sensors(messages):
    by_device: dict[str, list[str]] = {}
    for _, payload in messages:
        config = json.loads(payload)
        by_device.setdefault(config["device"]["identifiers"][0], []).append(config["unique_id"])
        assert config["state_topic"].endswith("/state") and config["json_attributes_topic"] == config["state_topic"]
    assert by_device == {
        "edge_fer_kitchen_pi_front_door": [
            "edge_fer_kitchen_pi_front_door_dominant_emotion",
            "edge_fer_kitchen_pi_front_door_faces",
        ],
        "edge_fer_kitchen_pi_cam1": ["edge_fer_kitchen_pi_cam1_dominant_emotion", "edge_fer_kitchen_pi_cam1_faces"],
    }
    names = {json.loads(p)["device"]["name"] for _, p in messages}
    assert names == {"Kitchen Pi Front Door", "Kitchen Pi cam1"}


def test_custom_discovery_prefix():
    msgs = discovery_messages(Topics("d"), ["c"], discovery_prefix="ha")
    assert all(t.startswith("ha/sensor/") for t, _ in msgs)
    with pytest.raises(ValueError, match="prefix"):
        discovery_messages(Topics("d"), ["c"], discovery_prefix="ha/#")


@pytest.mark.parametrize(
    ("state", "emotion", "faces"),
    [
        ({"dominant_emotion": "happy", "faces": 2}, "happy", "2"),
        ({"dominant_emotion": None, "faces": 0}, "none", "0"),
        (None, "none", "0"),  # the empty retained message that clears the state at shutdown
    ],
)
def test_value_templates_render_like_home_assistant(messages, state, emotion, faces):
    """HA renders value_template with Jinja, with `value_json` set when the payload is JSON."""
    jinja2 = pytest.importorskip("jinja2", reason="rendering HA templates needs jinja2")
    env = jinja2.Environment()
    env.filters.setdefault("tojson", json.dumps)
    context = {} if state is None else {"value_json": state}
    rendered = {}
    for _, payload in messages[:2]:
        config = json.loads(payload)
        rendered[config["unique_id"].rsplit("_", 2)[-1]] = env.from_string(config["value_template"]).render(context)
        attributes = env.from_string(config["json_attributes_template"]).render(context)
        assert json.loads(attributes) == (state or {})
    assert rendered == {"emotion": emotion, "faces": faces}


def test_rediscovery_answers_the_first_announcement_at_once_and_a_flood_with_one_more():
    from edge_fer.outputs.mqtt.discovery import Rediscovery

    r = Rediscovery(interval=5.0)
    assert r.announce(100.0) == 1  # HA came online: republish now
    assert [r.announce(100.0 + i / 10_000) for i in range(1, 20_000)] == [0] * 19_999
    assert r.due(104.9) == 0  # still inside the interval
    assert r.due(105.0) == 19_999 and r.coalesced == 19_998  # one republish answers them all
    assert r.due(106.0) == 0  # nothing waiting any more
    assert r.announce(107.0) == 0 and r.due(110.0) == 1  # a second HA restart soon after is not missed
    assert r.announce(115.1) == 1  # quiet for an interval: at once again


def test_an_announcement_answered_at_once_also_answers_those_waiting():
    """The expirer checks :meth:`due` about once a second: an announcement arriving first, after the interval,
    answers the waiting ones with the same republish instead of leaving them for another interval."""
    from edge_fer.outputs.mqtt.discovery import Rediscovery

    r = Rediscovery(interval=5.0)
    assert r.announce(100.0) == 1
    assert [r.announce(101.0), r.announce(102.0), r.announce(103.0)] == [0, 0, 0]
    assert r.announce(105.2) == 4 and r.coalesced == 3
    assert r.due(106.0) == 0 and r.due(111.0) == 0  # nothing left waiting


# Keys HA documents for an MQTT camera (the `camera` platform): the image topic, its optional base64 decoding,
# and the options every MQTT entity shares.
CAMERA_KEYS = {
    "availability", "availability_mode", "availability_template", "availability_topic", "device",
    "enabled_by_default", "encoding", "entity_picture", "icon", "image_encoding",
    "json_attributes_template", "json_attributes_topic", "name", "object_id", "origin", "payload_available",
    "payload_not_available", "topic", "unique_id",
}  # fmt: skip


def test_no_camera_entity_unless_snapshots_are_published(messages):
    assert all(TOPIC.match(t)["component"] == "sensor" for t, _ in messages)


def test_a_camera_entity_per_camera_when_snapshots_are_published(messages):
    msgs = discovery_messages(Topics("Kitchen Pi"), ["Front Door", "cam1"], device_name="Kitchen Pi", snapshots=True)
    cameras = [(t, json.loads(p)) for t, p in msgs if TOPIC.match(t)["component"] == "camera"]
    assert len(cameras) == 2 and len(msgs) == 6
    sensors = {json.loads(p)["unique_id"]: json.loads(p) for t, p in messages}
    for topic, config in cameras:
        assert set(config) <= CAMERA_KEYS, set(config) - CAMERA_KEYS
        assert TOPIC.match(topic)["object_id"] == config["unique_id"]
        assert config["unique_id"].endswith("_snapshot") and config["unique_id"] not in sensors
        assert config["topic"].startswith("edge-fer/kitchen_pi/") and config["topic"].endswith("/snapshot")
        assert "image_encoding" not in config  # the payload is the JPEG itself, not base64
        assert not ("availability" in config and "availability_topic" in config)
        assert config["availability_topic"] == "edge-fer/kitchen_pi/availability"
        assert (config["payload_available"], config["payload_not_available"]) == ("online", "offline")
        assert set(config["device"]) <= DEVICE_KEYS
        sibling = sensors[config["unique_id"].removesuffix("snapshot") + "faces"]
        assert config["device"] == sibling["device"]  # the same HA device as the camera's sensors
    assert {c["topic"] for _, c in cameras} == {Topics("Kitchen Pi").snapshot(c) for c in ("Front Door", "cam1")}

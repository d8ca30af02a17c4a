"""Home Assistant MQTT discovery: each camera appears as a device with two sensors, with no YAML in HA, and
with snapshot publishing on, a camera entity showing the latest snapshot.

Follows Home Assistant's documented single-component discovery: a retained JSON config per entity on
``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config``. We omit ``node_id`` and use the entity's
``unique_id`` as ``object_id`` (HA's stated best practice); both only hold ``[a-zA-Z0-9_-]``. The sensors read
the camera's retained ``state`` topic through a ``value_template`` and become unavailable when the device's
availability topic says ``offline`` (last will or clean shutdown). Configs are republished on every connect
and whenever HA announces itself with ``online`` on its status topic (``homeassistant/status``), at most once
per ``REDISCOVERY_INTERVAL_S`` (:class:`Rediscovery`): anyone who may publish there could otherwise make the
device republish every config, and log a line, for each of a flood of ``online`` messages.

The camera entity (HA's MQTT ``camera`` platform) reads the snapshot topic, whose payload is the JPEG itself:
no ``image_encoding``, which HA only needs for base64 payloads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from edge_fer import __version__
from edge_fer.outputs.mqtt.topics import Topics, check_prefix, safe_name

MANUFACTURER = "edge-fer"
REDISCOVERY_INTERVAL_S = 5.0
MODEL = "edge-fer camera"

# Jinja, evaluated by Home Assistant. `value_json is defined` guards the empty retained payload that clears
# the state topic on shutdown; with no face present the emotion sensor reads "none".
_EMOTION_TEMPLATE = (
    "{% if value_json is defined %}{{ value_json.dominant_emotion | default('none', true) }}{% else %}none{% endif %}"
)
_FACES_TEMPLATE = "{% if value_json is defined %}{{ value_json.faces }}{% else %}0{% endif %}"
_ATTRIBUTES_TEMPLATE = "{% if value_json is defined %}{{ value_json | tojson }}{% else %}{}{% endif %}"


@dataclass(frozen=True, slots=True)
class SensorSpec:
    key: str
    name: str
    template: str
    icon: str
    extra: tuple[tuple[str, object], ...] = ()


SENSORS: tuple[SensorSpec, ...] = (
    SensorSpec("dominant_emotion", "Dominant emotion", _EMOTION_TEMPLATE, "mdi:emoticon-outline"),
    SensorSpec("faces", "Faces", _FACES_TEMPLATE, "mdi:face-recognition", (("state_class", "measurement"),)),
)


SNAPSHOT_KEY = "snapshot"  # the camera entity's part of its unique_id


def unique_id(device: str, camera: str, sensor: str) -> str:
    """Stable across restarts and unique per device, camera and sensor (HA keys its entity registry on it)."""
    return f"edge_fer_{safe_name(device)}_{safe_name(camera)}_{sensor}"


def device_identifier(device: str, camera: str) -> str:
    return f"edge_fer_{safe_name(device)}_{safe_name(camera)}"


def discovery_messages(
    topics: Topics,
    cameras: Sequence[str],
    *,
    device_name: str | None = None,
    discovery_prefix: str = "homeassistant",
    snapshots: bool = False,
) -> list[tuple[str, str]]:
    """(topic, JSON payload) for every sensor of every camera, and its camera entity when ``snapshots`` (snapshot
    publishing) is on; publish them retained."""
    check_prefix(discovery_prefix)
    shown = device_name or topics.device
    out: list[tuple[str, str]] = []
    for camera in cameras:
        device = {
            "identifiers": [device_identifier(topics.device, camera)],
            "name": f"{shown} {camera}",
            "manufacturer": MANUFACTURER,
            "model": MODEL,
            "sw_version": __version__,
        }
        for sensor in SENSORS:
            uid = unique_id(topics.device, camera, sensor.key)
            config = {
                "name": sensor.name,
                "unique_id": uid,
                "state_topic": topics.state(camera),
                "value_template": sensor.template,
                "json_attributes_topic": topics.state(camera),
                "json_attributes_template": _ATTRIBUTES_TEMPLATE,
                "availability_topic": topics.availability,
                "payload_available": "online",
                "payload_not_available": "offline",
                "icon": sensor.icon,
                "device": device,
                "origin": {"name": "edge-fer", "sw_version": __version__},
                **dict(sensor.extra),
            }
            out.append((f"{discovery_prefix}/sensor/{uid}/config", json.dumps(config, separators=(",", ":"))))
        if snapshots:
            uid = unique_id(topics.device, camera, SNAPSHOT_KEY)
            config = {
                "name": "Snapshot",
                "unique_id": uid,
                "topic": topics.snapshot(camera),
                "availability_topic": topics.availability,
                "payload_available": "online",
                "payload_not_available": "offline",
                "icon": "mdi:face-recognition",
                "device": device,
                "origin": {"name": "edge-fer", "sw_version": __version__},
            }
            out.append((f"{discovery_prefix}/camera/{uid}/config", json.dumps(config, separators=(",", ":"))))
    return out


class Rediscovery:
    """When to republish discovery after Home Assistant's ``online`` announcements: the first one at once,
    then at most once per ``interval``; announcements in between are answered together by one republish at
    the end of the interval (:meth:`due`), so a second HA restart soon after the first is never missed.
    Times are monotonic seconds passed in by the caller."""

    def __init__(self, interval: float = REDISCOVERY_INTERVAL_S) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._last: float | None = None
        self._waiting = 0  # announcements not answered yet
        self.coalesced = 0  # announcements answered by a republish made for an earlier one

    def announce(self, now: float) -> int:
        """How many announcements a republish now answers, this one included (0: wait for :meth:`due`).
        One answered at once also answers those still waiting: the expirer may not have ticked yet."""
        with self._lock:
            self._waiting += 1
            if self._last is None or now - self._last >= self.interval:
                return self._answer(now)
            return 0

    def due(self, now: float) -> int:
        """How many announcements a republish now answers (0: none due). Call it about once a second."""
        with self._lock:
            if not self._waiting or self._last is None or now - self._last < self.interval:
                return 0
            return self._answer(now)

    def _answer(self, now: float) -> int:
        """One republish now for every announcement waiting; called with the lock held."""
        answered, self._waiting, self._last = self._waiting, 0, now
        self.coalesced += answered - 1
        return answered

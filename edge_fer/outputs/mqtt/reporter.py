"""What edge-fer says over MQTT: face events, camera state and status, stats, and Home Assistant discovery.

The pipeline (through the MQTT sink) calls :meth:`MqttReporter.face_event`, :meth:`camera_status`,
:meth:`stats` and, with snapshot publishing on, :meth:`snapshot`; this class turns them into topics and
payloads and leaves delivery to :class:`~edge_fer.outputs.mqtt.client.MqttPublisher`. Shutdown order:
:meth:`close` delivers what is queued, then clears each camera's retained state, marks each camera
``stopped``, publishes ``offline`` and disconnects.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from edge_fer.config.comms import MqttSettings
from edge_fer.events import iso_utc_ms
from edge_fer.outputs.mqtt.client import MqttPublisher, PublisherStats
from edge_fer.outputs.mqtt.discovery import Rediscovery, discovery_messages
from edge_fer.outputs.mqtt.outbox import DEFAULT_SNAPSHOT_BYTES
from edge_fer.outputs.mqtt.state import CameraState, EventLike
from edge_fer.outputs.mqtt.topics import safe_name

log = logging.getLogger("edge_fer.mqtt")


class FaceEventLike(EventLike, Protocol):
    camera: str

    def to_json(self) -> str: ...


def iso_now() -> str:
    return iso_utc_ms(time.time())


def _json(payload: Mapping) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


class MqttReporter:
    def __init__(
        self,
        settings: MqttSettings,
        cameras: Sequence[str],
        *,
        run_id: str,
        device_name: str | None = None,
        stale_after: float = 5.0,
        snapshots: bool = False,
        snapshot_bytes: int = DEFAULT_SNAPSHOT_BYTES,
    ) -> None:
        """``snapshots``: snapshot publishing is on (a camera entity joins the discovery); ``snapshot_bytes``:
        the outbox's share for snapshots waiting for the broker."""
        if not cameras:
            raise ValueError("MqttReporter needs at least one camera name")
        self.settings = settings
        self.publisher = MqttPublisher(settings, snapshot_bytes=snapshot_bytes)
        self.snapshots = snapshots
        self.snapshots_too_large = 0  # counted by the MQTT output, which checks the size cap
        self.topics = self.publisher.topics
        self.run_id = run_id
        self.device_name = device_name or settings.device
        self.cameras = list(cameras)
        self._states = {
            safe_name(c): CameraState(self.device_name, c, run_id, stale_after=stale_after) for c in self.cameras
        }
        self._status_published: dict[str, str] = {}  # safe name -> camera name
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._expirer = threading.Thread(target=self._expire_loop, name="edge-fer-mqtt-state", daemon=True)
        self._discovery = (
            discovery_messages(
                self.topics,
                self.cameras,
                device_name=self.device_name,
                discovery_prefix=settings.discovery_prefix,
                snapshots=snapshots,
            )
            if settings.discovery
            else []
        )
        self._rediscovery = Rediscovery()  # a flood of HA's `online` is answered by one republish per interval
        if settings.discovery:
            self.publisher.add_on_connect(self._publish_discovery)
            self.publisher.subscribe(settings.ha_status_topic, self._on_ha_status)

    @property
    def connected(self) -> bool:
        return self.publisher.connected

    @property
    def last_error(self) -> str | None:
        return self.publisher.last_error

    def start(self) -> None:
        ts = iso_now()
        with self._lock:
            for key, state in self._states.items():
                self.publisher.publish(self.topics.state(key), _json(state.current(ts)), retain=True)
        self.publisher.start()
        self._expirer.start()

    def face_event(self, event: FaceEventLike) -> None:
        """Publish one face event (QoS from the settings, not retained) and update the camera's state."""
        camera = safe_name(event.camera)
        self.publisher.publish(self.topics.face(camera), event.to_json())
        with self._lock:
            state = self._states.get(camera)
            if state is None:  # a camera not announced at start: track it anyway
                state = self._states[camera] = CameraState(self.device_name, event.camera, self.run_id)
            changed = state.observe(event)
            if changed is not None:
                self.publisher.publish(self.topics.state(camera), _json(changed), retain=True)

    def snapshot(self, camera: str, jpeg: bytes) -> None:
        """Publish one snapshot: the JPEG itself as the payload, QoS 1, not retained, in the outbox's share."""
        self.publisher.publish(self.topics.snapshot(camera), jpeg, qos=1, snapshot=True)

    def camera_status(self, camera: str, state: str, detail: str = "", ts: str | None = None) -> None:
        """The camera's connection state (``connected``, ``reconnecting``, ``failed``, ``ended``...), retained."""
        if not state:
            raise ValueError("camera status needs a state")
        payload = {"camera": camera, "state": state, "detail": detail, "ts": ts or iso_now()}
        with self._lock:
            self._status_published[safe_name(camera)] = camera
        self.publisher.publish(self.topics.status(camera), _json(payload), retain=True)

    def mqtt_stats(self) -> dict:
        """The ``mqtt`` section of the stats payload (see ``edge_fer/schema/stats.schema.json``)."""
        s: PublisherStats = self.publisher.stats()
        return {
            "connected": s.connected,
            "published": s.published,
            "acked": s.acked,
            "buffered": s.buffered,
            "inflight": s.inflight,
            "dropped": s.dropped,
            "failed": s.failed,
            "resent": s.resent,
            "connects": s.connects,
            "connect_failures": s.connect_failures,
            "last_error": s.last_error,
            **({"snapshots": self.snapshot_stats()} if self.snapshots else {}),
        }

    def snapshot_stats(self) -> dict:
        """Snapshots queued, acknowledged, dropped (their share full), waiting, and too large to publish."""
        ledger = self.publisher.snapshot_ledger()
        return {
            "queued": ledger["queued"],
            "acked": ledger["acked"],
            "dropped": ledger["dropped"],
            "waiting": ledger["undelivered"],
            "too_large": self.snapshots_too_large,
        }

    def stats(self, payload: Mapping) -> None:
        """Publish a stats payload (not retained); the ``mqtt`` section is filled in here when absent."""
        body = dict(payload)
        if body.get("mqtt") is None:
            body["mqtt"] = self.mqtt_stats()
        self.publisher.publish(self.topics.stats, _json(body))

    def flush(self, timeout: float) -> bool:
        return self.publisher.flush(timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Deliver what is queued (bounded), clear the retained state, mark cameras stopped, go offline."""
        self._stop.set()
        ts = iso_now()
        farewell: list[tuple[str, bytes | str]] = [(self.topics.state(key), b"") for key in self._states]
        stopped = {"state": "stopped", "detail": "edge-fer stopped", "ts": ts}
        with self._lock:
            for key, camera in sorted(self._status_published.items()):
                farewell.append((self.topics.status(key), _json({"camera": camera, **stopped})))
        ok = self.publisher.close(timeout, farewell)
        if self._expirer.is_alive():
            self._expirer.join(timeout=2.0)
        return ok

    def _expire_loop(self) -> None:
        while not self._stop.wait(1.0):
            if self._discovery and (answered := self._rediscovery.due(time.monotonic())):
                log.info("MQTT: Home Assistant came online %d more times; republishing discovery once", answered)
                self._publish_discovery()
            ts = iso_now()
            with self._lock:
                for key, state in self._states.items():
                    changed = state.expire(ts)
                    if changed is not None:
                        self.publisher.publish(self.topics.state(key), _json(changed), retain=True)

    def _publish_discovery(self) -> None:
        for topic, payload in self._discovery:
            self.publisher.publish(topic, payload, retain=True)

    def _on_ha_status(self, topic: str, payload: bytes) -> None:
        if payload.strip() != b"online" or not (answered := self._rediscovery.announce(time.monotonic())):
            return
        if answered == 1:
            log.info("MQTT: Home Assistant came online; republishing discovery")
        else:
            log.info("MQTT: Home Assistant came online %d more times; republishing discovery once", answered)
        self._publish_discovery()

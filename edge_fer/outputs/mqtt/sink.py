"""The MQTT output: a thin sink over :class:`~edge_fer.outputs.mqtt.reporter.MqttReporter`.

Face events arrive through the sink runner (``handle``, on this sink's thread). Camera status and stats are
not events: the pipeline calls :meth:`MqttSink.camera_status` and :meth:`MqttSink.stats` directly, from any
thread (the reporter is thread-safe). Connecting starts at construction, so availability, discovery and the
initial camera states go out before the first face. ``close`` (called by the runner after ``flush``) clears
the retained state, marks cameras stopped, publishes ``offline`` and disconnects, bounded by
``close_timeout``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edge_fer.events import FaceEvent
from edge_fer.outputs.base import Sink
from edge_fer.outputs.mqtt.reporter import MqttReporter
from edge_fer.outputs.mqtt.settings import MqttSettings


class MqttSink(Sink):
    name = "mqtt"

    def __init__(
        self,
        settings: MqttSettings,
        cameras: Sequence[str],
        *,
        run_id: str,
        device_name: str | None = None,
        stale_after: float = 5.0,
        close_timeout: float = 2.0,
    ) -> None:
        self.reporter = MqttReporter(settings, cameras, run_id=run_id, device_name=device_name, stale_after=stale_after)
        self.close_timeout = close_timeout
        self.reporter.start()

    def handle(self, event: FaceEvent) -> None:
        self.reporter.face_event(event)

    def flush(self, timeout: float) -> bool:
        """Wait until the broker has acknowledged everything queued so far (False on timeout)."""
        return self.reporter.flush(timeout)

    def close(self) -> None:
        self.reporter.close(self.close_timeout)

    def camera_status(self, camera: str, state: str, detail: str = "", ts: str | None = None) -> None:
        self.reporter.camera_status(camera, state, detail, ts)

    def stats(self, payload: Mapping) -> None:
        self.reporter.stats(payload)

    def mqtt_stats(self) -> dict:
        """The ``mqtt`` section for the pipeline's stats payload."""
        return self.reporter.mqtt_stats()

    @property
    def problem(self) -> str | None:
        return None if self.reporter.connected else (self.reporter.last_error or "not connected to the broker yet")

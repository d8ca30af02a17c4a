"""The MQTT output: a thin :class:`~edge_fer.outputs.base.Output` over
:class:`~edge_fer.outputs.mqtt.reporter.MqttReporter`.

MQTT promises delivery, so it is a ``direct`` output: the runner hands it face events, camera states and
stats on the caller's thread, and each goes straight into the publisher's outbox (an append under a lock),
with no lossy queue in front. The only place a numbered event can be dropped is that outbox's bound,
``mqtt.buffer_size`` (oldest first, counted in the ``mqtt`` stats section). Connecting starts with the
runner's ``start``, so availability, discovery and the initial camera states go out before the first face.
``close`` (called by the runner after ``flush``) clears the retained state, marks cameras stopped,
publishes ``offline`` and disconnects, bounded by ``close_timeout``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edge_fer.config.comms import MqttSettings
from edge_fer.events import FaceEvent
from edge_fer.outputs.base import Output, StatsView
from edge_fer.outputs.mqtt.reporter import MqttReporter


class MqttSink(Output):
    name = "mqtt"
    direct = True

    def __init__(
        self, settings: MqttSettings, cameras: Sequence[str], *, close_timeout: float = 2.0, **reporter_options: Any
    ) -> None:
        """``reporter_options`` (``run_id``, ``device_name``, ``stale_after``) go to :class:`MqttReporter`."""
        self.reporter = MqttReporter(settings, cameras, **reporter_options)
        self.close_timeout = close_timeout
        self.started = False

    def start(self) -> None:
        if not self.started:
            self.started = True
            self.reporter.start()

    def on_event(self, event: FaceEvent) -> None:
        self.reporter.face_event(event)

    def on_camera_state(self, camera: str, state: str, detail: str) -> None:
        self.reporter.camera_status(camera, state, detail)

    def on_stats(self, snapshot: StatsView) -> None:
        """Publish the snapshots that fall due (every ``stats.interval``), as they are: ``mqtt`` included."""
        if snapshot.due:
            self.reporter.stats(snapshot.to_dict())

    def stats_section(self) -> tuple[str, Mapping[str, Any]]:
        return "mqtt", self.reporter.mqtt_stats()

    def flush(self, timeout: float) -> bool:
        """Wait until the broker has acknowledged everything queued so far (False on timeout)."""
        return self.reporter.flush(timeout) if self.started else True

    def close(self) -> None:
        """Say goodbye and disconnect; a sink that never started has no connection to close, only its outbox."""
        if self.started:
            self.reporter.close(self.close_timeout)
        else:
            self.reporter.publisher.release()

    def camera_status(self, camera: str, state: str, detail: str = "", ts: str | None = None) -> None:
        """A camera state with an explicit timestamp, for callers outside the runner (tools, tests)."""
        self.reporter.camera_status(camera, state, detail, ts)

    def outbox_oldest_age(self) -> float | None:
        return self.reporter.publisher.outbox_oldest_age() if self.started else None

    def ledger(self) -> dict:
        """Queued, acknowledged, dropped, undelivered and lost messages (see ``MqttPublisher.ledger``)."""
        return self.reporter.publisher.ledger()

    def mqtt_stats(self) -> dict:
        """The ``mqtt`` section of the stats payload."""
        return self.reporter.mqtt_stats()

    @property
    def problem(self) -> str | None:
        if not self.started:
            return None
        return None if self.reporter.connected else (self.reporter.last_error or "not connected to the broker yet")

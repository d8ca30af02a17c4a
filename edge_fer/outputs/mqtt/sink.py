"""The MQTT output: a thin :class:`~edge_fer.outputs.base.Output` over
:class:`~edge_fer.outputs.mqtt.reporter.MqttReporter`.

MQTT promises delivery, so it is a ``direct`` output: the runner hands it face events, camera states and
stats on the caller's thread, and each goes straight into the publisher's outbox (an append under a lock),
with no lossy queue in front. The only place a numbered event can be dropped is that outbox's bound,
``mqtt.buffer_size`` (oldest first, counted in the ``mqtt`` stats section). Connecting starts with the
runner's ``start``, so availability, discovery and the initial camera states go out before the first face.
``close`` (called by the runner after ``flush``) clears the retained state, marks cameras stopped,
publishes ``offline`` and disconnects, bounded by ``close_timeout``.

With snapshot publishing on (``output.snapshots.publish``) this output also takes annotated frames, on its
runner thread, and publishes each snapshot of its :class:`~edge_fer.outputs.snapshots.SnapshotTaker` on the
camera's ``snapshot`` topic; one larger than ``publish_max_kb`` is not published, only counted
(``mqtt.snapshots.too_large`` in the stats) and logged. The peaks of tracks still open at ``close`` go out
before the goodbye, so they are in the same bounded flush as everything else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edge_fer.config.comms import MqttSettings
from edge_fer.config.settings import SnapshotSettings
from edge_fer.events import FaceEvent
from edge_fer.logs import Throttle
from edge_fer.outputs.base import FrameInfo, Output, StatsView
from edge_fer.outputs.mqtt.reporter import MqttReporter
from edge_fer.outputs.snapshots import Snapshot, SnapshotTaker

log = logging.getLogger("edge_fer.mqtt")


class MqttSink(Output):
    name = "mqtt"
    direct = True

    def __init__(
        self,
        settings: MqttSettings,
        cameras: Sequence[str],
        *,
        close_timeout: float = 2.0,
        snapshots: SnapshotSettings | None = None,
        **reporter_options: Any,
    ) -> None:
        """``reporter_options`` (``run_id``, ``device_name``, ``stale_after``) go to :class:`MqttReporter`;
        ``snapshots``: publish snapshots with these settings (their ``publishing`` must be on), None: do not."""
        publishing = snapshots is not None and snapshots.publishing
        share = {"snapshot_bytes": snapshots.queue_bytes} if snapshots is not None else {}
        self.reporter = MqttReporter(settings, cameras, snapshots=publishing, **share, **reporter_options)
        self.close_timeout = close_timeout
        self.started = False
        self._snapshots = snapshots if publishing else None
        self._taker = SnapshotTaker(snapshots, self._publish_snapshot) if self._snapshots is not None else None
        self._taker_lock = threading.Lock()  # events arrive on the pipeline's thread, frames on ours
        self._too_large_log = Throttle(60.0, logger=log)

    def start(self) -> None:
        if not self.started:
            self.started = True
            self.reporter.start()

    def on_event(self, event: FaceEvent) -> None:
        self.reporter.face_event(event)
        if self._taker is not None:
            with self._taker_lock:
                self._taker.on_event(event)

    def wants_frames(self, camera: str) -> bool:
        return self._taker is not None and self._taker.wants_frames(camera)

    def on_frame(self, frame: FrameInfo, image: np.ndarray) -> None:
        if self._taker is not None:
            with self._taker_lock:
                self._taker.on_frame(frame, image)

    def _publish_snapshot(self, shot: Snapshot) -> None:
        assert self._snapshots is not None
        if len(shot.jpeg) > self._snapshots.publish_max_bytes:
            self.reporter.snapshots_too_large += 1
            self._too_large_log.log(
                "mqtt snapshot too large",
                logging.WARNING,
                "MQTT: a %d KB snapshot of %s is over output.snapshots.publish_max_kb (%d KB): not published "
                "(%d so far); lower output.snapshots.quality or margin, or raise the cap",
                -(-len(shot.jpeg) // 1024),
                shot.camera,
                self._snapshots.publish_max_kb,
                self.reporter.snapshots_too_large,
            )
            return
        self.reporter.snapshot(shot.camera, shot.jpeg)

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
        if self._taker is not None and self.started:
            with self._taker_lock:
                self._taker.close()  # the peaks of open tracks, queued before the goodbye
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

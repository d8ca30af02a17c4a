"""The stats snapshot as Prometheus text (exposition format 0.0.4), for ``/metrics``.

Rendered from the same :class:`~edge_fer.runtime.stats.StatsSnapshot` that the log line, ``STATUS=``, the MQTT
stats topic and ``/stats.json`` report, so their counters agree; plus what the snapshot does not carry: the
detection, classification and latency histograms (every observation since start) and face events by type.
Counter names end in ``_total``; times are in seconds, as Prometheus expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge_fer.events import EVENT_TYPES
from edge_fer.runtime.stats import HistogramCounts

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# (stats key, metric name, help) per camera
_CAMERA_COUNTERS = (
    ("captured", "edge_fer_frames_captured_total", "Frames read from the camera."),
    ("processed", "edge_fer_frames_processed_total", "Frames that went through detection and classification."),
    ("skipped", "edge_fer_frames_skipped_total", "Frames left out on purpose (detect_every, max_fps)."),
    ("dropped", "edge_fer_frames_dropped_total", "Frames dropped because inference was behind."),
    ("errors", "edge_fer_camera_errors_total", "Failed opens and reads, and rejected images."),
    ("reconnects", "edge_fer_camera_reconnects_total", "Connections re-established after a loss."),
)
_CAMERA_GAUGES = (
    ("queued", "edge_fer_frames_queued", "Frames accepted and not processed yet."),
    ("fps_capture", "edge_fer_fps_captured", "Frames per second read over the last few seconds."),
    ("fps_processed", "edge_fer_fps_processed", "Frames per second processed over the last few seconds."),
    ("faces", "edge_fer_faces", "Faces present now."),
)
_MQTT_COUNTERS = (
    ("published", "edge_fer_mqtt_published_total", "Messages handed to the connection (re-sends included)."),
    ("acked", "edge_fer_mqtt_acknowledged_total", "Messages the broker acknowledged."),
    ("dropped", "edge_fer_mqtt_dropped_total", "Oldest messages dropped over the outbox's bound."),
    ("failed", "edge_fer_mqtt_failed_total", "Messages the broker refused or that could not be published."),
    ("resent", "edge_fer_mqtt_resent_total", "Messages sent again after a reconnect."),
    ("connects", "edge_fer_mqtt_connects_total", "Successful connections (1 + reconnects)."),
    ("connect_failures", "edge_fer_mqtt_connect_failures_total", "Refused or failed connection attempts."),
)
_MQTT_GAUGES = (
    ("buffered", "edge_fer_mqtt_outbox_messages", "Messages waiting for the broker or in flight (outbox depth)."),
    ("inflight", "edge_fer_mqtt_inflight_messages", "Messages sent and not acknowledged yet."),
)
_OUTPUT_COUNTERS = (
    ("delivered", "edge_fer_output_events_delivered_total", "Face events an output handled."),
    ("dropped", "edge_fer_output_events_dropped_total", "Face events dropped because the output was behind."),
    ("errors", "edge_fer_output_errors_total", "Exceptions an output raised."),
)
HISTOGRAMS = (
    ("detect_ms", "edge_fer_detection_seconds", "Face detection time per processed frame."),
    ("classify_ms_per_face", "edge_fer_classification_seconds_per_face", "Emotion classification time per face."),
    ("latency_ms", "edge_fer_latency_seconds", "Capture to events handed to the outputs, per processed frame."),
)


def _escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, Any]) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}" if labels else ""


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(float(value)) if isinstance(value, float) else str(int(value))


class _Text:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self._declared: set[str] = set()

    def family(self, name: str, kind: str, help_text: str) -> None:
        if name not in self._declared:
            self._declared.add(name)
            self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, labels: Mapping[str, Any], value: Any) -> None:
        self.lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def histogram(self, name: str, help_text: str, labels: Mapping[str, Any], counts: HistogramCounts) -> None:
        self.family(name, "histogram", help_text)
        for bound, cumulative in zip(counts.bounds, counts.cumulative, strict=False):
            self.sample(f"{name}_bucket", {**labels, "le": repr(bound / 1000.0)}, cumulative)
        self.sample(f"{name}_bucket", {**labels, "le": "+Inf"}, counts.count)
        self.sample(f"{name}_sum", labels, counts.total / 1000.0)
        self.sample(f"{name}_count", labels, counts.count)


def render(
    stats: Mapping[str, Any] | None,
    health: tuple[bool, Mapping[str, Any]],
    histograms: Mapping[str, Mapping[str, HistogramCounts]],
    events: Mapping[tuple[str, str], int],
    outbox_age: float | None = None,
) -> str:
    """``stats``: the latest snapshot's payload (None before the first); ``histograms``: per camera, per
    :data:`HISTOGRAMS` key; ``events``: face events per (camera, type); ``outbox_age``: seconds the oldest
    unacknowledged MQTT message has waited (read now; None: nothing waits, or the memory outbox)."""
    out = _Text()
    ok, detail = health
    out.family("edge_fer_healthy", "gauge", "1 when every camera delivers frames (what /healthz answers).")
    out.sample("edge_fer_healthy", {}, ok)
    for camera, entry in (detail.get("cameras") or {}).items():
        out.family("edge_fer_camera_healthy", "gauge", "1 when this camera delivers frames.")
        out.sample("edge_fer_camera_healthy", {"camera": camera}, entry.get("ok", False))
    if stats is not None:
        _stats(out, stats)
    if stats is not None and stats.get("mqtt"):
        out.family("edge_fer_mqtt_outbox_oldest_age_seconds", "gauge", "Age of the oldest message waiting (0: none).")
        out.sample("edge_fer_mqtt_outbox_oldest_age_seconds", {}, float(outbox_age or 0.0))
    for key, name, help_text in HISTOGRAMS:  # a family's samples stay together, as the format requires
        for camera, kinds in histograms.items():
            if key in kinds:
                out.histogram(name, help_text, {"camera": camera}, kinds[key])
    # Every camera and type from the start, at 0: an alert on "no events for an hour" needs a series to look at.
    counted = {(camera, kind): 0 for camera in (stats or {}).get("cameras", {}) for kind in EVENT_TYPES}
    counted.update(events)
    out.family("edge_fer_events_total", "counter", "Face events by camera and type.")
    for (camera, kind), n in sorted(counted.items()):
        out.sample("edge_fer_events_total", {"camera": camera, "type": kind}, n)
    return "\n".join(out.lines) + "\n"


def _stats(out: _Text, stats: Mapping[str, Any]) -> None:
    model = stats.get("model") or {}
    out.family("edge_fer_info", "gauge", "The device, this run and the emotion model (always 1).")
    out.sample(
        "edge_fer_info",
        {"device": stats.get("device", ""), "run_id": stats.get("run_id", ""),
         "model": model.get("name", ""), "model_sha256": model.get("sha256", "")},
        1,
    )  # fmt: skip
    out.family("edge_fer_uptime_seconds", "gauge", "Seconds since the daemon started (as of this snapshot).")
    out.sample("edge_fer_uptime_seconds", {}, float(stats.get("uptime_s", 0.0)))
    cameras = stats.get("cameras") or {}
    out.family("edge_fer_camera_state", "gauge", "The camera's connection state (the one labelled is 1).")
    for camera, cam in cameras.items():
        out.sample("edge_fer_camera_state", {"camera": camera, "state": cam.get("state", "")}, 1)
    for kind, families in (("counter", _CAMERA_COUNTERS), ("gauge", _CAMERA_GAUGES)):
        for key, name, help_text in families:
            out.family(name, kind, help_text)
            for camera, cam in cameras.items():
                value = cam.get(key) or 0
                out.sample(name, {"camera": camera}, float(value) if kind == "gauge" else value)
    mqtt = stats.get("mqtt")
    if mqtt:
        out.family("edge_fer_mqtt_connected", "gauge", "1 while connected to the broker.")
        out.sample("edge_fer_mqtt_connected", {}, bool(mqtt.get("connected")))
        for key, name, help_text in _MQTT_COUNTERS:
            out.family(name, "counter", help_text)
            out.sample(name, {}, mqtt.get(key, 0))
        for key, name, help_text in _MQTT_GAUGES:
            out.family(name, "gauge", help_text)
            out.sample(name, {}, mqtt.get(key, 0))
    for key, name, help_text in _OUTPUT_COUNTERS:
        out.family(name, "counter", help_text)
        for output, sink in (stats.get("sinks") or {}).items():
            out.sample(name, {"output": output}, sink.get(key, 0))

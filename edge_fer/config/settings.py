"""Typed configuration: YAML in, validated pydantic models out, unknown keys rejected.

Every section has defaults, so running without ``--config`` uses the ``demo`` camera with events
on stdout. A bad file is reported whole: every problem with its key path (``cameras[0].fps``) and
YAML line, so an operator fixes a config in one pass without reading code. ``config/edge-fer.yaml``
shows every option with its default (a test keeps it complete).

Relative paths in the file are relative to the file's directory (a service runs from ``/``).
Files a setting depends on are checked at load, not at first use (see :mod:`edge_fer.config.checks`).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from edge_fer.bundled import DEFAULT_FLIP
from edge_fer.config.checks import (
    EmotionModelFile,
    ExistingFile,
    FieldProblems,
    Strict,
    WritablePath,
    check_name,
    require_files,
    safe_name,
)
from edge_fer.config.choices import EventsMode, StdoutMode
from edge_fer.config.comms import HttpSettings, MetricsSettings, MqttSettings, MqttTlsSettings
from edge_fer.config.providers import DEFAULT as DEFAULT_PROVIDERS
from edge_fer.config.providers import canonical_list as provider_names
from edge_fer.config.providers import checked as checked_providers
from edge_fer.config.source import (
    ConfigError,
    parse_assignment,
)
from edge_fer.config.sources import DEMO_MIN_SIDE, MAX_FRAME_SIZE, parse_source
from edge_fer.exitcodes import CONFIG as EX_CONFIG

__all__ = [
    "EX_CONFIG",
    "CameraConfig",
    "ClaimSettings",
    "ClassifierSection",
    "Config",
    "ConfigError",
    "DetectorSettings",
    "EventsSettings",
    "ExistingFile",
    "FieldProblems",
    "HttpSettings",
    "MetricsSettings",
    "MqttSettings",
    "MqttTlsSettings",
    "ReconnectSettings",
    "TrackingSettings",
    "VideoSettings",
    "WritablePath",
    "parse_assignment",
    "require_files",
    "safe_name",
]


class ReconnectSettings(Strict):
    """How a camera reconnects: the capture thread's backoff takes this model as it is.

    ``max_attempts``: consecutive failed attempts before the camera is declared ``failed`` (None: keep
    trying, for live sources). An attempt fails when opening raises, or when the connection is lost again
    before it has been up for ``stable_after`` seconds; a connection that lasts that long resets both the
    delay and the attempt count. Each delay is the previous one times ``factor``, capped at ``max_delay``
    and spread by +-``jitter`` (a fraction) so cameras behind one switch do not retry in lock-step.
    """

    initial_delay: Annotated[float, Field(gt=0, le=3600)] = 0.5
    max_delay: Annotated[float, Field(gt=0, le=3600)] = 30.0
    factor: Annotated[float, Field(ge=1, le=10)] = 2.0
    jitter: Annotated[float, Field(ge=0, lt=1)] = 0.2
    max_attempts: Annotated[int, Field(ge=1, le=1_000_000)] | None = None  # None: keep trying (live sources)
    stable_after: Annotated[float, Field(ge=0, le=3600)] = 10.0

    @model_validator(mode="after")
    def _delays(self) -> ReconnectSettings:
        if self.max_delay < self.initial_delay:
            raise FieldProblems([("max_delay", f"must be >= initial_delay ({self.initial_delay})")])
        return self


ReconnectConfig = ReconnectSettings  # the name used before the settings became the runtime objects

DEFAULT_MAX_FRAME_PIXELS = 3840 * 2160  # a 4K camera keeps its full-resolution face crops
MAX_FRAME_PIXELS_LIMIT = 100_000_000  # what max_frame_pixels may be raised to


class CameraConfig(Strict):
    """One ``cameras:`` entry. ``max_frame_pixels`` bounds what a frame costs whatever the source sends: a larger
    frame is shrunk (aspect kept) as it is captured, and its event boxes are scaled back to the source's pixels."""

    name: str = "cam0"
    source: str = "demo"
    width: Annotated[int, Field(ge=16, le=MAX_FRAME_SIZE[0])] | None = None
    height: Annotated[int, Field(ge=16, le=MAX_FRAME_SIZE[1])] | None = None
    fps: Annotated[float, Field(gt=0, le=240)] | None = None
    fourcc: str | None = None
    realtime: bool = True
    loop: bool = False
    detect_every: Annotated[int, Field(ge=1, le=1000)] = 1
    max_fps: Annotated[float, Field(gt=0, le=240)] | None = None
    queue_size: Annotated[int, Field(ge=1, le=64)] = 2
    stall_timeout: Annotated[float, Field(gt=0, le=3600)] = 10.0
    reconnect: ReconnectSettings = ReconnectSettings()
    max_frame_pixels: Annotated[int, Field(ge=16 * 16, le=MAX_FRAME_PIXELS_LIMIT)] = DEFAULT_MAX_FRAME_PIXELS

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "camera name")

    @field_validator("source", mode="before")
    @classmethod
    def _source(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)  # `source: 0` is the first camera, as on the command line
        if isinstance(v, str) and not v.strip():
            raise ValueError("source must not be empty (demo, a camera index, /dev/videoN, a file or a URL)")
        return v.strip() if isinstance(v, str) else v

    @field_validator("fourcc")
    @classmethod
    def _fourcc(cls, v: str | None) -> str | None:
        if v is not None and len(v) != 4:
            raise ValueError("fourcc must be exactly four characters, e.g. MJPG or YUYV")
        return v

    @model_validator(mode="after")
    def _source_usable(self) -> CameraConfig:
        # The rules `run` applies when it builds the source (nothing is opened), so check-config refuses
        # what run would: an unknown URL scheme, a missing video file, a frame size the demo cannot draw.
        try:
            parsed = parse_source(self.source)
        except ValueError as exc:
            raise FieldProblems([("source", str(exc))]) from None
        if parsed.kind == "demo":
            small = [(k, v) for k, v in (("width", self.width), ("height", self.height)) if v and v < DEMO_MIN_SIDE]
            if small:
                raise FieldProblems(
                    [(k, f"the demo source draws at least {DEMO_MIN_SIDE} px (got {v})") for k, v in small]
                )
        if self.width and self.height and self.width * self.height > self.max_frame_pixels:
            raise FieldProblems(
                [
                    (
                        "max_frame_pixels",
                        f"{self.width}x{self.height} frames would be shrunk to {self.max_frame_pixels} pixels; "
                        f"raise max_frame_pixels to at least {self.width * self.height} or ask for a smaller size",
                    )
                ]
            )
        return self

    @property
    def safe_name(self) -> str:
        return safe_name(self.name)


Fraction = Annotated[float, Field(ge=0, le=1)]
Providers = Annotated[tuple[str, ...], BeforeValidator(provider_names)]


def _check_providers(section, name: str):
    """Providers the installed onnxruntime lacks are a problem at ``<section>.providers`` listing what it has,
    unless the section sets ``provider_fallback``."""
    try:
        checked_providers(section.providers, section.provider_fallback, name)
    except ValueError as exc:
        raise FieldProblems([("providers", str(exc))]) from None
    return section


class DetectorSettings(Strict):
    """The MTCNN cascade and its gating; :class:`~edge_fer.vision.mtcnn.MtcnnDetector` and
    :class:`~edge_fer.vision.gated.FaceGate` take this model as it is.

    ``min_face_size`` (shorter side, px) is the smallest face the pyramid looks for and ``min_score`` the
    detection-score floor: faces below either are not reported, in ``analyze`` and in the daemon alike.
    ``thresholds`` are the P-Net, R-Net and O-Net score cut-offs inside the cascade (the reference's, apart
    from O-Net's 0.7), ``nms_thresholds`` the suppression overlaps: P-Net within one pyramid level, P-Net
    across levels, R-Net, O-Net. ``scale_factor`` is the pyramid step: above 0.95 the number of levels (and
    the time per frame) grows without a gain in recall. ``threads`` is onnxruntime's intra-op threads per
    network (capped at the CPUs the process may use); ``helper_thread`` lets one extra thread share pyramid
    levels and large batches with the caller
    (same results, lower latency; measured in ``docs/performance.md``). With ``roi_detection`` a full scan
    runs every ``full_scan_interval`` s (0: every frame) and only the regions around known faces, plus
    whatever moved by more than ``motion_threshold`` grey levels (0: the motion trigger is off), in between.
    """

    min_face_size: Annotated[float, Field(ge=12, le=2000)] = 28.0
    min_score: Fraction = 0.9
    thresholds: tuple[Fraction, Fraction, Fraction] = (0.6, 0.7, 0.7)
    nms_thresholds: tuple[Fraction, Fraction, Fraction, Fraction] = (0.5, 0.7, 0.7, 0.7)
    scale_factor: Annotated[float, Field(ge=0.1, le=0.95)] = 0.709
    threads: Annotated[int, Field(ge=1, le=64)] = 1
    helper_thread: bool = True
    roi_detection: bool = True
    full_scan_interval: Annotated[float, Field(ge=0, le=3600)] = 0.5
    motion_threshold: Annotated[float, Field(ge=0, le=255)] = 12.0
    providers: Providers = DEFAULT_PROVIDERS
    provider_fallback: bool = False

    @model_validator(mode="after")
    def _providers_here(self) -> DetectorSettings:
        return _check_providers(self, "detector")


class ClaimSettings(Strict):
    """When edge-fer says what a face shows and when it abstains (``claim: false``): a face claims when its
    ``quality`` (:mod:`edge_fer.vision.quality`, 0..1) is at least ``min_quality`` and its confidence at least
    ``min_confidence``; a track claims on its smoothed quality and confidence, and changes its published
    emotion only while it claims. The defaults were chosen on the development set and FER2013 ``val``
    (``benchmarks/abstention.py``, numbers in ``MODELS.md``); 0 and 0 claim every face."""

    min_quality: Fraction = 0.05
    min_confidence: Fraction = 0.0


class ClassifierSection(Strict):
    models: list[EmotionModelFile] = Field(default_factory=list)  # empty: the bundled default model(s)
    flip: bool = DEFAULT_FLIP
    align: Literal["similarity", "box"] = "similarity"
    margin: Annotated[float, Field(ge=-0.25, le=1.0)] | None = None  # None: the aligner's measured default
    threads: Annotated[int, Field(ge=1, le=64)] = 1
    relight_dark: bool = True  # stretch faces darker than a grey mean of 60 to FER2013's light (vision.emotion)
    providers: Providers = DEFAULT_PROVIDERS  # onnxruntime execution providers, in order (config/providers.py)
    provider_fallback: bool = False  # true: providers this onnxruntime build lacks are skipped, not refused
    claim: ClaimSettings = Field(default_factory=ClaimSettings)

    @model_validator(mode="after")
    def _providers_here(self) -> ClassifierSection:
        return _check_providers(self, "classifier")


# Keys that moved to another section: an old config naming one is refused with one line naming the new key.
_MOVED = {
    "min_face_size": "detector.min_face_size",
    "min_det_score": "detector.min_score",
}


class TrackingSettings(Strict):
    """Per-camera tracks; :class:`~edge_fer.tracking.tracker.Tracker` takes this model as it is.

    A detection pairs with a track when it overlaps the track's predicted box by ``iou_threshold``, or, for
    motion too fast to overlap, when its centre lies within ``max_center_distance`` face sizes of the
    prediction (0: overlap only). A track is confirmed (and gets its id) after ``min_hits`` detections on
    consecutive processed frames, and ends ``max_age`` s after its last detection. ``smoothing_tau`` is the
    time constant (s) of the moving average of the probabilities (0: none); the published label changes
    only after another label has led by more than ``hysteresis_margin`` for ``min_change_duration`` s.
    Which faces are tracked at all is the detector's business (``detector.min_face_size``/``min_score``).
    """

    iou_threshold: Annotated[float, Field(gt=0, le=1)] = 0.3
    max_center_distance: Annotated[float, Field(ge=0, le=10)] = 1.0
    min_hits: Annotated[int, Field(ge=1, le=100)] = 3
    max_age: Annotated[float, Field(gt=0, le=3600)] = 1.0
    smoothing_tau: Annotated[float, Field(ge=0, le=3600)] = 0.5
    hysteresis_margin: Annotated[float, Field(ge=0, le=1)] = 0.1
    min_change_duration: Annotated[float, Field(ge=0, le=3600)] = 0.3

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            moved = [(key, f"moved to {new}; set it there") for key, new in _MOVED.items() if key in data]
            if moved:
                raise FieldProblems(moved)
        return data


class EventsSettings(Strict):
    """Which events a frame produces; :class:`~edge_fer.events.EventPolicy` takes this model as it is."""

    mode: EventsMode = EventsMode.TRACKS
    update_interval: Annotated[float, Field(gt=0, le=86400)] = 1.0


MB = 1024 * 1024
AVI_SEGMENT_LIMIT = 1024 * MB  # OpenCV's AVI writer uses 32-bit chunk sizes; stay far from them


def _avi_or_directory(value: Path) -> Path:
    suffix = value.suffix.lower()
    if suffix and suffix not in (".avi", ".mp4"):
        raise ValueError(
            f"{value}: video output is written as MJPEG .avi or H.264 .mp4 (both stay readable after a crash); "
            "give a directory or a file ending in .avi or .mp4"
        )
    return value


class VideoSettings(Strict):
    """Annotated frames to disk; :class:`~edge_fer.outputs.video.VideoSink` takes this model as it is.

    ``path``: a directory (segments ``<camera>_<YYYYmmdd-HHMMSS>_<n>.mp4`` or ``.avi``, UTC) or one ``.avi`` or
    ``.mp4`` file (no rotation; recording stops at ``segment_mb`` or ``max_total_mb``, whichever is smaller);
    None: off. A segment ends after ``segment_seconds`` or at ``segment_mb``, and the open segments of all
    cameras together never grow past half of ``max_total_mb``, so the cap always holds them and the ones
    before. Past ``max_total_mb`` the oldest segments in the directory are deleted, those of earlier runs
    included. ``codec``: ``h264`` (fragmented MP4 through PyAV, the ``video`` extra), ``mjpeg`` (AVI through
    OpenCV), or ``auto``: H.264 when PyAV is installed, else MJPEG; a single file's suffix decides for it.
    ``quality`` (1-100) is the JPEG quality of each MJPEG frame, and sets H.264's CRF (75: CRF 28).
    """

    path: Annotated[WritablePath, AfterValidator(_avi_or_directory)] | None = None
    segment_seconds: Annotated[float, Field(gt=0, le=86400)] | None = 300.0
    segment_mb: Annotated[float, Field(gt=0, le=1_000_000)] | None = None
    max_total_mb: Annotated[float, Field(gt=0, le=100_000_000)] | None = 1024.0
    quality: Annotated[int, Field(ge=1, le=100)] = 75
    codec: Literal["auto", "h264", "mjpeg"] = "auto"

    @property
    def single_file(self) -> bool:
        return self.path is not None and self.path.suffix.lower() in (".avi", ".mp4")

    @property
    def segment_bytes(self) -> int:
        """The most one file may hold: a single file up to the whole cap, a segment up to half of it (the
        recorder divides that half among the cameras recording)."""
        caps = [AVI_SEGMENT_LIMIT]
        if self.segment_mb is not None:
            caps.append(int(self.segment_mb * MB))
        if self.max_total_mb is not None:
            caps.append(int(self.max_total_mb * MB / (1 if self.single_file else 2)))
        return max(1, min(caps))


VideoOutput = VideoSettings  # the name used before the settings became the runtime objects


SNAPSHOT_PUBLISH_MAX_KB = 16 * 1024  # the largest snapshot payload a config may allow (MQTT itself allows 256 MB)
SNAPSHOT_QUEUE_MAX_MB = 10_000.0  # the largest share of the MQTT outbox snapshots may be given


class SnapshotSettings(Strict):
    """A JPEG of each face when its track starts and at its strongest emotion (written when the track ends);
    :class:`~edge_fer.outputs.snapshots.SnapshotSink` (files) and the MQTT output (``publish``) take this
    model as it is.

    Off by default: a snapshot is a picture of a person; ``enabled`` is the one switch for both ways out.
    Cropped from the annotated frame (box and label drawn, blurred with ``blur_faces``) with ``margin`` of
    the face's size added on every side. ``save``: files in ``path`` (a directory, by default ``snapshots`` in
    the state directory); past ``max_mb`` the oldest snapshots there are deleted. ``publish``: each snapshot
    is also published on ``<prefix>/<device>/<camera>/snapshot`` (needs an MQTT broker); one larger than
    ``publish_max_kb`` is not published (counted), and snapshots waiting for the broker may take at most
    ``publish_queue_mb`` of the MQTT outbox, on top of and apart from the events' bound, so they can never
    push an event out (the oldest snapshot goes first, counted).
    """

    enabled: bool = False
    save: bool = True
    path: WritablePath | None = None
    max_mb: Annotated[float, Field(gt=0, le=1_000_000)] = 100.0
    margin: Annotated[float, Field(ge=0, le=2)] = 0.5
    quality: Annotated[int, Field(ge=1, le=100)] = 85
    publish: bool = False
    publish_max_kb: Annotated[int, Field(ge=1, le=SNAPSHOT_PUBLISH_MAX_KB)] = 256
    publish_queue_mb: Annotated[float, Field(gt=0, le=SNAPSHOT_QUEUE_MAX_MB)] = 16.0

    @model_validator(mode="after")
    def _room(self) -> SnapshotSettings:
        if self.publish_queue_mb * 1024 < self.publish_max_kb:
            raise FieldProblems(
                [("publish_queue_mb", f"must hold at least one snapshot of publish_max_kb ({self.publish_max_kb} KB)")]
            )
        if self.enabled and not (self.save or self.publish):
            raise FieldProblems([("save", "snapshots are enabled with save and publish both off; turn one on")])
        return self

    @property
    def saving(self) -> bool:
        return self.enabled and self.save

    @property
    def publishing(self) -> bool:
        return self.enabled and self.publish

    @property
    def publish_max_bytes(self) -> int:
        return self.publish_max_kb * 1024

    @property
    def queue_bytes(self) -> int:
        return int(self.publish_queue_mb * MB)


class OutputSection(Strict):
    stdout: StdoutMode = StdoutMode.AUTO  # auto: on when no MQTT broker is configured
    video: VideoSettings = VideoSettings()
    snapshots: SnapshotSettings = SnapshotSettings()
    blur_faces: bool = False

    @field_validator("stdout", mode="before")
    @classmethod
    def _yaml_on_off(cls, v: Any) -> Any:
        # YAML 1.1 reads an unquoted `stdout: on` as true; that is what the user meant.
        if isinstance(v, bool):
            return "on" if v else "off"
        return v


class StatsSection(Strict):
    interval: Annotated[float, Field(gt=0, le=86400)] = 10.0


class Config(Strict):
    device: str = Field(default_factory=socket.gethostname)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_repeat_window: Annotated[float, Field(ge=0, le=86400)] = 60.0
    cameras: Annotated[list[CameraConfig], Field(min_length=1)] = Field(default_factory=lambda: [CameraConfig()])
    detector: DetectorSettings = DetectorSettings()
    classifier: ClassifierSection = ClassifierSection()
    tracking: TrackingSettings = TrackingSettings()
    events: EventsSettings = EventsSettings()
    output: OutputSection = OutputSection()
    stats: StatsSection = StatsSection()
    mqtt: MqttSettings = MqttSettings()
    http: HttpSettings = HttpSettings()
    metrics: MetricsSettings = MetricsSettings()

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, v: Any) -> Any:
        if v is None:
            return socket.gethostname()  # `device: null` in the sample: the default, spelled out
        if isinstance(v, str) and not v.strip():
            raise ValueError("device must not be empty (null means the hostname)")
        return check_name(v, "device") if isinstance(v, str) else v

    @model_validator(mode="after")
    def _unique_cameras(self) -> Config:
        seen: dict[str, int] = {}
        problems = []
        for index, cam in enumerate(self.cameras):
            key = cam.safe_name
            if key in seen:
                first = self.cameras[seen[key]].name
                problems.append((f"cameras[{index}].name", f"{cam.name!r} and {first!r} map to the same name {key!r}"))
            else:
                seen[key] = index
        if problems:
            raise FieldProblems(problems)
        return self

    @model_validator(mode="after")
    def _mqtt_device(self) -> Config:
        # The publisher names its topics and client id after the device: the MQTT settings carry it, so the
        # publisher takes `config.mqtt` as it is. (The broker address and password were resolved, once,
        # when the section was validated; a bad URL or an unreadable password is a problem at its key.)
        object.__setattr__(self, "mqtt", self.mqtt.with_device(self.safe_device))
        return self

    @property
    def safe_device(self) -> str:
        return safe_name(self.device)

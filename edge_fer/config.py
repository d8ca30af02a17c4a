"""Typed configuration: YAML in, validated pydantic models out, unknown keys rejected.

Every section has defaults, so an empty file (or no file) runs the ``demo`` camera with
events on stdout. Errors carry the path of the bad key (``cameras[0].fps``) so an operator
can fix a config without reading code.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

EX_CONFIG = 78
_SAFE = re.compile(r"[^a-z0-9_-]+")


def safe_name(value: str) -> str:
    """A name usable as one MQTT topic level and a file name: lowercase a-z, 0-9, '_' and '-'."""
    cleaned = _SAFE.sub("_", value.strip().lower()).strip("_")
    return cleaned or "unnamed"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)


PositiveFloat = Annotated[float, Field(gt=0)]


class ReconnectConfig(Strict):
    initial_delay: PositiveFloat = 0.5
    max_delay: PositiveFloat = 30.0
    max_attempts: Annotated[int, Field(ge=1)] | None = None  # None: keep trying (live sources)

    @model_validator(mode="after")
    def _delays(self) -> ReconnectConfig:
        if self.max_delay < self.initial_delay:
            raise ValueError("max_delay must be >= initial_delay")
        return self


class CameraConfig(Strict):
    name: str = "cam0"
    source: str = "demo"
    width: Annotated[int, Field(ge=16, le=7680)] | None = None
    height: Annotated[int, Field(ge=16, le=4320)] | None = None
    fps: Annotated[float, Field(gt=0, le=240)] | None = None
    fourcc: str | None = None
    realtime: bool = True
    loop: bool = False
    detect_every: Annotated[int, Field(ge=1, le=1000)] = 1
    max_fps: Annotated[float, Field(gt=0, le=240)] | None = None
    queue_size: Annotated[int, Field(ge=1, le=64)] = 2
    stall_timeout: Annotated[float, Field(gt=0)] = 10.0
    reconnect: ReconnectConfig = ReconnectConfig()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("camera name must not be empty")
        return v

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if not str(v).strip():
            raise ValueError("source must not be empty (demo, a camera index, /dev/videoN, a file or a URL)")
        return str(v).strip()

    @field_validator("fourcc")
    @classmethod
    def _fourcc(cls, v: str | None) -> str | None:
        if v is not None and len(v) != 4:
            raise ValueError("fourcc must be exactly four characters, e.g. MJPG or YUYV")
        return v

    @property
    def safe_name(self) -> str:
        return safe_name(self.name)


class DetectorSection(Strict):
    min_face_size: Annotated[float, Field(ge=12, le=2000)] = 40.0
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    scale_factor: Annotated[float, Field(gt=0.1, lt=1.0)] = 0.709
    threads: Annotated[int, Field(ge=1, le=64)] = 1

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if not all(0.0 <= t <= 1.0 for t in v):
            raise ValueError("each threshold must be between 0 and 1")
        return v


class ClassifierSection(Strict):
    models: list[Path] = Field(default_factory=list)  # empty: the bundled default model
    flip: bool = False
    align: Literal["similarity", "box"] = "similarity"
    margin: Annotated[float, Field(ge=0.0, le=1.0)] | None = None  # None: the aligner's measured default
    threads: Annotated[int, Field(ge=1, le=64)] = 1


class TrackingSection(Strict):
    iou_threshold: Annotated[float, Field(gt=0, le=1)] = 0.3
    min_hits: Annotated[int, Field(ge=1, le=100)] = 3
    max_age: PositiveFloat = 1.0
    min_face_size: Annotated[float, Field(ge=0)] = 24.0
    min_det_score: Annotated[float, Field(ge=0, le=1)] = 0.9
    smoothing_tau: Annotated[float, Field(ge=0)] = 0.5
    hysteresis_margin: Annotated[float, Field(ge=0, le=1)] = 0.1
    min_change_duration: Annotated[float, Field(ge=0)] = 0.3


class EventsSection(Strict):
    mode: Literal["tracks", "every_frame"] = "tracks"
    update_interval: PositiveFloat = 1.0


class VideoOutput(Strict):
    path: Path | None = None  # a directory (segments) or a file path; None: off
    segment_seconds: Annotated[float, Field(gt=0)] | None = 300.0
    segment_mb: Annotated[float, Field(gt=0)] | None = None
    max_total_mb: Annotated[float, Field(gt=0)] | None = 1024.0


class OutputSection(Strict):
    stdout: Literal["auto", "on", "off"] = "auto"  # auto: on when no MQTT broker is configured
    video: VideoOutput = VideoOutput()
    blur_faces: bool = False


class StatsSection(Strict):
    interval: PositiveFloat = 10.0


class Config(Strict):
    device: str = Field(default_factory=socket.gethostname)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    cameras: Annotated[list[CameraConfig], Field(min_length=1)] = Field(default_factory=lambda: [CameraConfig()])
    detector: DetectorSection = DetectorSection()
    classifier: ClassifierSection = ClassifierSection()
    tracking: TrackingSection = TrackingSection()
    events: EventsSection = EventsSection()
    output: OutputSection = OutputSection()
    stats: StatsSection = StatsSection()

    @model_validator(mode="after")
    def _unique_cameras(self) -> Config:
        seen: dict[str, str] = {}
        for cam in self.cameras:
            key = cam.safe_name
            if key in seen:
                raise ValueError(f"cameras {seen[key]!r} and {cam.name!r} map to the same topic name {key!r}")
            seen[key] = cam.name
        return self

    @property
    def safe_device(self) -> str:
        return safe_name(self.device)


class ConfigError(Exception):
    """One or more problems in a config; ``problems`` holds one line each, with the key path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))

    def lines(self) -> list[str]:
        return [f"{self.source}: {p}" for p in self.problems]


def _path_text(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _env_substitute(text: str, source: str) -> str:
    missing: list[str] = []

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(3)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        missing.append(name)
        return ""

    result = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}", repl, text)
    if missing:
        raise ConfigError(source, [f"environment variable ${{{n}}} is not set" for n in sorted(set(missing))])
    return result


def parse_config(data: Any, source: str = "config") -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, ["the top level must be a mapping of sections (cameras:, events:, ...)"])
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling; see config/edge-fer.yaml for every option)"
            problems.append(f"{_path_text(err['loc'])}: {msg}")
        raise ConfigError(source, problems) from None


def load_config(path: str | Path | None) -> Config:
    """Read, substitute ``${ENV}``, validate. Raises :class:`ConfigError` with every problem found."""
    import yaml

    if path is None:
        return parse_config({}, "defaults")
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, ["file not found; pass --config with an existing file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [f"cannot read: {exc}"]) from None
    text = _env_substitute(text, source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{where}invalid YAML: {problem}"]) from None
    return parse_config(data, source)

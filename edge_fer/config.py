"""Typed configuration: YAML in, validated pydantic models out, unknown keys rejected.

Every section has defaults, so running without ``--config`` uses the ``demo`` camera with events
on stdout. A bad file is reported whole: every problem with its key path (``cameras[0].fps``) and
YAML line, so an operator fixes a config in one pass without reading code. ``config/edge-fer.yaml``
shows every option with its default (a test keeps it complete).

Relative paths in the file are relative to the file's directory (a service runs from ``/``).
Files a setting depends on are checked here, not at first use: :data:`ExistingFile` and
:data:`WritablePath` for plain fields, :func:`require_files` for files needed only when a feature
is on (raise it from a model validator; each missing file is reported at its own key path).
"""

from __future__ import annotations

import difflib
import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from edge_fer.config_source import ConfigError, Document, Problem, parse_yaml, path_text, substitute
from edge_fer.exitcodes import CONFIG as EX_CONFIG
from edge_fer.redact import find_secrets, is_secret_key, mask_url_passwords, register_secrets

__all__ = [
    "EX_CONFIG",
    "CameraConfig",
    "Config",
    "ConfigError",
    "ExistingFile",
    "FieldProblems",
    "WritablePath",
    "apply_overrides",
    "load_config",
    "parse_assignment",
    "parse_config",
    "require_files",
    "safe_name",
]

_SAFE = re.compile(r"[^a-z0-9_-]+")


def safe_name(value: str) -> str:
    """A name usable as one MQTT topic level and a file name: lowercase a-z, 0-9, '_' and '-'."""
    cleaned = _SAFE.sub("_", value.strip().lower()).strip("_")
    return cleaned or "unnamed"


class FieldProblems(ValueError):
    """Raised by a model validator to report problems at sub-keys (``reconnect.max_delay``), not the model."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems))


def _resolve(value: Path, info: ValidationInfo) -> Path:
    """Relative paths are relative to the config file's directory (the ``base_dir`` context)."""
    value = value.expanduser()
    if value.is_absolute():
        return value
    base = (info.context or {}).get("base_dir")
    return (Path(base) if base else Path.cwd()) / value


def _existing_file(value: Path) -> Path:
    if not value.exists():
        raise ValueError(f"file {value} does not exist")
    if not value.is_file():
        raise ValueError(f"{value} is not a regular file")
    if not os.access(value, os.R_OK):
        raise ValueError(f"file {value} is not readable by this user (uid {os.getuid()})")
    return value


def _writable_path(value: Path) -> Path:
    """The path may not exist yet, but it must be creatable: its nearest existing ancestor is a writable dir."""
    probe = value
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe != value and not probe.is_dir():
        raise ValueError(f"cannot create {value}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | (os.X_OK if probe.is_dir() else 0)):
        raise ValueError(f"cannot write {value}: {probe} is not writable by this user (uid {os.getuid()})")
    return value


ConfigPath = Annotated[Path, AfterValidator(_resolve)]
ExistingFile = Annotated[Path, AfterValidator(_resolve), AfterValidator(_existing_file)]
WritablePath = Annotated[Path, AfterValidator(_resolve), AfterValidator(_writable_path)]


def require_files(model: BaseModel, *fields: str, reason: str = "") -> None:
    """Raise :class:`FieldProblems` naming each of ``fields`` whose (non-None) file is missing.

    For cross-field rules, e.g. in a TLS section:
    ``if self.enabled: require_files(self, "ca_file", "certfile", reason="tls.enabled is true")``.
    """
    problems = []
    for name in fields:
        value = getattr(model, name)
        if value is None:
            continue
        try:
            _existing_file(Path(value))
        except ValueError as exc:
            problems.append((name, f"{exc}" + (f" (needed because {reason})" if reason else "")))
    if problems:
        raise FieldProblems(problems)


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
            raise FieldProblems([("max_delay", f"must be >= initial_delay ({self.initial_delay})")])
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
    models: list[ExistingFile] = Field(default_factory=list)  # empty: the bundled default model
    flip: bool = False
    align: Literal["similarity", "box"] = "similarity"
    margin: Annotated[float, Field(ge=-0.25, le=1.0)] | None = None  # None: the aligner's measured default
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
    path: WritablePath | None = None  # a directory (segments) or a file path; None: off
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
    log_repeat_window: Annotated[float, Field(ge=0, le=86400)] = 60.0
    cameras: Annotated[list[CameraConfig], Field(min_length=1)] = Field(default_factory=lambda: [CameraConfig()])
    detector: DetectorSection = DetectorSection()
    classifier: ClassifierSection = ClassifierSection()
    tracking: TrackingSection = TrackingSection()
    events: EventsSection = EventsSection()
    output: OutputSection = OutputSection()
    stats: StatsSection = StatsSection()

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, v: Any) -> Any:
        if v is None:
            return socket.gethostname()  # `device: null` in the sample: the default, spelled out
        if isinstance(v, str) and not v.strip():
            raise ValueError("device must not be empty (null means the hostname)")
        return v

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

    @property
    def safe_device(self) -> str:
        return safe_name(self.device)


# --- validation with readable errors ------------------------------------------------------------


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the last key of ``loc`` (to suggest spellings for unknown keys)."""
    model: Any = Config
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part)) if isinstance(model, type) else None
        if field is None:
            return None
        model = _inner_model(field.annotation)
        if model is None:
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _message(err: Mapping[str, Any]) -> tuple[tuple[Any, ...], str]:
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        owner = _model_at(loc[:-1])
        close = difflib.get_close_matches(key, list(owner.model_fields), n=1) if owner else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return loc, f"unknown key{hint}; every option is listed in config/edge-fer.yaml"
    error = (err.get("ctx") or {}).get("error")
    if kind == "value_error" and error is not None:
        message = str(error)
    elif kind == "missing" and loc and isinstance(loc[-1], int):
        message = "too few items"
    else:
        message = err["msg"]
    value = err.get("input")
    secret = any(is_secret_key(part) for part in loc if isinstance(part, str))
    if (
        not secret
        and isinstance(value, (str, int, float, bool))
        and kind != "missing"
        and not (isinstance(value, str) and value in message)
    ):
        shown = mask_url_passwords(repr(value))
        message += f" (got {shown[:60]}{'...' if len(shown) > 60 else ''})"
    return loc, message


def _problems_from(exc: ValidationError, doc: Document | None) -> list[tuple[tuple[Any, ...], Problem]]:
    out = []
    for err in exc.errors():
        error = (err.get("ctx") or {}).get("error")
        pairs: list[tuple[tuple[Any, ...], str]]
        if isinstance(error, FieldProblems):
            pairs = [(tuple(err["loc"]) + _split_loc(name), message) for name, message in error.problems]
        else:
            pairs = [_message(err)]
        for loc, message in pairs:
            line = doc.line_of(loc) if doc is not None else None
            out.append((loc, Problem(message, path_text(loc) or "(top level)", line)))
    return out


def _split_loc(text: str) -> tuple[Any, ...]:
    """``cameras[1].name`` -> ``("cameras", 1, "name")``."""
    parts: list[Any] = []
    for piece in text.split("."):
        name, *indexes = piece.split("[")
        if name:
            parts.append(name)
        parts.extend(int(i.rstrip("]")) for i in indexes)
    return tuple(parts)


def _validate(
    data: Any,
    source: str,
    doc: Document | None,
    base_dir: Path | None,
    extra: list[tuple[tuple[Any, ...], Problem]],
    hide: frozenset[tuple[Any, ...]] = frozenset(),
) -> Config:
    """Validate, then raise every problem (``extra`` ones first found while reading) sorted by line.

    Validation errors at a key in ``hide`` are dropped: a value whose ``${...}`` failed is already
    reported, and its leftover text would only add noise.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        message = f"the top level must be a mapping of sections (cameras:, events:, ...), not {_kind(data)}"
        raise ConfigError(source, [Problem(message, line=1 if doc else None)])
    problems = list(extra)
    config = None
    try:
        config = Config.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        problems += [(loc, p) for loc, p in _problems_from(exc, doc) if loc not in hide]
    if problems or config is None:
        ordered = sorted(problems, key=lambda item: (item[1].line or 0, item[1].path))
        raise ConfigError(source, [p for _, p in ordered])
    register_secrets(find_secrets(config.model_dump(mode="json")))
    return config


def _kind(value: Any) -> str:
    return {list: "a list", str: "a single value", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def parse_config(data: Any, source: str = "config", base_dir: str | Path | None = None) -> Config:
    """Validate already-loaded data (a dict). Raises :class:`ConfigError` with every problem found."""
    return _validate(data, source, None, Path(base_dir) if base_dir else None, [])


def load_config(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read, substitute ``${...}``, validate. Raises :class:`ConfigError` with every problem found.

    ``None`` means no file: the defaults. Secrets found in the config are registered with the log
    redactor, so they never appear in a log line.
    """
    if path is None:
        return parse_config({}, "defaults")
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, ["file not found; pass --config with an existing file"]) from None
    except IsADirectoryError:
        raise ConfigError(source, ["is a directory; pass the YAML file itself"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [f"cannot read: {exc}"]) from None
    doc = parse_yaml(text, source)
    if doc.data is None:
        raise ConfigError(
            source,
            ["the file has no settings (empty or only comments); start from config/edge-fer.yaml, or omit --config"],
        )
    sub = substitute(doc.data, environ)
    register_secrets(sub.secrets)
    extra = [(_split_loc(p.path), p) for p in doc.problems] + [(loc, doc.problem(loc, m)) for loc, m in sub.problems]
    hide = frozenset(loc for loc, _ in sub.problems)
    return _validate(sub.data, source, doc, path.resolve().parent, extra, hide)


# --- command-line overrides -------------------------------------------------------------------


def apply_overrides(
    config: Config,
    overrides: Mapping[str, Any] | None = None,
    *,
    source: str | None = None,
) -> Config:
    """A new config with command-line values applied, validated like the file.

    ``source`` replaces the first camera's source (with no config file that camera is the only
    one). ``overrides`` maps key paths to values: ``{"output.video.path": "out.mp4",
    "cameras[0].fps": 15, "log_level": "debug"}``; ``None`` values are skipped, so argparse
    defaults can be passed as they are. Relative paths are relative to the working directory.
    Raises :class:`ConfigError` (source ``command line``) naming the key path of each problem.
    """
    data = config.model_dump(mode="python")
    problems: list[tuple[tuple[Any, ...], Problem]] = []
    if source is not None:
        data["cameras"][0]["source"] = source
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        loc = _split_loc(key)
        try:
            _set_path(data, loc, value)
        except (KeyError, IndexError, TypeError) as exc:
            problems.append((loc, Problem(f"cannot set: {exc.args[0] if exc.args else exc}", key)))
    return _validate(data, "command line", None, None, problems)


def _set_path(data: Any, loc: tuple[Any, ...], value: Any) -> None:
    if not loc:
        raise KeyError("empty key")
    node = data
    for part in loc[:-1]:
        if isinstance(part, int):
            if not isinstance(node, list) or not 0 <= part < len(node):
                raise IndexError(f"no item [{part}] here")
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise TypeError(f"{part!r} is not a section")
            node = node.setdefault(part, {})
    last = loc[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or not 0 <= last < len(node):
            raise IndexError(f"no item [{last}] here")
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise TypeError(f"{last!r} is not a key of a section")


def parse_assignment(text: str) -> tuple[str, Any]:
    """``tracking.min_hits=5`` -> ``("tracking.min_hits", 5)``; the value is read as YAML (for ``--set``)."""
    import yaml

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"expected KEY=VALUE, e.g. tracking.min_hits=5 (got {text!r})")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value

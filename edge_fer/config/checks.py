"""Checks that need more than a type: files a setting points at, rules across fields, and readable errors.

Plain fields use the annotated types (:data:`ExistingFile`, :data:`WritablePath`); a file needed only when
a feature is on is checked from a model validator with :func:`require_files`, and any model validator can
raise :class:`FieldProblems` to report each problem at its own key instead of at the section. Field checks
are reported together with the type errors; a model validator runs once its own fields are valid.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from edge_fer.bundled import ModelError, emotion_model_path
from edge_fer.config.source import Document, Problem, path_text, split_loc
from edge_fer.redact import is_secret_key, mask_url_passwords

_SAFE = re.compile(r"[^a-z0-9_-]+")
# Names become topic levels, client ids, file names and parts of every payload. Unbounded, a 70,000-character
# device name passed validation and then killed the MQTT thread (a topic is at most 65,535 bytes), so the
# lengths are checked here, where the mistake can be named. 64 is Linux's HOST_NAME_MAX: every default fits.
MAX_NAME_CHARS = 64
MAX_PREFIX_CHARS = 128


def check_name(value: str, what: str) -> str:
    """``value`` when it is a usable device or camera name; ValueError naming ``what`` otherwise."""
    if not value.strip():
        raise ValueError(f"{what} must not be empty")
    if len(value) > MAX_NAME_CHARS:
        raise ValueError(f"{what} is {len(value)} characters long; at most {MAX_NAME_CHARS} fit in MQTT topics")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{what} must not contain control characters")
    return value


def safe_name(value: str) -> str:
    """A name usable as one MQTT topic level and a file name: lowercase a-z, 0-9, '_' and '-'."""
    cleaned = _SAFE.sub("_", str(value).strip().lower()).strip("_")
    return cleaned or "unnamed"


def check_prefix(prefix: str) -> str:
    """An MQTT topic prefix may span levels (``home/vision``) but must not hold wildcards, empty levels or
    ``$``; the one rule for ``mqtt.topic_prefix``, ``mqtt.discovery_prefix`` and ``edge-fer listen --prefix``."""
    problem = None
    if not prefix:
        problem = "must not be empty"
    elif len(prefix) > MAX_PREFIX_CHARS:
        problem = f"is {len(prefix)} characters long; at most {MAX_PREFIX_CHARS}"
    elif any(c in prefix for c in "+#\0"):
        problem = "must not contain '+', '#' or NUL (they are MQTT wildcards)"
    elif any(ord(c) < 32 or ord(c) == 127 for c in prefix):
        problem = "must not contain control characters"
    elif prefix.startswith("$"):
        problem = "must not start with '$' (reserved for broker topics such as $SYS)"
    elif "" in prefix.split("/"):
        problem = "must not start or end with '/' or contain '//'"
    if problem:
        shown = prefix if len(prefix) <= 40 else prefix[:40] + "..."
        raise ValueError(f"MQTT topic prefix {shown!r} {problem}")
    return prefix


class Strict(BaseModel):
    """Every config section: unknown keys are errors, defaults are validated, values are frozen, and a number
    is finite (YAML reads `.inf` and `.nan`; no setting means either, and a sleep of `inf` raises)."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic reads true as 1; in YAML an unquoted yes/on/true for a number is a mistake, not a 1.
        if isinstance(value, bool) and info.field_name and _is_number(cls.model_fields[info.field_name].annotation):
            raise ValueError("expected a number, not true/false")
        return value


def _is_number(annotation: Any) -> bool:
    """Whether a field holds an int or a float (possibly Annotated, or optional), but never a bool."""
    if annotation in (int, float):
        return True
    if get_origin(annotation) is Literal:
        return False
    return any(_is_number(arg) for arg in get_args(annotation) if arg is not type(None))


class FieldProblems(ValueError):
    """Raised by a model validator to report problems at sub-keys (``reconnect.max_delay``), not the model."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems))


def _resolve(value: Path, info: ValidationInfo) -> Path:
    """Relative paths are relative to the config file's directory (the ``base_dir`` context)."""
    try:
        value = value.expanduser()
    except RuntimeError:  # ~name of a user this machine does not have
        raise ValueError(f"cannot expand {str(value).split('/')[0]!r}: no such user on this machine") from None
    if value.is_absolute():
        return value
    base = (info.context or {}).get("base_dir")
    return (Path(base) if base else Path.cwd()) / value


def _existing_file(value: Path) -> Path:
    try:
        return _check_existing(value)
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise ValueError(f"{str(value)[:80]}...: {exc.strerror or exc}") from None


def _check_existing(value: Path) -> Path:
    if not value.exists():
        raise ValueError(f"file {value} does not exist")
    if not value.is_file():
        raise ValueError(f"{value} is not a regular file")
    if not os.access(value, os.R_OK):
        raise ValueError(f"file {value} is not readable by this user (uid {os.getuid()})")
    return value


def _writable_path(value: Path) -> Path:
    """The path may not exist yet, but it must be creatable: its nearest existing ancestor is a writable dir."""
    try:
        return _check_writable(value)
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise ValueError(f"cannot create {str(value)[:80]}...: {exc.strerror or exc}") from None


def _check_writable(value: Path) -> Path:
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


def _bundled_emotion_model(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return emotion_model_path(value)
    except ModelError as exc:
        raise ValueError(str(exc)) from None


# A path, or the short name of a model shipped in the package (``mini_xception``).
EmotionModelFile = Annotated[ExistingFile, BeforeValidator(_bundled_emotion_model)]
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


# --- pydantic errors as problems with key paths ---------------------------------------------------


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the last key of ``loc`` (to suggest spellings for unknown keys)."""
    model: Any = root
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


def _message(err: Mapping[str, Any], root: type[BaseModel]) -> tuple[tuple[Any, ...], str]:
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        owner = _model_at(root, loc[:-1])
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


def problems_from(
    exc: ValidationError, root: type[BaseModel], doc: Document | None
) -> list[tuple[tuple[Any, ...], Problem]]:
    """Each error of ``exc`` (validating ``root``) as a key path and a :class:`Problem` with its YAML line."""
    out = []
    for err in exc.errors():
        error = (err.get("ctx") or {}).get("error")
        pairs: list[tuple[tuple[Any, ...], str]]
        if isinstance(error, FieldProblems):
            pairs = [(tuple(err["loc"]) + split_loc(name), message) for name, message in error.problems]
        else:
            pairs = [_message(err, root)]
        for loc, message in pairs:
            line = doc.line_of(loc) if doc is not None else None
            out.append((loc, Problem(message, path_text(loc) or "(top level)", line)))
    return out

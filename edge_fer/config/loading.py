"""Reading a config: YAML text or loaded data, ``${...}`` substitution and command-line overrides, validated
into :class:`~edge_fer.config.settings.Config` with every problem reported at once, sorted by line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge_fer.config.checks import problems_from
from edge_fer.config.settings import Config
from edge_fer.config.source import (
    ConfigError,
    Document,
    Problem,
    parse_assignment,
    parse_yaml,
    set_path,
    split_loc,
    substitute,
)
from edge_fer.readfile import FileRefused, read_regular
from edge_fer.redact import find_secrets, register_secrets

MAX_CONFIG_BYTES = 1 << 20  # the annotated sample is 20 KB

__all__ = ["SetError", "apply_assignments", "apply_overrides", "load_config", "parse_config"]


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
        problems += [(loc, p) for loc, p in problems_from(exc, Config, doc) if loc not in hide]
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
    if not path.exists():
        raise ConfigError(source, ["file not found; pass --config with an existing file"])
    if path.is_dir():
        raise ConfigError(source, ["is a directory; pass the YAML file itself"])
    try:  # a FIFO, a device or a huge file is refused before it is read (it would hang or fill memory)
        text = read_regular(path, MAX_CONFIG_BYTES, what="config file").decode("utf-8")
    except FileRefused as exc:
        raise ConfigError(source, [str(exc).removeprefix(f"{source}: ")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [f"cannot read: {exc}"]) from None
    doc = parse_yaml(text, source)
    if doc.data is None:
        raise ConfigError(
            source,
            ["the file has no settings (empty or only comments); start from config/edge-fer.yaml, or omit --config"],
        )
    sub = substitute(doc.data, environ)
    register_secrets(sub.secrets)
    # The document's own problems keep their text path: a key such as 'a[' or 'x.y' has no key-path syntax.
    extra = [((), p) for p in doc.problems] + [(loc, doc.problem(loc, m)) for loc, m in sub.problems]
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
        loc = split_loc(key)
        try:
            set_path(data, loc, value)
        except (KeyError, IndexError, TypeError) as exc:
            problems.append((loc, Problem(f"cannot set: {exc.args[0] if exc.args else exc}", key)))
    return _validate(data, "command line", None, None, problems)


class SetError(ValueError):
    """A ``--set`` that cannot be applied. The message names the keys and never a value: a ``--set`` may carry a
    password or a token, and stderr goes to the journal. ``malformed``: an item that is not KEY=VALUE at all."""

    def __init__(self, message: str, *, malformed: bool = False) -> None:
        super().__init__(message)
        self.malformed = malformed


def apply_assignments(config: Config, items: Sequence[str]) -> Config:
    """``config`` with every ``--set KEY=VALUE`` of ``items`` applied and validated, or :class:`SetError` (one
    line, ``--set KEY: reason (value not shown)``)."""
    pairs = {}
    for item in items:
        key, sep, _ = item.partition("=")
        if not sep or not key.strip():
            raise SetError("--set expects KEY=VALUE, e.g. --set tracking.min_hits=5", malformed=True)
        pairs[key.strip()] = parse_assignment(item)[1]
    try:
        return apply_overrides(config, pairs)
    except ConfigError as exc:
        keys = sorted({_given_key(p.path, pairs) for p in exc.items if p.path} or set(pairs))
        reasons = sorted({_without_value(p.message, pairs.get(p.path)) for p in exc.items})
        raise SetError(f"--set {', '.join(keys)}: {'; '.join(reasons)} (value not shown)") from None


def _given_key(path: str, pairs: Mapping[str, Any]) -> str:
    """The ``--set`` key a problem's path lies under: a path inside a value (``mqtt={secret: 1}`` gives
    ``mqtt.secret``) would show part of the value; a path under no given key (a check across settings) is a
    real config key."""
    under = [key for key in pairs if path == key or path.startswith((f"{key}.", f"{key}["))]
    return max(under, key=len) if under else path


def _without_value(message: str, value: Any) -> str:
    """The reason without the rejected value: drops the ``(got ...)`` suffix, and the whole reason when the
    value's text still appears in it."""
    reason = message.split(" (got ", 1)[0]
    text = "" if value is None else str(value)
    return "invalid value" if len(text) >= 3 and text in reason else reason

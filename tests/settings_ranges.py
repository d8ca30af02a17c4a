"""The numeric settings of the config and their declared ranges, read from the pydantic models themselves.

The property test (``tests/config/test_accepted_configs_build.py``) and the sweep
(``benchmarks/config_sweep.py``) take their values from here, so a range changed in a model is the range they
test: the edges cannot drift from the code that enforces them.
"""

from __future__ import annotations

import copy
import math
import pathlib
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel

from edge_fer.config.settings import Config

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class NumericSetting:
    """One int or float setting (a tuple item counts as one) with the bounds its model declares."""

    path: Path
    kind: type
    low: float | None
    low_open: bool
    high: float | None
    high_open: bool
    optional: bool

    @property
    def key(self) -> str:
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
        return out

    def _step(self, bound: float) -> float:
        return 1 if self.kind is int else max(abs(bound), 1.0) * 1e-6

    def edges(self) -> list[Any]:
        """Values at and just inside each declared bound, and just outside it (which must be refused)."""
        values: list[Any] = []
        for bound, is_open, inward in ((self.low, self.low_open, 1), (self.high, self.high_open, -1)):
            if bound is None:
                continue
            step = self._step(bound)
            at = bound + inward * step if is_open else bound
            values += [at, at + inward * step, bound - inward * step if not is_open else bound]
        if self.kind is int:
            values = [int(v) for v in values]
        return list(dict.fromkeys(values))

    def inside(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))


_KINDS = (("ge", True, False), ("gt", True, True), ("le", False, False), ("lt", False, True))


def _bounds(metadata: list[Any]) -> tuple[float | None, bool, float | None, bool]:
    low = high = None
    low_open = high_open = False
    for item in metadata:
        for name, is_low, is_open in _KINDS:
            value = getattr(item, name, None)
            if value is None:
                continue
            if is_low:
                low, low_open = value, is_open
            else:
                high, high_open = value, is_open
        for inner in getattr(item, "metadata", ()) or ():  # a FieldInfo inside Annotated[...]
            got = _bounds([inner])
            low, low_open = (got[0], got[1]) if got[0] is not None else (low, low_open)
            high, high_open = (got[2], got[3]) if got[2] is not None else (high, high_open)
    return low, low_open, high, high_open


def _walk(annotation: Any, metadata: list[Any], path: Path, optional: bool, out: list[NumericSetting]) -> None:
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        _walk(base, metadata + list(extra), path, optional, out)
    elif origin is Literal:
        return  # a choice (qos 0/1/2), not a range
    elif annotation in (int, float):
        out.append(NumericSetting(path, annotation, *_bounds(metadata), optional))
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            _walk(field.annotation, list(field.metadata), (*path, name), False, out)
    elif origin is tuple:
        for index, item in enumerate(get_args(annotation)):
            _walk(item, list(metadata), (*path, index), optional, out)
    elif origin is list:
        (item,) = get_args(annotation)
        _walk(item, [], (*path, 0), optional, out)
    elif get_args(annotation):  # X | None
        args = [a for a in get_args(annotation) if a is not type(None)]
        for arg in args:
            _walk(arg, metadata, path, optional or len(args) < len(get_args(annotation)), out)


def numeric_settings(model: type[BaseModel] = Config) -> list[NumericSetting]:
    out: list[NumericSetting] = []
    _walk(model, [], (), False, out)
    return out


def with_value(base: dict, path: Path, value: Any) -> dict:
    """A deep copy of ``base`` with ``value`` at ``path`` (the path's containers exist in ``base``)."""
    data = copy.deepcopy(base)
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data


def finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def text_settings(model: type[BaseModel] = Config) -> list[Path]:
    """Paths of the free-text settings (a string or a file path, maybe optional, not a choice), for
    blank/odd-text sweeps."""
    out: list[Path] = []

    def walk(annotation: Any, path: Path) -> None:
        origin = get_origin(annotation)
        if origin is Annotated:
            walk(get_args(annotation)[0], path)
        elif annotation is str or annotation is pathlib.Path:
            out.append(path)
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for name, field in annotation.model_fields.items():
                walk(field.annotation, (*path, name))
        elif origin is list:
            item = get_args(annotation)[0]
            if isinstance(item, type) and issubclass(item, BaseModel):
                walk(item, (*path, 0))
        elif origin is not Literal and get_args(annotation):
            for arg in get_args(annotation):
                if arg is not type(None):
                    walk(arg, path)

    walk(model, ())
    return out


def key_of(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out

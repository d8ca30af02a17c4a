"""A config mistake as an operator reads it: a key path (``cameras[0].fps``), a YAML line, what to do.

Its own module so that the YAML reader (:mod:`edge_fer.config.source`) and the document-shape checks
(:mod:`edge_fer.config.shape`) both build on it without importing each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Loc = tuple[str | int, ...]


def path_text(loc: Sequence[str | int]) -> str:
    """``("cameras", 0, "fps")`` -> ``cameras[0].fps``; an empty key shows as ``""``, so it is still a place."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + (str(part) or '""')
    return out


@dataclass(frozen=True)
class Problem:
    """One mistake in a config: where (key path, YAML line) and what to do."""

    message: str
    path: str = ""
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = ""
        if self.line is not None:
            where = f"line {self.line}" + (f", column {self.column}" if self.column is not None else "") + ": "
        return where + (f"{self.path}: " if self.path else "") + self.message

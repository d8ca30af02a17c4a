"""The base of every state and policy word that leaves the process (JSON, MQTT, YAML, log lines).

``class X(WireWord)`` gives named members (``CaptureState.CONNECTED``, typos fail at import, editors
complete them) that still *are* their strings: they compare equal to, hash like, JSON-encode and format
as the plain value, so every payload stays byte-identical. ``enum.StrEnum`` would do the same, but it
needs Python 3.11 and edge-fer supports 3.10.
"""

from __future__ import annotations

from enum import Enum


class WireWord(str, Enum):
    """A str-valued enum whose ``str()`` and ``format()`` are its value, on every Python version."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """The words as plain strings, in definition order (for help texts and schemas)."""
        return tuple(m.value for m in cls)

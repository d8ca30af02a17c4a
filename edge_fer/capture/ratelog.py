"""Logging for errors that repeat: the first occurrence, then one summary per interval.

A camera that fails every second for a day must leave a handful of lines per hour, not
86,400, and the summary still says how often it happened and what the latest error was.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass


@dataclass
class _Entry:
    last_emit: float
    level: int
    suppressed: int = 0
    last_message: str = ""


class RateLimitedLog:
    """Per-key rate limit in front of a logger; ``key`` groups messages of one kind."""

    def __init__(self, logger: logging.Logger, interval: float = 60.0, clock=time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def log(self, key: str, level: int, message: str) -> bool:
        """Log ``message`` now or count it for the next summary; True when a line was written."""
        now = self._clock()
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(last_emit=now, level=level)
            self.logger.log(level, message)
            return True
        if now - entry.last_emit < self.interval:
            entry.suppressed += 1
            entry.last_message, entry.level = message, level
            return False
        if entry.suppressed:
            self.logger.log(
                level, "%s (and %d more like it in the last %.0f s)", message, entry.suppressed, now - entry.last_emit
            )
        else:
            self.logger.log(level, message)
        entry.last_emit, entry.suppressed, entry.last_message = now, 0, ""
        return True

    def flush(self, key: str | None = None) -> None:
        """Write the pending summary for ``key`` (all keys if None) and forget it.

        Called when the condition clears (the camera reconnected), so the next failure is
        logged at once again and the count of the last burst is not lost.
        """
        now = self._clock()
        for k in [key] if key is not None else list(self._entries):
            entry = self._entries.pop(k, None)
            if entry is not None and entry.suppressed:
                self.logger.log(
                    entry.level,
                    "%s (repeated %d more time%s in the last %.0f s)",
                    entry.last_message,
                    entry.suppressed,
                    "" if entry.suppressed == 1 else "s",
                    now - entry.last_emit,
                )

"""A one-line progress bar on standard error: frames done, processing rate and time left.

Redrawn at most a few times a second with a carriage return, so it costs nothing next to inference and
does not fill a terminal's scrollback; only drawn on a terminal unless asked for, since a log file or a
pipe would collect every redraw.
"""

from __future__ import annotations

import time
from typing import IO

REDRAW_EVERY = 0.25


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """``update(done)`` after each frame, ``finish()`` once. ``total`` None: a stream of unknown length."""

    def __init__(self, stream: IO[str], label: str, total: int | None, *, clock=time.monotonic) -> None:
        self.stream, self.label, self.total, self.clock = stream, label, total, clock
        self.started = clock()
        self._last_draw = -1e9
        self._width = 0

    def line(self, done: int) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        fps = done / elapsed
        if self.total:
            part = min(done / self.total, 1.0)
            bar = "#" * int(part * 20)
            left = (self.total - done) / fps if fps > 0 else 0.0
            return (
                f"{self.label} [{bar:<20}] {done}/{self.total} frames  {fps:.1f} fps  "
                f"ETA {_duration(left)}  ({100 * part:.0f}%)"
            )
        return f"{self.label} {done} frames  {fps:.1f} fps  {_duration(elapsed)} elapsed"

    def update(self, done: int) -> None:
        now = self.clock()
        if now - self._last_draw < REDRAW_EVERY:
            return
        self._last_draw = now
        self._draw(self.line(done))

    def finish(self, done: int) -> None:
        self._draw(self.line(done))
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, text: str) -> None:
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

"""Logging for a daemon that runs for months: plain lines on stderr, no secrets, no floods.

- Under systemd (``$JOURNAL_STREAM`` names our stderr) lines carry a ``<N>`` priority prefix that
  journald turns into the entry's priority (``journalctl -p warning`` works) and no timestamp,
  since the journal adds its own. Elsewhere lines start with a local timestamp.
- A camera that fails every second must not write 86,400 lines a day: :class:`RateLimitHandler`
  lets the first warning of a kind through, swallows repeats for a window, then writes one
  ``(repeated N times in the last M s)`` summary.
- Every line passes through the secret :class:`~edge_fer.redact.Redactor`, tracebacks included.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from edge_fer.redact import REDACTOR, Redactor

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# syslog priorities, which journald reads from a "<N>" line prefix (SyslogLevelPrefix=yes, the default).
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
_INSTALLED = "_edge_fer_handler"


def get_logger(component: str) -> logging.Logger:
    """The logger of one component: ``edge_fer.<component>``."""
    return logging.getLogger(f"edge_fer.{component}")


def journal_stream(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (stderr by default) is connected to the journal.

    ``$JOURNAL_STREAM`` holds ``device:inode`` of the journal pipe; comparing it with the stream's own
    fstat avoids a false positive when stderr was redirected to a file by a child of the service.
    """
    value = os.environ.get("JOURNAL_STREAM", "")
    if not value:
        return False
    stream = sys.stderr if stream is None else stream
    try:
        st = os.fstat(stream.fileno())
        device, inode = (int(part) for part in value.split(":", 1))
    except (OSError, ValueError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


def _short_name(name: str) -> str:
    return name[len("edge_fer.") :] if name.startswith("edge_fer.") else name


class LineFormatter(logging.Formatter):
    """``LEVEL component: message``, with a timestamp or a journald priority prefix, secrets masked."""

    def __init__(self, journal: bool, redactor: Redactor = REDACTOR) -> None:
        super().__init__()
        self.journal = journal
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname} {_short_name(record.name)}: {record.getMessage()}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text += "\n" + record.exc_text
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        text = self.redactor.redact(text)
        first, *rest = text.split("\n")
        if self.journal:
            # Every physical line becomes a journal entry; give each the record's priority.
            prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
            return "\n".join([prefix + first] + [prefix + "  " + line for line in rest])
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        stamp += f".{int(record.msecs):03d}"
        return "\n".join([f"{stamp} {first}"] + ["  " + line for line in rest])


@dataclass
class _Seen:
    since: float  # start of the current suppression window
    count: int = 0  # repeats swallowed in this window
    last: logging.LogRecord | None = None


class RateLimitHandler(logging.Handler):
    """Pass records to ``target``, but at most one per kind per ``window`` seconds.

    A kind is (logger name, level, message template): ``log.warning("camera %s: %s", ...)`` with
    different arguments is one kind, so use a per-camera child logger or ``extra={"rate_key": ...}``
    to keep kinds apart, and ``extra={"rate_limit": False}`` for a record that must always pass.
    Records below ``min_level`` (INFO stats lines) are never limited. Swallowed repeats are reported
    as one summary line once the window has passed (written when the next record of any kind
    arrives, on :meth:`flush`, and on :meth:`close`).
    """

    def __init__(
        self,
        target: logging.Handler,
        window: float = 60.0,
        min_level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.target = target
        self.window = float(window)
        self.min_level = min_level
        self.clock = clock
        self._seen: dict[tuple[str, int, str], _Seen] = {}
        self._last_sweep = float("-inf")

    def emit(self, record: logging.LogRecord) -> None:
        now = self.clock()
        if now - self._last_sweep >= min(1.0, self.window):
            self._sweep(now, force=False)
        if self.window <= 0 or record.levelno < self.min_level or getattr(record, "rate_limit", True) is False:
            self.target.handle(record)
            return
        key = (record.name, record.levelno, str(getattr(record, "rate_key", None) or record.msg))
        seen = self._seen.get(key)
        if seen is None:
            self._seen[key] = _Seen(since=now)
            self.target.handle(record)
        else:
            seen.count += 1
            seen.last = record

    def _sweep(self, now: float, force: bool) -> None:
        self._last_sweep = now
        for key, seen in list(self._seen.items()):
            if not force and now - seen.since < self.window:
                continue
            if seen.count and seen.last is not None:
                self.target.handle(_summary(seen.last, seen.count, now - seen.since))
                # Stay in the window: a steady failure costs one line per window, not two.
                self._seen[key] = _Seen(since=now)
            else:
                del self._seen[key]

    def flush(self) -> None:
        self.acquire()
        try:
            self._sweep(self.clock(), force=False)
        finally:
            self.release()
        self.target.flush()

    def close(self) -> None:
        self.acquire()
        try:
            self._sweep(self.clock(), force=True)
        finally:
            self.release()
        self.target.close()
        super().close()


def _summary(record: logging.LogRecord, count: int, seconds: float) -> logging.LogRecord:
    summary = logging.makeLogRecord(record.__dict__)
    times = "time" if count == 1 else "times"
    summary.msg = f"{record.getMessage()} (repeated {count} {times} in the last {seconds:.0f} s)"
    summary.args = None
    summary.exc_info = None
    summary.exc_text = None
    summary.stack_info = None
    return summary


def parse_level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    try:
        return LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}") from None


def setup_logging(
    level: str | int = "info",
    *,
    stream: TextIO | None = None,
    journal: bool | None = None,
    repeat_window: float = 60.0,
    redactor: Redactor = REDACTOR,
) -> RateLimitHandler:
    """Send all logging to ``stream`` (stderr) as plain lines; call once at startup, again to change.

    ``journal=None`` detects systemd's journal from ``$JOURNAL_STREAM``. ``repeat_window=0`` turns
    rate limiting off. Returns the installed handler (its ``close()`` writes pending summaries).
    """
    stream = sys.stderr if stream is None else stream
    journal = journal_stream(stream) if journal is None else journal
    target = logging.StreamHandler(stream)
    target.setFormatter(LineFormatter(journal=journal, redactor=redactor))
    handler = RateLimitHandler(target, window=repeat_window)
    setattr(handler, _INSTALLED, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _INSTALLED, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    numeric = parse_level(level)
    root.setLevel(numeric)
    logging.getLogger("edge_fer").setLevel(numeric)
    logging.captureWarnings(True)
    return handler

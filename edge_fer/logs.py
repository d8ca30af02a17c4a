"""Logging for a daemon that runs for months: plain lines on stderr, no secrets, no floods.

- Under systemd (``$JOURNAL_STREAM`` names our stderr) lines carry a ``<N>`` priority prefix that
  journald turns into the entry's priority (``journalctl -p warning`` works) and no timestamp,
  since the journal adds its own. Elsewhere lines start with a local timestamp.
- A camera that fails every second must not write 86,400 lines a day: one :class:`Throttle` lets
  the first message of a kind through, counts repeats for a window, then writes one
  ``N more 'KIND' messages in the last M s`` summary. Components that know their kinds call it
  directly; :class:`RateLimitHandler` applies it to every warning that reaches the log, taking the
  message itself, numbers masked, as its kind (:func:`message_kind`): two different problems are two
  kinds even when one logger and one template write them, and a summary names what it counts.
- Every line passes through the secret :class:`~edge_fer.redact.Redactor`, tracebacks included.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
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


# Kinds tracked at once by one throttle. Messages can carry outside text (a topic, a peer's address), so a
# flood of ever-new kinds must not grow the table: past this, new kinds share one window, OVERFLOW_KIND.
MAX_KINDS = 256
MAX_KIND_CHARS = 160
OVERFLOW_KIND = "other messages (too many kinds at once)"
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:[.:]\d+)*")


def message_kind(record: logging.LogRecord) -> str:
    """What a record is about: its message with numbers masked as N, first line, at most MAX_KIND_CHARS.

    ``frame 812 could not be processed`` and ``frame 813 ...`` are one kind; ``cam0`` and ``cam1``, or a
    refused connection and a full buffer, are two. Digits inside words (``cam0``, ``/dev/video2``) stay.
    """
    try:
        text = record.getMessage()
    except Exception:  # a bad format string is still a kind of its own
        text = str(record.msg)
    return _NUMBER.sub("N", text.split("\n", 1)[0])[:MAX_KIND_CHARS]


@dataclass
class _Window:
    since: float  # when the first message of this window was let through
    count: int = 0  # messages held back since
    say: Callable[[str], None] | None = None  # writes the summary where the latest held-back one would have gone


class Throttle:
    """At most one message of each kind per ``window`` seconds; the rest are counted, then summed up.

    The kind is the caller's name for a problem (``"mqtt connect refused"``, ``"cam0 read failed"``),
    not the logger: two different problems in one window are both written, and the summary names the
    kind it counts: ``5 more 'mqtt connect refused' messages in the last 60 s``. A summary is written
    when the kind shows up again after its window, on :meth:`sweep` or :meth:`flush`. Thread-safe.
    ``clock`` is injectable so tests flood it without sleeping.
    """

    def __init__(
        self,
        window: float = 60.0,
        *,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = MAX_KINDS,
    ) -> None:
        self.window = float(window)
        self.logger = logger
        self.clock = clock
        self.max_kinds = max_kinds
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def allow(self, kind: str, say: Callable[[str], None] | None = None) -> bool:
        """True when a message of ``kind`` should be written now; otherwise it is counted, and ``say``
        will write the summary. A kind whose window has passed gets its summary first."""
        now = self.clock()
        with self._lock:
            if kind not in self._windows and len(self._windows) >= self.max_kinds:
                kind = OVERFLOW_KIND
            window = self._windows.get(kind)
            if window is not None and now - window.since < self.window and self.window > 0:
                window.count += 1
                window.say = say or window.say
                return False
            self._windows[kind] = _Window(since=now)
        if window is not None:
            self._summarise(kind, window, now)
        return True

    def log(self, kind: str, level: int, msg: str, *args: object, logger: logging.Logger | None = None, **kw) -> bool:
        """``logger.log(level, msg, *args, **kw)`` unless ``kind`` was logged within the window."""
        target = logger or self.logger or logging.getLogger("edge_fer")
        if self.allow(kind, lambda text: target.log(level, text)):
            target.log(level, msg, *args, **kw)
            return True
        return False

    def sweep(self, *, force: bool = False) -> None:
        """Write the summaries of windows that have passed (of all windows with ``force``, which also
        forgets them). A kind that was held back stays held for a new window: a steady failure costs one
        summary line per window, not a summary and a message."""
        now = self.clock()
        with self._lock:
            done = [(k, w) for k, w in self._windows.items() if force or now - w.since >= self.window]
            for kind, window in done:
                if window.count and not force:
                    self._windows[kind] = _Window(since=now)
                else:
                    del self._windows[kind]
        for kind, window in done:
            self._summarise(kind, window, now)

    def flush(self, kind: str | None = None) -> None:
        """The condition is over (the camera reconnected): write what ``kind`` (every kind if None) held
        back, and log its next message at once."""
        now = self.clock()
        with self._lock:
            kinds = list(self._windows) if kind is None else [kind]
            done = [(k, self._windows.pop(k)) for k in kinds if k in self._windows]
        for k, window in done:
            self._summarise(k, window, now)

    def _summarise(self, kind: str, window: _Window, now: float) -> None:
        if window.count and window.say is not None:
            plural = "message" if window.count == 1 else "messages"
            window.say(f"{window.count} more '{kind}' {plural} in the last {now - window.since:.0f} s")


class RateLimitHandler(logging.Handler):
    """Pass records to ``target`` through a :class:`Throttle`: at most one per kind per ``window`` seconds.

    A record's kind is its ``extra={"rate_key": ...}`` if given, else :func:`message_kind`: the message
    with its numbers masked, so ``log.error("%s", exc)`` with two different errors is two kinds, and a
    frame or attempt number does not make each repeat a new one. ``extra={"rate_limit": False}`` lets a
    record always pass. Records below ``min_level`` (INFO stats lines) are never limited. Summaries of
    passed windows are written when the next record of any kind arrives, on :meth:`flush`, and on
    :meth:`close`.
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
        self.min_level = min_level
        self.throttle = Throttle(window, clock=clock)
        self._last_sweep = float("-inf")

    @property
    def window(self) -> float:
        return self.throttle.window

    @window.setter
    def window(self, value: float) -> None:
        self.throttle.window = float(value)

    def emit(self, record: logging.LogRecord) -> None:
        now = self.throttle.clock()
        if now - self._last_sweep >= min(1.0, self.window):
            self._last_sweep = now
            self.throttle.sweep()
        if self.window <= 0 or record.levelno < self.min_level or getattr(record, "rate_limit", True) is False:
            self.target.handle(record)
            return
        kind = str(getattr(record, "rate_key", None) or message_kind(record))
        latest = record.getMessage().split("\n", 1)[0]
        said = "" if latest == kind else f"; the latest: {latest}"
        say = lambda text: self.target.handle(_summary(record, text + said))  # noqa: E731
        if self.throttle.allow(kind, say):
            self.target.handle(record)

    def flush(self) -> None:
        self.throttle.sweep()
        self.target.flush()

    def close(self) -> None:
        # A stream closed under us (a test's captured stdout, a parent that went away) would turn the
        # pending summaries into a "--- Logging error ---" traceback on stderr: drop them instead.
        if not getattr(getattr(self.target, "stream", None), "closed", False):
            self.throttle.sweep(force=True)
        self.target.close()
        super().close()


def _summary(record: logging.LogRecord, text: str) -> logging.LogRecord:
    summary = logging.makeLogRecord(record.__dict__)
    summary.msg = text
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


def installed_handlers() -> list[logging.Handler]:
    """The handlers :func:`setup_logging` put on the root logger (one, unless a caller added its own)."""
    return [h for h in logging.getLogger().handlers if getattr(h, _INSTALLED, False)]


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

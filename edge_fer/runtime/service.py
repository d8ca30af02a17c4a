"""Living under systemd: the sd_notify protocol and the stop signals.

sd_notify is one datagram of ``KEY=VALUE`` lines to the AF_UNIX socket named by ``$NOTIFY_SOCKET``
(a path, or ``@name`` for the abstract namespace). Written here with the standard library rather
than a dependency; outside systemd every call is a cheap no-op. A failing send is logged once and
never stops the daemon: losing a status line must not cost a camera.

The watchdog is the point of ``Type=notify`` for this daemon: the inference loop calls
:meth:`Notifier.maybe_watchdog` every turn, so when the loop stalls (a hung camera read, a
deadlock) the pings stop and systemd kills and restarts the service.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Mapping

from edge_fer import exitcodes

log = logging.getLogger("edge_fer.service")


def _address(value: str | None) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # systemd only ever sets absolute paths or abstract names


def _watchdog_usec(environ: Mapping[str, str]) -> int | None:
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = environ.get("WATCHDOG_PID")
    if pid:
        # The variables are inherited; only the process systemd watches may ping.
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec


class Notifier:
    """Send READY / STATUS / WATCHDOG / STOPPING to systemd; all no-ops when not under systemd.

    Safe to share between threads. Every method returns whether a datagram was sent.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _address(env.get("NOTIFY_SOCKET"))
        usec = _watchdog_usec(env)
        self._interval = usec / 1e6 if usec else None
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._warned = False
        self._last_ping = float("-inf")

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def watchdog_interval(self) -> float | None:
        """systemd's ``WatchdogSec=`` in seconds, or None when no watchdog watches this process."""
        return self._interval if self.enabled else None

    @property
    def watchdog_period(self) -> float | None:
        """How often :meth:`maybe_watchdog` pings: half the interval, as sd_watchdog_enabled(3) advises."""
        interval = self.watchdog_interval()
        return interval / 2 if interval else None

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields in one datagram."""
        if self._address is None or not fields:
            return False
        payload = "\n".join(fields).encode("utf-8", "replace")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                    self._sock.settimeout(1.0)  # systemd reads at once; never hang the loop on it
                self._sock.sendto(payload, self._address)
                return True
            except OSError as exc:
                if not self._warned:
                    self._warned = True
                    log.warning("cannot notify systemd at %s (%s); carrying on without it", self._name(), exc)
                return False

    def _name(self) -> str:
        address = self._address
        return "@" + address[1:].decode(errors="replace") if isinstance(address, bytes) else str(address)

    def ready(self, status: str | None = None) -> bool:
        """Startup is over (models loaded, cameras opened): systemd marks the unit active."""
        fields = ["READY=1"] + ([_status_field(status)] if status else [])
        return self.notify(*fields)

    def status(self, text: str) -> bool:
        """A one-line state shown by ``systemctl status`` (e.g. fps and faces)."""
        return self.notify(_status_field(text))

    def watchdog(self, now: float | None = None) -> bool:
        self._last_ping = time.monotonic() if now is None else now
        return self.notify("WATCHDOG=1")

    def maybe_watchdog(self, now: float | None = None) -> bool:
        """Ping the watchdog if half its interval has passed since the last ping; cheap to call often."""
        period = self._interval
        if period is None or self._address is None:
            return False
        now = time.monotonic() if now is None else now
        if now - self._last_ping < period / 2:
            return False
        return self.watchdog(now)

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown has begun: systemd stops expecting watchdog pings and waits for the exit."""
        fields = ["STOPPING=1"] + ([_status_field(status)] if status else [])
        return self.notify(*fields)

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more time to start or stop (a slow first model load on a small board)."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(1, round(seconds * 1e6))}")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _status_field(text: str) -> str:
    return "STATUS=" + " ".join(str(text).split())  # one line: a newline would start a new field


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install_signal_handlers(stop_event: threading.Event, reload_event: threading.Event | None = None) -> None:
    """First SIGTERM/SIGINT sets ``stop_event`` (the one stop event); a second exits at once. With
    ``reload_event``, SIGHUP sets it (``systemctl reload``): a storm of them is one pending reload, which the
    worker takes between frames (:mod:`edge_fer.runtime.reload`).

    Python runs signal handlers only between bytecodes of the main thread, so a main thread stuck
    in C code (a camera read, an inference) would never see the second signal. Instead the C-level
    wakeup fd receives the signal number and a small thread acts on it. The forced exit uses
    ``os._exit`` with 128 + the signal number and writes its message with ``os.write``: the stuck
    thread may hold the logging lock. Also enables :mod:`faulthandler`, so the watchdog's SIGABRT
    prints every thread's stack to the journal before the process dies. Call from the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("install_signal_handlers must be called from the main thread")
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    os.set_inheritable(read_fd, False)
    os.set_inheritable(write_fd, False)
    for signum in STOP_SIGNALS:
        signal.signal(signum, _ignore)
    if reload_event is not None:
        signal.signal(signal.SIGHUP, _ignore)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    args = (read_fd, stop_event, reload_event)
    threading.Thread(target=_relay, args=args, name="signal-relay", daemon=True).start()
    with contextlib.suppress(RuntimeError, ValueError, OSError):  # no usable stderr (closed or replaced)
        faulthandler.enable(all_threads=True)


def _ignore(signum: int, frame: object) -> None:
    """The Python-level handler has nothing to do: the relay thread reacts to the wakeup fd."""


def _relay(read_fd: int, stop_event: threading.Event, reload_event: threading.Event | None = None) -> None:
    received = 0
    stops = {int(s) for s in STOP_SIGNALS}
    while True:
        try:
            data = os.read(read_fd, 64)
        except InterruptedError:
            continue
        except OSError:
            return
        if not data:
            return
        for signum in data:
            if signum == signal.SIGHUP and reload_event is not None:
                reload_event.set()
                continue
            if signum not in stops:
                continue
            received += 1
            name = signal.Signals(signum).name
            if received == 1:
                stop_event.set()
                _write_stderr(f"edge-fer: {name} received, stopping (send it again to exit at once)")
            else:
                _write_stderr(f"edge-fer: second stop signal ({name}), exiting without cleanup")
                os._exit(exitcodes.FORCED + signum)


def _write_stderr(message: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, (message + "\n").encode())

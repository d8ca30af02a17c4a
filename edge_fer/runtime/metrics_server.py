"""``/metrics`` and ``/healthz`` on a listener of their own (``metrics:``), for a fleet's monitoring.

Apart from the browser preview on purpose: monitoring must not need a listener that serves faces, and this one
has no route to an image, an event or a page. Every answer is small and made from state already at hand, so no
request gets a thread: the preview's :class:`~edge_fer.outputs.web.heads.HeadReader` reads the heads of all
connections on one thread (idle, dripping and oversized requests are limited there exactly as on the preview)
and the answer is written and the connection closed right there. An :class:`~edge_fer.outputs.base.Output`
like the others: it keeps the latest stats snapshot and counts face events by type.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import socket
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from edge_fer.config.comms import MetricsSettings
from edge_fer.events import FaceEvent
from edge_fer.outputs.base import Output, StatsView
from edge_fer.outputs.web.heads import HeadReader, plain_response, response_bytes
from edge_fer.runtime.metrics import CONTENT_TYPE, render
from edge_fer.runtime.stats import HistogramCounts

log = logging.getLogger("edge_fer.metrics")

HealthFn = Callable[[], tuple[bool, Mapping[str, Any]]]
HistogramsFn = Callable[[], Mapping[str, Mapping[str, HistogramCounts]]]
SEND_TIMEOUT_S = 2.0


class MetricsError(RuntimeError):
    """The listener cannot start (the port is taken, the address is not ours)."""


class MetricsOutput(Output):
    name = "metrics"

    def __init__(
        self,
        settings: MetricsSettings,
        health: HealthFn,
        histograms: HistogramsFn,
        outbox_age: Callable[[], float | None] = lambda: None,
    ) -> None:
        self.settings = settings
        self._health, self._histograms, self._outbox_age = health, histograms, outbox_age
        self._lock = threading.Lock()
        self._stats: Mapping[str, Any] | None = None
        self._events: Counter[tuple[str, str]] = Counter()
        self._reader = HeadReader(self._answer)
        self._sock: socket.socket | None = None
        self._acceptor = threading.Thread(target=self._accept_loop, name="metrics-accept", daemon=True)
        self.answered = 0

    # -- the Output side ---------------------------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        try:
            self._sock = socket.create_server((s.host, s.port), reuse_port=False)
        except OSError as exc:
            raise MetricsError(f"metrics: cannot listen on {s.host}:{s.port}: {exc.strerror or exc}") from None
        self._reader.start()
        self._acceptor.start()
        where = "this machine only" if s.host in ("127.0.0.1", "::1", "localhost") else "the network"
        log.info("metrics: /metrics and /healthz on http://%s:%d/ (%s)", s.host, self.port, where)

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1] if self._sock is not None else self.settings.port

    def on_event(self, event: FaceEvent) -> None:
        with self._lock:
            self._events[(event.camera, str(event.type))] += 1

    def on_stats(self, snapshot: StatsView) -> None:
        with self._lock:
            self._stats = snapshot.to_dict()

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._acceptor.join(2.0)
            self._reader.stop(2.0)

    # -- the listener side -------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, address = self._sock.accept()
            except OSError:
                return  # closed
            self._reader.admit(conn, address)

    def metrics_text(self) -> str:
        with self._lock:
            stats, events = self._stats, dict(self._events)
        return render(stats, self._health(), self._histograms(), events, self._outbox_age())

    def _answer(self, sock: socket.socket, address: Any, head: bytes) -> None:
        """On the head reader's thread: route, answer in full, close."""
        try:
            sock.settimeout(SEND_TIMEOUT_S)
            sock.sendall(self._response(head))
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        except Exception:
            log.exception("metrics: answering %s failed", address)
        finally:
            sock.close()
            self.answered += 1

    def _response(self, head: bytes) -> bytes:
        request_line, _, rest = head.decode("latin-1").partition("\n")
        parts = request_line.split()
        if len(parts) != 3:
            return plain_response(HTTPStatus.BAD_REQUEST)
        method, target, _ = parts
        path = target.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return plain_response(HTTPStatus.METHOD_NOT_ALLOWED, "", (("Allow", "GET, HEAD"),))
        if self.settings.token is not None and not self._authorised(rest):
            return plain_response(HTTPStatus.UNAUTHORIZED, "token required", (("WWW-Authenticate", "Bearer"),))
        head_only = method == "HEAD"
        if path == "/metrics":
            return response_bytes(HTTPStatus.OK, self.metrics_text().encode(), CONTENT_TYPE, head_only=head_only)
        if path == "/healthz":
            ok, detail = self._health()
            body = json.dumps({"ok": ok, **detail}, separators=(",", ":")).encode()
            status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
            return response_bytes(status, body, "application/json", head_only=head_only)
        return plain_response(HTTPStatus.NOT_FOUND, "this listener serves /metrics and /healthz only")

    def _authorised(self, headers: str) -> bool:
        for line in headers.splitlines():
            name, _, value = line.partition(":")
            if name.strip().lower() == "authorization":
                scheme, _, credentials = value.strip().partition(" ")
                token = self.settings.token or ""
                return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token.encode())
        return False

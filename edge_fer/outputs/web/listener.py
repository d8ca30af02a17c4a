"""The listening socket: request heads read without threads, a thread per request, and a way to end them all.

Accepted connections wait in the :class:`~edge_fer.outputs.web.heads.HeadReader` until their request head
is complete; only then do they get a thread. So idle or dripping connections cannot take the threads the
owner's streams and health checks need. Threads have a cap of their own (``max_clients`` streams plus
``EXTRA_CONNECTIONS`` short requests); past it a request is answered 503 at once, except ``/healthz``,
which is then answered on the reader's thread: a health check is always answered.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
import time
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from edge_fer.outputs.web.handler import PreviewHandler
from edge_fer.outputs.web.heads import HeadReader, answer_and_close, plain_response, response_bytes

if TYPE_CHECKING:
    from edge_fer.outputs.web.server import PreviewServer

log = logging.getLogger("edge_fer.http")

# Requests beyond viewers: page loads and stats polls of a few open tabs. Past this a request is answered
# 503 at once, without a thread.
EXTRA_CONNECTIONS = 16
_BUSY_RESPONSE = plain_response(HTTPStatus.SERVICE_UNAVAILABLE, "too many open connections", (("Retry-After", "5"),))


class PreviewHTTPServer(ThreadingHTTPServer):
    """Thread per connection, with a connection cap and a record of open sockets so stop can end them."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # bursts of connects wait in the kernel, not in SYN retries a second apart

    def __init__(self, address: tuple[str, int], preview: PreviewServer, max_connections: int) -> None:
        self.preview = preview
        self._max_connections = max_connections
        self._open: dict[socket.socket, threading.Thread] = {}
        self._heads: dict[socket.socket, bytes] = {}
        self._open_lock = threading.Lock()
        self._serial = 0
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        self.head_reader = HeadReader(self._start_request)
        super().__init__(address, PreviewHandler)
        self.head_reader.start()

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn), which can hang on a machine without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request: socket.socket, client_address: Any) -> None:  # type: ignore[override]
        self.head_reader.admit(request, client_address)

    def _start_request(self, request: socket.socket, client_address: Any, head: bytes) -> None:
        """A complete head: a thread for it, or, past the cap, 503 (``/healthz`` answered here instead)."""
        with self._open_lock:
            busy = len(self._open) >= self._max_connections
            if not busy:
                self._serial += 1
                thread = threading.Thread(
                    target=self.process_request_thread,
                    args=(request, client_address),
                    name=f"http-conn-{self._serial}",
                    daemon=True,
                )
                self._open[request] = thread
                self._heads[request] = head
        if not busy:
            thread.start()
        elif _is_health_check(head):
            ok, body = self.preview.health_json()
            status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
            answer_and_close(request, response_bytes(status, body, "application/json", head_only=head[:4] == b"HEAD"))
        else:
            answer_and_close(request, _BUSY_RESPONSE)

    def take_head(self, request: socket.socket) -> bytes:
        """The head read for ``request`` (called once, by its handler)."""
        with self._open_lock:
            return self._heads.pop(request, b"")

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._open_lock:
            self._open.pop(request, None)
            self._heads.pop(request, None)
        super().shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        self.head_reader.stop(1.0)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("HTTP preview: request from %s failed", client_address)

    def open_connections(self) -> int:
        """Requests being served (each on a thread); connections still sending their head are not counted."""
        with self._open_lock:
            return len(self._open)

    def end_connections(self, timeout: float) -> bool:
        """Shut every open client socket down (unblocking its thread) and wait for the threads."""
        with self._open_lock:
            items = list(self._open.items())
        for sock, _thread in items:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _sock, thread in items:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for _sock, thread in items)


def _is_health_check(head: bytes) -> bool:
    parts = head.split(b"\n", 1)[0].split()
    return len(parts) == 3 and parts[0] in (b"GET", b"HEAD") and parts[1].partition(b"?")[0] == b"/healthz"

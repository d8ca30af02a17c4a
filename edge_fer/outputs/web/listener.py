"""The listening socket: a thread per connection, a cap on connections, and a way to end them all at stop."""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
import time
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from edge_fer.outputs.web.handler import PreviewHandler

if TYPE_CHECKING:
    from edge_fer.outputs.web.server import PreviewServer

log = logging.getLogger("edge_fer.http")

# Connections beyond viewers: page loads and stats polls of a few open tabs. Past this a connection is
# answered 503 at once, without a thread.
EXTRA_CONNECTIONS = 16
_BUSY_RESPONSE = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 5\r\n"
    b"Content-Length: 29\r\nConnection: close\r\n\r\n503 too many open connections"
)


class PreviewHTTPServer(ThreadingHTTPServer):
    """Thread per connection, with a connection cap and a record of open sockets so stop can end them."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 32

    def __init__(self, address: tuple[str, int], preview: PreviewServer, max_connections: int) -> None:
        self.preview = preview
        self._max_connections = max_connections
        self._open: dict[socket.socket, threading.Thread] = {}
        self._open_lock = threading.Lock()
        self._serial = 0
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, PreviewHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn), which can hang on a machine without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request: socket.socket, client_address: Any) -> None:  # type: ignore[override]
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
        if busy:
            self._refuse(request)
            return
        thread.start()

    def _refuse(self, request: socket.socket) -> None:
        with contextlib.suppress(OSError):
            request.setblocking(False)
            request.send(_BUSY_RESPONSE)
        self.shutdown_request(request)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._open_lock:
            self._open.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("HTTP preview: request from %s failed", client_address)

    def open_connections(self) -> int:
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

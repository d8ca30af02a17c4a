"""Connections wait here, without a thread, until their request head has arrived whole.

A thread per accepted connection let anyone starve the preview: 21 idle TCP connections (no bytes, no
token) filled the connection cap, and with 200 of them a client holding the right token got no answer on
``/healthz``. Here one thread reads the heads of all waiting connections with a selector, so a connection
that says nothing costs a file descriptor and a few bytes, never a thread or a slot of the owner's streams.

Waiting connections have a budget of their own (``MAX_WAITING``). When it is full, a newcomer is still
let in: the oldest waiting connection of the address holding most of them is closed instead, so a
flood from one address evicts itself, and a real client (whose head arrives within milliseconds of its
connect) gets through even while the flood goes on. Each head must be complete within
``HEAD_DEADLINE_S`` (a client that drips bytes is answered 408), and within the size limits (414, 431).
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

log = logging.getLogger("edge_fer.http")

MAX_REQUEST_LINE = 2048
MAX_HEADER_BYTES = 8192
MAX_HEADER_LINES = 64
HEAD_DEADLINE_S = 5.0
MAX_WAITING = 256  # connections without a complete head, all addresses together
_POLL_S = 0.25

HeadCallback = Callable[[socket.socket, Any, bytes], None]


class HeadTooLarge(Exception):
    def __init__(self, status: HTTPStatus) -> None:
        super().__init__(status.phrase)
        self.status = status


def head_length(buf: bytes | bytearray) -> int:
    """Length of the complete request head at the start of ``buf``; -1 while it is incomplete.

    Raises HeadTooLarge as soon as the request line or the headers pass their limits, without waiting for
    the rest of them.
    """
    line_end = buf.find(b"\n")
    if (line_end < 0 and len(buf) > MAX_REQUEST_LINE) or line_end > MAX_REQUEST_LINE:
        raise HeadTooLarge(HTTPStatus.REQUEST_URI_TOO_LONG)
    if line_end < 0:
        return -1
    crlf, lf = buf.find(b"\n\r\n", line_end), buf.find(b"\n\n", line_end)
    ends = ([crlf + 3] if crlf >= 0 else []) + ([lf + 2] if lf >= 0 else [])
    end = min(ends) if ends else -1
    headers = buf[line_end + 1 : end if end >= 0 else len(buf)]
    if len(headers) > MAX_HEADER_BYTES or headers.count(b"\n") > MAX_HEADER_LINES:
        raise HeadTooLarge(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
    return end


def plain_response(status: HTTPStatus, text: str = "", headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A complete HTTP/1.0 text response, for answers given without a handler thread."""
    body = f"{status.value} {status.phrase}{': ' + text if text else ''}\n".encode()
    return response_bytes(status, body, "text/plain; charset=utf-8", headers)


def response_bytes(
    status: HTTPStatus, body: bytes, content_type: str, headers: tuple[tuple[str, str], ...] = (), head_only=False
) -> bytes:
    lines = [f"HTTP/1.0 {status.value} {status.phrase}", "Server: edge-fer", "Cache-Control: no-store"]
    lines += ["X-Content-Type-Options: nosniff", f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers] + ["Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + (b"" if head_only else body)


def answer_and_close(sock: socket.socket, data: bytes) -> None:
    """Send a short answer without blocking (a fresh connection's buffer holds it) and close."""
    with contextlib.suppress(OSError):
        sock.setblocking(False)
        sock.send(data)
        sock.shutdown(socket.SHUT_WR)
    sock.close()


@dataclass(eq=False)
class _Waiting:
    sock: socket.socket
    address: Any
    deadline: float
    buf: bytearray = field(default_factory=bytearray)

    @property
    def host(self) -> str:
        return str(self.address[0]) if isinstance(self.address, tuple) and self.address else str(self.address)


class HeadReader:
    """One thread that reads request heads of waiting connections and hands each complete one to ``on_head``.

    ``admit`` is called by the accepting thread; everything else happens on the reader's own thread.
    ``on_head(sock, address, head)`` gets the socket back in blocking mode and owns it from then on.
    """

    def __init__(self, on_head: HeadCallback, max_waiting: int = MAX_WAITING) -> None:
        self._on_head = on_head
        self._max_waiting = max_waiting
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._lock = threading.Lock()
        self._arrived: deque[tuple[socket.socket, Any]] = deque()
        self._waiting: dict[socket.socket, _Waiting] = {}  # oldest first
        self._per_host: Counter[str] = Counter()
        self._stop = threading.Event()
        self.evicted = 0  # closed to make room for a newer connection
        self.timed_out = 0  # answered 408
        self._thread = threading.Thread(target=self._run, name="http-heads", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def admit(self, sock: socket.socket, address: Any) -> None:
        with self._lock:
            if self._stop.is_set():
                sock.close()
                return
            self._arrived.append((sock, address))
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting) + len(self._arrived)

    def stop(self, timeout: float) -> bool:
        with self._lock:
            self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the reader thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                first = next(iter(self._waiting.values()), None)
                wait = _POLL_S if first is None else min(_POLL_S, max(0.0, first.deadline - time.monotonic()))
                # Heads that arrived are read before newcomers are let in, so a newcomer can only evict a
                # connection that has had a turn to be read.
                for key, _ in self._selector.select(wait):
                    if key.fileobj is self._wake_r:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                    elif (conn := self._waiting.get(key.fileobj)) is not None:  # type: ignore[call-overload]
                        self._read(conn)
                self._expire(time.monotonic())
                self._take_arrivals()
        except Exception:  # a bug here must not leave connections hanging without a word
            log.exception("HTTP preview: the request reader failed")
        finally:
            self._close_all()

    def _take_arrivals(self) -> None:
        with self._lock:
            arrived, self._arrived = self._arrived, deque()
        deadline = time.monotonic() + HEAD_DEADLINE_S
        for sock, address in arrived:
            conn = _Waiting(sock, address, deadline)
            try:
                sock.setblocking(False)
            except OSError:
                sock.close()
                continue
            # A client usually sends its head with its connect: read it now, before it could be evicted.
            if self._read(conn, waiting=False):
                continue
            if len(self._waiting) >= self._max_waiting:
                self._evict()
            try:
                self._selector.register(sock, selectors.EVENT_READ)
            except (OSError, ValueError):
                sock.close()
                continue
            with self._lock:
                self._waiting[sock] = conn
            self._per_host[conn.host] += 1

    def _evict(self) -> None:
        """Close the oldest waiting connection of the address that holds the most of them."""
        host = self._per_host.most_common(1)[0][0]
        victim = next(c for c in self._waiting.values() if c.host == host)
        self.evicted += 1
        if self.evicted in (1, 10, 100) or self.evicted % 1000 == 0:
            log.info("HTTP preview: %d idle connections closed to let newer ones in (latest: %s)", self.evicted, host)
        self._forget(victim)
        answer_and_close(victim.sock, plain_response(HTTPStatus.SERVICE_UNAVAILABLE, "too many idle connections"))

    def _read(self, conn: _Waiting, waiting: bool = True) -> bool:
        """Read what has arrived; True when the connection is done with here (handed on, answered or closed)."""
        try:
            chunk = conn.sock.recv(16384)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            chunk = b""
        if not chunk:  # closed without a request, or inside the head: nothing to answer
            self._done(conn, waiting)
            conn.sock.close()
            return True
        conn.buf += chunk
        try:
            end = head_length(conn.buf)
        except HeadTooLarge as exc:
            self._done(conn, waiting)
            answer_and_close(conn.sock, plain_response(exc.status))
            return True
        if end < 0:
            return False
        self._done(conn, waiting)
        try:
            conn.sock.setblocking(True)
        except OSError:
            conn.sock.close()
            return True
        self._on_head(conn.sock, conn.address, bytes(conn.buf[:end]))
        return True

    def _done(self, conn: _Waiting, waiting: bool) -> None:
        if waiting:
            self._forget(conn)

    def _expire(self, now: float) -> None:
        late = [c for c in self._waiting.values() if c.deadline <= now]
        for conn in late:
            self._forget(conn)
            self.timed_out += 1
            answer_and_close(conn.sock, plain_response(HTTPStatus.REQUEST_TIMEOUT, "send the request head at once"))

    def _forget(self, conn: _Waiting) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(conn.sock)
        with self._lock:
            self._waiting.pop(conn.sock, None)
        self._per_host[conn.host] -= 1
        if self._per_host[conn.host] <= 0:
            del self._per_host[conn.host]

    def _close_all(self) -> None:
        with self._lock:
            self._stop.set()
            waiting = list(self._waiting.values())
            self._waiting.clear()
            arrived, self._arrived = list(self._arrived), deque()
        for conn in waiting:
            conn.sock.close()
        for sock, _address in arrived:
            sock.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

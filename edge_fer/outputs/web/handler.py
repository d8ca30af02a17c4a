"""One HTTP request: strict head parsing, fixed routes, token check, and the MJPEG stream loop.

Only the fixed routes exist; nothing maps a URL to a file, so there is no path to traverse. The request
head arrives already read, under its size limits and deadline, by ``heads.HeadReader`` (a slow sender never
gets a thread); responses and stream writes have their own short deadlines, so a slow reader cannot keep one.
"""

from __future__ import annotations

import hmac
import io
import logging
import re
import select
import socket
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote

from edge_fer.outputs.web.frames import BOUNDARY

if TYPE_CHECKING:
    from edge_fer.outputs.web.frames import CameraFeed
    from edge_fer.outputs.web.server import PreviewServer

log = logging.getLogger("edge_fer.http")

RESPONSE_TIMEOUT_S = 5.0  # a response that the client does not take within this is abandoned
SEND_TIMEOUT_S = 2.0
IDLE_POLL_S = 0.5
KEEPALIVE_S = 5.0
STREAM_SNDBUF = 256 * 1024

_STREAM_PATH = re.compile(r"/stream/([^/]+)\.mjpg")
_QUERY = re.compile(r"\?[^\s\"]*")
_COMMON_HEADERS = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)
PAGE_CSP = (
    "default-src 'none'; img-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class PreviewHandler(BaseHTTPRequestHandler):
    """Serves one connection with one request (HTTP/1.0: the connection closes after the response)."""

    protocol_version = "HTTP/1.0"
    timeout = RESPONSE_TIMEOUT_S

    def version_string(self) -> str:
        return "edge-fer"

    def log_message(self, format: str, *args: object) -> None:
        # The query string may hold the token, a guess at it, or the token %-encoded so that no redactor
        # knows it: no query string reaches the log, at any level.
        log.debug("%s %s", self.address_string(), _QUERY.sub("?(query not logged)", format % args))

    @property
    def preview(self) -> PreviewServer:
        return self.server.preview  # type: ignore[attr-defined]  # set by PreviewHTTPServer

    # -- request head -------------------------------------------------------------------------------------

    def handle_one_request(self) -> None:
        self.close_connection = True
        self.command, self.request_version, self.requestline = "", "HTTP/1.0", ""
        head = self.server.take_head(self.connection)  # type: ignore[attr-defined]  # PreviewHTTPServer
        if not head:
            return
        line_end = head.index(b"\n") + 1
        self.raw_requestline = head[:line_end]
        # The stdlib parser reads the header lines from rfile; hand it the bytes we read under our limits.
        socket_file, self.rfile = self.rfile, io.BytesIO(head[line_end:])
        try:
            # parse_request answers a malformed request itself (400, 505), so it writes to the client too:
            # a client gone by then is as ordinary as one leaving mid-stream.
            try:
                parsed = self.parse_request()
            finally:
                self.rfile = socket_file
            if not parsed:
                return
            if self.request_version == "HTTP/0.9":
                self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, explain="send an HTTP/1.x request")
                return
            self._dispatch()
            self.wfile.flush()
        except (TimeoutError, ConnectionError) as exc:
            log.debug("%s: connection ended: %s", self.address_string(), exc)

    # -- responses ----------------------------------------------------------------------------------------

    def _respond(self, status: int, body: bytes, content_type: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.send_response(status)
        for name, value in (*_COMMON_HEADERS, *headers):
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Plain-text errors, used for ours and for the stdlib parser's, never echoing the request."""
        status = HTTPStatus(code)
        # The stdlib parser may fail before it records the version; a 0.9-style reply would lose the status line.
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        text = f"{status.value} {status.phrase}" + (f": {explain}" if explain else "") + "\n"
        headers: tuple[tuple[str, str], ...] = ()
        if status == HTTPStatus.METHOD_NOT_ALLOWED:
            headers = (("Allow", "GET, HEAD"),)
        elif status == HTTPStatus.UNAUTHORIZED:
            headers = (("WWW-Authenticate", 'Bearer realm="edge-fer"'),)
        elif status == HTTPStatus.SERVICE_UNAVAILABLE:
            headers = (("Retry-After", "5"),)
        self._respond(status.value, text.encode("utf-8"), "text/plain; charset=utf-8", headers)

    # -- routing -----------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        if self.command not in ("GET", "HEAD"):
            self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, explain="only GET and HEAD are served")
            return
        path, _, query = self.path.partition("?")
        if path == "/healthz":
            ok, body = self.preview.health_json()
            self._respond(200 if ok else 503, body, "application/json")
            return
        stream = _STREAM_PATH.fullmatch(path)
        static = self.preview.assets.get(path)
        if not (stream or static or path in ("/", "/stats.json", "/events.json", "/timeline.json")):
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        if not self._authorized(query):
            self.send_error(HTTPStatus.UNAUTHORIZED, explain="pass ?token=... or an Authorization: Bearer header")
            return
        if stream:
            feed = self.preview.hub.get(unquote(stream.group(1), errors="replace"))
            if feed is None:
                self.send_error(HTTPStatus.NOT_FOUND, explain="no such camera")
                return
            self._stream(feed)
        elif static:
            self._respond(200, static.body, static.content_type)
        elif path == "/":
            csp = (("Content-Security-Policy", PAGE_CSP),)
            self._respond(200, self.preview.page_html(), "text/html; charset=utf-8", csp)
        elif path == "/stats.json":
            self._respond(200, self.preview.stats_json(), "application/json")
        elif path == "/timeline.json":
            self._respond(200, self.preview.timeline_json(), "application/json")
        else:
            self._respond(200, self.preview.events_json(), "application/json")

    def _authorized(self, query: str) -> bool:
        token = self.preview.settings.token
        if token is None:
            return True
        expected = token.encode("utf-8")
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        offered = [value.strip()] if scheme.lower() == "bearer" else []
        try:
            offered += parse_qs(query, keep_blank_values=True, max_num_fields=20).get("token", [])
        except ValueError:  # more query fields than any page URL has
            return False
        # Compare every candidate so the time taken does not depend on which one matched.
        matches = [hmac.compare_digest(candidate.encode("utf-8", "replace"), expected) for candidate in offered]
        return any(matches)

    # -- MJPEG --------------------------------------------------------------------------------------------

    def _stream(self, feed: CameraFeed) -> None:
        headers = (("Pragma", "no-cache"), ("Connection", "close"))
        content_type = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        if self.command == "HEAD":
            self.send_response(200)
            for name, value in (*_COMMON_HEADERS, *headers, ("Content-Type", content_type)):
                self.send_header(name, value)
            self.end_headers()
            return
        if not self.preview.acquire_viewer():
            limit = self.preview.settings.max_clients
            self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, explain=f"{limit} viewers already (http.max_clients)")
            return
        feed.attach()
        try:
            self.send_response(200)
            for name, value in (*_COMMON_HEADERS, *headers, ("Content-Type", content_type)):
                self.send_header(name, value)
            self.end_headers()
            self._send_parts(feed)
        finally:
            feed.detach()
            self.preview.release_viewer()

    def _send_parts(self, feed: CameraFeed) -> None:
        sock: socket.socket = self.connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF)
        sock.settimeout(SEND_TIMEOUT_S)
        stop = self.preview.hub.stop_event
        try:
            sock.sendall(f"--{BOUNDARY}\r\n".encode("ascii"))
            last_seq, last_sent = 0, time.monotonic()
            while not stop.is_set():
                part = feed.wait_part(last_seq, IDLE_POLL_S)
                if part is None:
                    if _peer_closed(sock):
                        return
                    if time.monotonic() - last_sent < KEEPALIVE_S or (part := feed.latest_part()) is None:
                        continue
                sock.sendall(part.payload)
                last_seq, last_sent = part.seq, time.monotonic()
        except TimeoutError:
            self.preview.count_dropped_viewer()
            log.info("camera %r: dropped a viewer at %s that could not keep up", feed.name, self.address_string())
        except OSError as exc:
            log.debug("camera %r: viewer at %s left: %s", feed.name, self.address_string(), exc)


def _peer_closed(sock: socket.socket) -> bool:
    """True when the viewer hung up, so an idle stream does not hold a client slot forever."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True

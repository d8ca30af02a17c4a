"""The listener: past the connection cap a client gets 503 at once, and the server recovers afterwards."""

from __future__ import annotations

import socket

from edge_fer.outputs.web import handler
from edge_fer.outputs.web.listener import EXTRA_CONNECTIONS
from tests.outputs.web.conftest import get, raw_request, status_of
from tests.wait import wait_until


def test_connections_beyond_the_cap_get_503_without_a_thread(make_server, monkeypatch):
    monkeypatch.setattr(handler, "HEAD_DEADLINE_S", 2.0)
    server = make_server(max_clients=1)
    cap = server.settings.max_clients + EXTRA_CONNECTIONS
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(cap)]
    try:
        # every idle connection accepted and counted (a private view of the listener: the cap's own count)
        wait_until(lambda: server._httpd.open_connections() == cap, what=f"{cap} open connections")
        extra = raw_request(server.port, b"GET /healthz HTTP/1.1\r\n\r\n")
        assert status_of(extra) == 503 and b"too many open connections" in extra
    finally:
        for sock in idle:
            sock.close()
    wait_until(lambda: get(server, "/healthz")[0] == 200, 5, 0.1, what="the server to answer again")

"""The listener serves its owner first: idle and dripping connections, real sockets by the hundred, cannot
keep a client with the token from ``/healthz``, ``/stats.json`` or the stream (before: 21 idle connections
filled the cap; with 200, the owner got 0 answers of 29)."""

from __future__ import annotations

import json
import socket
import threading
import time

from edge_fer.outputs.web import heads
from edge_fer.outputs.web import server as server_module
from tests.outputs.web.conftest import Feeder, MjpegClient, get, raw_request, status_of
from tests.wait import wait_until

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Flood:
    """``count`` connections that never send a byte, reopened as soon as the server closes one, plus one
    client that drips a request head a byte at a time, again and again: what an attacker keeps up."""

    def __init__(self, port: int, count: int, source: str = "127.0.0.1") -> None:
        self.port, self.count, self.source = port, count, source
        self.opened = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._idle, name="test-flood", daemon=True),
            threading.Thread(target=self._drip, name="test-drip", daemon=True),
        ]

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.source, 0))
        sock.connect(("127.0.0.1", self.port))
        self.opened += 1
        return sock

    def _idle(self) -> None:
        socks = [self._connect() for _ in range(self.count)]
        while not self._stop.is_set():
            for i, sock in enumerate(socks):  # a closed one reads as readable with b"" (or a 503 first)
                sock.setblocking(False)
                try:
                    if sock.recv(4096) != b"":
                        sock.recv(4096)
                    gone = True
                except BlockingIOError:
                    gone = False
                except OSError:
                    gone = True
                if gone:
                    sock.close()
                    socks[i] = self._connect()
            self._stop.wait(0.05)
        for sock in socks:
            sock.close()

    def _drip(self) -> None:
        while not self._stop.is_set():
            with self._connect() as sock:
                for byte in b"GET /stats.json HTTP/1.1\r\nX-Slow: " + b"z" * 1000:
                    try:
                        sock.sendall(bytes([byte]))
                    except OSError:
                        break
                    if self._stop.wait(0.2):
                        break

    def __enter__(self) -> Flood:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


def timed_get(server, path: str) -> tuple[int, float]:
    start = time.monotonic()
    status = get(server, path, headers=AUTH)[0]
    return status, time.monotonic() - start


def test_300_idle_connections_and_a_dripping_client_do_not_starve_the_owner(make_server):
    server = make_server(token=TOKEN)  # 5 streams: the 4 viewers below, one after the other, fit
    threads_before = threading.active_count()
    with Feeder(server), Flood(server.port, 300) as flood:
        wait_until(lambda: flood.opened >= 300, 20, what="300 idle connections open")
        answers = []
        for i in range(10):
            answers.append(timed_get(server, "/healthz"))
            answers.append(timed_get(server, "/stats.json"))
            if i % 3 == 0:
                start = time.monotonic()
                with MjpegClient(server.port, f"/stream/cam0.mjpg?token={TOKEN}") as viewer:
                    assert viewer.status == 200
                    assert viewer.next_jpeg().startswith(b"\xff\xd8")
                    answers.append((viewer.status, time.monotonic() - start))
        threads_during = threading.active_count()
    assert len(answers) == 24
    slow = [(status, round(seconds, 2)) for status, seconds in answers if status != 200 or seconds > 2.0]
    assert not slow, f"answers not 200 within 2 s: {slow}"
    preview = json.loads(get(server, "/stats.json", headers=AUTH)[2])["preview"]  # the flood was really held off
    assert preview["idle_connections_closed"] > 0
    # the waiting connections hold no thread: ours (flood, drip, feeder, encoder) and a few short requests
    assert threads_during - threads_before < 15, (threads_before, threads_during)


def test_a_flood_from_one_address_evicts_itself_not_a_waiting_client_from_another(make_server):
    """The oldest waiting connection overall is a client at 127.0.0.1; idle ones from 127.0.0.2 overfill the
    budget by 51. Evictions come from the address holding most, so the first one still gets its answer."""
    server = make_server(token=TOKEN)
    client = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    flood = []
    try:
        wait_until(lambda: server._httpd.head_reader.waiting() == 1, what="the client waiting")
        for _ in range(heads.MAX_WAITING + 50):
            sock = socket.socket()
            sock.bind(("127.0.0.2", 0))
            sock.connect(("127.0.0.1", server.port))
            flood.append(sock)
        wait_until(lambda: server._httpd.head_reader.evicted >= 51, what="51 evictions")
        client.sendall(f"GET /healthz HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        assert client.recv(4096).startswith(b"HTTP/1.0 200 ")
    finally:
        client.close()
        for sock in flood:
            sock.close()


def test_health_is_answered_even_when_every_request_thread_is_taken(make_server, monkeypatch):
    """With no spare request thread (the one stream holds the only one), /healthz is answered on the head
    reader's thread; other requests get 503 at once, and 200 again once the stream ends."""
    monkeypatch.setattr(server_module, "EXTRA_CONNECTIONS", 0)
    server = make_server(max_clients=1)
    with Feeder(server), MjpegClient(server.port, "/stream/cam0.mjpg") as viewer:
        viewer.next_jpeg()
        health = raw_request(server.port, b"GET /healthz HTTP/1.1\r\n\r\n")
        assert status_of(health) == 200 and health.endswith(b'{"ok":true,"details":{"cam0":"streaming"}}')
        assert status_of(raw_request(server.port, b"HEAD /healthz HTTP/1.1\r\n\r\n")) == 200
        busy = raw_request(server.port, b"GET /stats.json HTTP/1.1\r\n\r\n")
        assert status_of(busy) == 503 and b"too many open connections" in busy
    wait_until(lambda: get(server, "/stats.json")[0] == 200, 5, 0.1, what="the server to answer again")


def test_a_waiting_connection_is_cut_off_at_the_head_deadline_with_408(make_server, monkeypatch):
    monkeypatch.setattr(heads, "HEAD_DEADLINE_S", 0.5)
    server = make_server()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        start = time.monotonic()
        response = sock.recv(4096)
        assert status_of(response) == 408 and time.monotonic() - start < 2.0
    assert get(server, "/stats.json")[2].count(b'"request_heads_timed_out":1') == 1


def test_stop_closes_connections_that_are_still_waiting(make_server):
    server = make_server()
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(10)]
    try:
        wait_until(lambda: server._httpd.head_reader.waiting() == 10, what="10 waiting connections")
        assert server.stop(5.0)
        for sock in idle:
            assert sock.recv(4096) == b""  # closed by the server, without an answer
    finally:
        for sock in idle:
            sock.close()

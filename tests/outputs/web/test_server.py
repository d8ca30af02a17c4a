"""PreviewServer end to end with plain clients: streams, sharing, rate cap, slow viewers, limits, lifecycle."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time

import cv2
import numpy as np
import pytest

from edge_fer.outputs.web import HttpSettings, PreviewError, PreviewServer, handler
from edge_fer.outputs.web.server import EVENT_HISTORY
from tests.outputs.web.conftest import (
    Feeder,
    MjpegClient,
    face_event,
    get,
    moving_frame,
    raw_request,
    status_of,
)
from tests.wait import wait_until


def stats(server: PreviewServer) -> dict:
    return json.loads(get(server, "/stats.json")[2])


def test_port_zero_binds_a_free_port_and_stop_closes_it(make_server):
    server = make_server()
    port = server.port
    assert port > 0 and get(server, "/healthz")[0] == 200
    assert server.stop(3.0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_a_taken_port_is_one_clear_error(make_server):
    first = make_server()
    second = PreviewServer(HttpSettings(port=first.port), dict, lambda: (True, {}))
    with pytest.raises(PreviewError, match=rf"127\.0\.0\.1:{first.port}.*http\.port"):
        second.start()


def test_stream_is_multipart_with_jpegs_that_decode(make_server):
    server = make_server()
    with Feeder(server, fps=30), MjpegClient(server.port, "/stream/cam0.mjpg") as client:
        assert client.status == 200
        assert client.headers["content-type"] == "multipart/x-mixed-replace; boundary=edgeferframe"
        assert client.headers["cache-control"] == "no-store"
        images = [cv2.imdecode(np.frombuffer(client.next_jpeg(), np.uint8), cv2.IMREAD_COLOR) for _ in range(4)]
    assert all(image is not None and image.shape == (256, 256, 3) for image in images)
    assert all(np.abs(a.astype(int) - b.astype(int)).mean() > 1 for a, b in itertools.pairwise(images))


def test_frames_are_encoded_only_while_someone_watches(make_server):
    server = make_server()
    with Feeder(server, fps=30) as feeder:
        assert wait_until(lambda: feeder.offered >= 15)
        assert stats(server)["preview"]["cameras"]["cam0"]["frames_encoded"] == 0
        with MjpegClient(server.port, "/stream/cam0.mjpg") as client:
            for _ in range(3):
                client.next_jpeg()
            assert server.watchers("cam0") == 1
        assert wait_until(lambda: server.watchers("cam0") == 0, timeout=5)
        # the encoder thread has finished its last frame and gone: the count can only stay
        wait_until(lambda: not any(t.name.startswith("http-encode-") for t in threading.enumerate()), 5)
        encoded = stats(server)["preview"]["cameras"]["cam0"]["frames_encoded"]
        offered = feeder.offered
        assert wait_until(lambda: feeder.offered >= offered + 15)
        assert stats(server)["preview"]["cameras"]["cam0"]["frames_encoded"] == encoded >= 3


def test_viewers_of_one_camera_share_each_encoding(make_server):
    server = make_server(max_fps=10.0)
    with Feeder(server, fps=30):
        clients = [MjpegClient(server.port, "/stream/cam0.mjpg") for _ in range(3)]
        try:
            start = time.monotonic()
            received: list[list[bytes]] = [[] for _ in clients]
            while time.monotonic() - start < 1.5:
                for client, got in zip(clients, received):
                    got.append(client.next_jpeg())
            elapsed = time.monotonic() - start
            encoded = server.hub.get("cam0").encoded
        finally:
            for client in clients:
                client.close()
    total = sum(len(got) for got in received)
    assert encoded <= 10.0 * elapsed + 3
    assert total >= 2 * encoded - 6, (total, encoded)
    assert set(received[0]) & set(received[1]) & set(received[2]), "viewers must get the very same JPEG bytes"


def test_stream_rate_is_capped(make_server):
    server = make_server(max_fps=4.0)
    with Feeder(server, fps=40) as feeder, MjpegClient(server.port, "/stream/cam0.mjpg") as client:
        client.next_jpeg()
        start, parts = time.monotonic(), 0
        while time.monotonic() - start < 2.0:
            client.next_jpeg()
            parts += 1
        elapsed = time.monotonic() - start
    assert feeder.offered > 50
    assert 3 <= parts <= 4.0 * elapsed + 2


def test_slow_viewer_is_dropped_while_others_keep_streaming(make_server):
    server = make_server(max_fps=20.0, jpeg_quality=95)
    with Feeder(server, fps=30, size=512):
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", server.port))
        slow.sendall(b"GET /stream/cam0.mjpg HTTP/1.1\r\n\r\n")  # and never reads
        with MjpegClient(server.port, "/stream/cam0.mjpg") as good:
            assert wait_until(lambda: server.watchers("cam0") == 2)
            start, frames = time.monotonic(), 0
            while server.dropped_viewers == 0 and time.monotonic() - start < 15:
                good.next_jpeg()
                frames += 1
                assert get(server, "/healthz")[0] == 200
            assert server.dropped_viewers == 1, "the viewer that never reads must be dropped"
            assert frames >= 10, "the healthy viewer must keep getting frames meanwhile"
            assert server.watchers("cam0") == 1
            for _ in range(5):
                good.next_jpeg()
        slow.settimeout(5)
        while slow.recv(65536):  # drain what the kernel had buffered, then see the close
            pass
        slow.close()


def test_viewers_beyond_max_clients_get_503(make_server):
    server = make_server(max_clients=2)
    with Feeder(server, fps=30):
        first = MjpegClient(server.port, "/stream/cam0.mjpg")
        second = MjpegClient(server.port, "/stream/cam0.mjpg")
        first.next_jpeg(), second.next_jpeg()
        refused = raw_request(server.port, b"GET /stream/cam0.mjpg HTTP/1.1\r\n\r\n")
        assert status_of(refused) == 503 and b"max_clients" in refused
        assert get(server, "/stats.json")[0] == 200, "pages and stats still work at the viewer cap"
        first.close()
        assert wait_until(lambda: server.watchers("cam0") == 1)
        with MjpegClient(server.port, "/stream/cam0.mjpg") as third:
            assert third.status == 200 and third.next_jpeg()
        second.close()
    assert stats(server)["preview"]["refused_viewers"] == 1


def test_an_idle_stream_notices_a_viewer_that_left(make_server):
    server = make_server(cameras=("cam0",))
    client = MjpegClient(server.port, "/stream/cam0.mjpg")
    assert client.status == 200 and wait_until(lambda: server.watchers("cam0") == 1)
    client.close()
    assert wait_until(lambda: server.watchers("cam0") == 0, timeout=3)


def test_a_stalled_camera_repeats_its_last_frame(make_server, monkeypatch):
    monkeypatch.setattr(handler, "KEEPALIVE_S", 0.5)
    server = make_server()
    server.offer_frame("cam0", moving_frame(7), time.monotonic())
    with MjpegClient(server.port, "/stream/cam0.mjpg") as client:
        first = client.next_jpeg()
        start = time.monotonic()
        assert client.next_jpeg() == first
        assert time.monotonic() - start < 3
    assert server.hub.get("cam0").encoded == 1


def test_stop_ends_open_streams_quickly(make_server):
    server = make_server()
    with Feeder(server, fps=30):
        client = MjpegClient(server.port, "/stream/cam0.mjpg")
        client.next_jpeg()
        start = time.monotonic()
        assert server.stop(3.0)
        assert time.monotonic() - start < 2.0
        with pytest.raises((EOFError, OSError)):
            for _ in range(100):
                client.next_jpeg()
        client.close()


def test_events_keep_the_newest_fifty_newest_first(make_server):
    server = make_server()
    for i in range(EVENT_HISTORY + 10):
        server.offer_event({"seq": i, "event": "update", "confidence": np.float32(0.5), "score": float("nan")})
    events = json.loads(get(server, "/events.json")[2])["events"]
    assert [e["seq"] for e in events] == list(range(EVENT_HISTORY + 9, 9, -1))
    assert events[0]["confidence"] == 0.5 and events[0]["score"] is None


def test_faces_now_follow_the_events_until_their_track_ends(make_server):
    server = make_server()
    server.offer_event(face_event(0, "start", 1, "neutral"))
    server.offer_event(face_event(1, "start", 2, "sad"))
    server.offer_event(face_event(2, "change", 1, "happy"))
    server.offer_event(face_event(3, "start", 5, "fear", camera="door"))
    faces = stats(server)["preview"]["faces"]
    assert sorted((f["track_id"], f["emotion"]) for f in faces["cam0"]) == [(1, "happy"), (2, "sad")]
    assert faces["door"] == [{"track_id": 5, "emotion": "fear", "confidence": 0.7}]
    server.offer_event(face_event(4, "end", 2, "sad"))
    assert [f["track_id"] for f in stats(server)["preview"]["faces"]["cam0"]] == [1]
    events = json.loads(get(server, "/events.json")[2])["events"]
    assert [e["seq"] for e in events] == [4, 3, 2, 1, 0] and events[0]["type"] == "end"


def test_the_face_table_stays_bounded_with_an_event_per_frame_and_tracks_that_never_end(make_server):
    """every_frame mode: an update per face per frame; 10,000 tracks that never send "end", on 100 cameras."""
    from edge_fer.outputs.web.server import MAX_CAMERAS, MAX_FACES_PER_CAMERA

    server = make_server()
    for track in range(10_000):
        for _frame in range(3):
            server.offer_event(face_event(track, "update", track, camera=f"cam{track % 100}"))
    faces = stats(server)["preview"]["faces"]
    assert len(faces) == MAX_CAMERAS and all(len(f) <= MAX_FACES_PER_CAMERA for f in faces.values())
    assert [f["track_id"] for f in faces["cam0"]][-2:] == [9_800, 9_900]  # the most recently seen are kept


def test_stats_are_strict_json(make_server):
    server = make_server(stats=lambda: {"fps": float("inf"), "hist": np.arange(3), "cameras": {"cam0": {"fps": 1.5}}})
    body = get(server, "/stats.json")[2]
    assert b"Infinity" not in body and b"NaN" not in body
    data = json.loads(body)
    assert data["pipeline"]["fps"] is None and data["pipeline"]["hist"] == [0, 1, 2]


def test_camera_names_are_escaped_in_the_page_and_quoted_in_urls(make_server):
    name = 'front door/<b>"x"'
    server = make_server(cameras=(name,))
    page = get(server, "/")[2].decode()
    assert "<b>" not in page and "&lt;b&gt;" in page
    assert 'src="/stream/front%20door%2F%3Cb%3E%22x%22.mjpg"' in page
    server.offer_frame(name, moving_frame(1), time.monotonic())
    with MjpegClient(server.port, "/stream/front%20door%2F%3Cb%3E%22x%22.mjpg") as client:
        assert client.status == 200 and client.next_jpeg().startswith(b"\xff\xd8")

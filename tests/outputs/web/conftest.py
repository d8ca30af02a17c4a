"""Shared parts for the preview server tests: a started server, moving real frames, and plain clients."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator
from functools import lru_cache

import numpy as np
import pytest

from edge_fer.outputs.web import HttpSettings, PreviewServer


@lru_cache(maxsize=4)
def astronaut(size: int = 256) -> np.ndarray:
    """The public-domain astronaut portrait, BGR like a camera frame, resized to ``size`` square."""
    import cv2
    from skimage import data

    bgr = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    return bgr if size == bgr.shape[0] else cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)


def moving_frame(index: int, size: int = 256) -> np.ndarray:
    """Frame ``index`` of the portrait drifting sideways, annotated with a face box and the frame number."""
    import cv2

    frame = np.roll(astronaut(size), (index * 4) % size, axis=1)
    scale = size / 512
    x = int((170 * scale + index * 4) % size)
    cv2.rectangle(frame, (x, int(70 * scale)), (x + int(95 * scale), int(185 * scale)), (0, 255, 0), 2)
    cv2.putText(frame, f"frame {index}", (8, size - 12), cv2.FONT_HERSHEY_SIMPLEX, size / 512, (255, 255, 255), 2)
    return frame


def face_event(seq: int, kind: str, track_id: int, emotion: str = "happy", camera: str = "cam0") -> dict:
    """A real face event as the pipeline hands it over (``FaceEvent.to_dict()``)."""
    from edge_fer.events import FaceEvent, ModelInfo, iso_utc_ms
    from edge_fer.vision.types import EMOTIONS, Box

    scores = {label: (0.7 if label == emotion else 0.05) for label in EMOTIONS}
    end = kind == "end"
    return FaceEvent(
        device="test-box",
        camera=camera,
        run_id="run-1",
        seq=seq,
        ts=iso_utc_ms(time.time()),
        frame=seq,
        track_id=track_id,
        type=kind,  # type: ignore[arg-type]
        box=Box(170.0, 70.0, 95.0, 115.0),
        det_score=0.99,
        emotion=emotion,
        confidence=0.7,
        scores=scores,
        model=ModelInfo(name="emotion_mini_xception", sha256="0123abcd"),
        duration=2.5 if end else None,
        dominant_emotion=emotion if end else None,
    ).to_dict()


class Feeder:
    """Offers moving, numbered frames from its own thread at ``fps``, as the inference worker would."""

    def __init__(self, server: PreviewServer, camera: str = "cam0", fps: float = 30.0, size: int = 256) -> None:
        self.server, self.camera, self.fps, self.size = server, camera, fps, size
        self.offered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"test-feeder-{camera}", daemon=True)

    def _run(self) -> None:
        period = 1.0 / self.fps
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.server.offer_frame(self.camera, moving_frame(self.offered, self.size), time.monotonic())
            self.offered += 1
            next_at += period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def make_server() -> Iterator[Callable[..., PreviewServer]]:
    servers: list[PreviewServer] = []

    def make(
        stats: Callable[[], dict] | None = None,
        health: Callable[[], tuple[bool, dict]] | None = None,
        cameras: tuple[str, ...] = ("cam0",),
        **settings: object,
    ) -> PreviewServer:
        server = PreviewServer(
            HttpSettings(enabled=True, port=0, **settings),  # type: ignore[arg-type]
            stats or (lambda: {"cameras": {"cam0": {"fps": 15.0, "latency_ms": 40.0, "faces": []}}}),
            health or (lambda: (True, {"cam0": "streaming"})),
            cameras=cameras,
        )
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        assert server.stop(5.0), "the preview server did not stop in time"


def get(server: PreviewServer, path: str, method: str = "GET", headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes as they are (no client-side path cleaning) and return the whole response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    parts = response.split(b"\r\n", 1)[0].split(b" ")
    assert parts[0] == b"HTTP/1.0", response[:200]
    return int(parts[1])


class MjpegClient:
    """A plain socket client that reads a multipart MJPEG stream part by part."""

    def __init__(self, port: int, path: str, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        self.file = self.sock.makefile("rb")
        self.status = int(self.file.readline().split(b" ")[1])
        self.headers: dict[str, str] = {}
        while (line := self.file.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.boundary = self.headers.get("content-type", "").partition("boundary=")[2].encode()

    def next_jpeg(self) -> bytes:
        while (line := self.file.readline()).rstrip(b"\r\n") != b"--" + self.boundary:
            if not line:
                raise EOFError("stream ended")
        part_headers = {}
        while (line := self.file.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            part_headers[name.strip().lower()] = value.strip()
        if not part_headers:
            raise EOFError("stream ended after a boundary")
        assert part_headers["content-type"] == "image/jpeg"
        data = self.file.read(int(part_headers["content-length"]))
        assert self.file.read(2) == b"\r\n", "a part must end with CRLF before the next boundary"
        return data

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> MjpegClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

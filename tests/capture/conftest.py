"""Capture fixtures: a stop event per test, and a local HTTP server that streams MJPEG
(multipart/x-mixed-replace), like IP cameras do."""

from __future__ import annotations

import http.server
import threading
from dataclasses import dataclass, field

import pytest

from tests.clips import clip_frame


@dataclass
class MjpegServer:
    """Each connection gets ``frames`` JPEG frames at ``fps``, numbered from ``start`` (see
    tests.clips.frame_number), then the server closes it, or keeps it open silently when
    ``stall`` is set."""

    frames: int = 30
    fps: float = 30.0
    stall: bool = False
    connections: int = 0
    url: str = ""
    _jpegs: dict = field(default_factory=dict)

    def jpeg(self, index: int) -> bytes:
        import cv2

        if index not in self._jpegs:
            ok, buf = cv2.imencode(".jpg", clip_frame(index), [cv2.IMWRITE_JPEG_QUALITY, 90])
            assert ok
            self._jpegs[index] = buf.tobytes()
        return self._jpegs[index]


@pytest.fixture
def stop():
    """The stop event a capture thread watches; set at teardown so no thread outlives its test."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def mjpeg_server():
    state = MjpegServer()
    stop = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            state.connections += 1
            start = (state.connections - 1) * 100
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            try:
                for i in range(state.frames):
                    data = state.jpeg(start + i)
                    head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                    self.wfile.write(head + data + b"\r\n")
                    self.wfile.flush()
                    if stop.wait(1.0 / state.fps):
                        return
                while state.stall and not stop.wait(0.05):
                    pass
            except OSError:  # the client went away
                pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="test-mjpeg-server", daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
    yield state
    stop.set()
    server.shutdown()
    server.server_close()
    thread.join(5)

"""Cameras that vanish, come back, or send garbage, seen from the daemon's side: what reaches MQTT and the
event stream. (tests/capture proves the capture thread's own state machine; these prove the outcome.)"""

from __future__ import annotations

import http.server
import json
import signal
import threading
import time

import numpy as np
import pytest

from edge_fer.config.loading import parse_config
from edge_fer.outputs.runner import OutputRunner
from edge_fer.runtime.pipeline import Pipeline
from edge_fer.vision.types import Box
from tests.mosquitto import Subscriber, free_port
from tests.photos import make_scene, moving_face_scenes
from tests.recording import ListOutput
from tests.reliability.harness import DaemonProcess, write_config
from tests.scripted import End, Gone, ScriptedSource, Stall
from tests.wait import wait_until

DEVICE = "camfaults"
STATUS = f"edge-fer/{DEVICE}/cam0/status"


class MjpegCamera:
    """An IP camera on a fixed port that the test can switch off (connections dropped, then refused) and on."""

    def __init__(self, jpegs: list[bytes], fps: float = 15.0) -> None:
        self.jpegs, self.fps = jpegs, fps
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self.connections = 0
        self._server: http.server.ThreadingHTTPServer | None = None
        self._off = threading.Event()

    def start(self) -> MjpegCamera:
        camera = self
        self._off.clear()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                camera.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while not camera._off.wait(1.0 / camera.fps):
                        data = camera.jpegs[i % len(camera.jpegs)]
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
                        self.wfile.write(head.encode() + data + b"\r\n")
                        self.wfile.flush()
                        i += 1
                except OSError:
                    pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="test-ipcam", daemon=True).start()
        return self

    def stop(self) -> None:
        self._off.set()  # open streams end (their connections close)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()  # and new connections are refused
            self._server = None


@pytest.fixture(scope="module")
def scenes():
    return moving_face_scenes(40, 320, 240, start=(110, 120), end=(210, 118), face_px=80)


@pytest.mark.slow
def test_ip_camera_switched_off_and_on_reports_its_states_over_mqtt_and_events_resume(make_broker, scenes, tmp_path):
    import cv2

    jpegs = [cv2.imencode(".jpg", s.bgr)[1].tobytes() for s in scenes]
    camera = MjpegCamera(jpegs).start()
    broker = make_broker()
    sub = Subscriber(broker.port, [STATUS]).start()
    path = write_config(
        tmp_path / "edge-fer.yaml",
        {
            "device": DEVICE,
            "cameras": [
                {
                    "name": "cam0",
                    "source": camera.url,
                    "stall_timeout": 3.0,
                    "reconnect": {"initial_delay": 0.2, "max_delay": 1.0},
                }
            ],
            "events": {"mode": "every_frame"},
            "output": {"stdout": "on"},
            "mqtt": {"url": broker.url, "keepalive": 5},
        },
    )

    def states() -> list[str]:
        out: list[str] = []
        for m in sub.on(STATUS):
            state = json.loads(m.payload)["state"]
            if not out or out[-1] != state:
                out.append(state)
        return out

    def wait_states(*expected: str, timeout: float = 20.0) -> None:
        try:
            wait_until(lambda: states()[-len(expected) :] == list(expected), timeout, 0.05)
        except AssertionError:
            raise AssertionError(f"status went {states()}, expected to end with {expected}") from None

    try:
        with DaemonProcess("--config", str(path)) as daemon:
            wait_states("connected")
            daemon.wait_events(10)
            camera.stop()
            off_at = time.monotonic()
            wait_states("connected", "reconnecting", timeout=15)
            time.sleep(2.0)  # the behaviour under test: the camera stays off a while (a few refused attempts)
            assert states()[-1] == "reconnecting"
            camera.start()
            on_at = time.monotonic()
            wait_states("connected", "reconnecting", "connected", timeout=20)
            before = len(daemon.events())
            daemon.wait_events(before + 10, timeout=20)  # frames flow again and give events
            fresh = Subscriber(broker.port, [STATUS]).start()  # what a newcomer sees: the retained status
            try:
                retained = fresh.wait_count(STATUS, 1)[0]
            finally:
                fresh.stop()
            assert retained.retain and json.loads(retained.payload)["state"] == "connected"
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(20) == 0, daemon.stderr
    finally:
        camera.stop()
        sub.stop()
    assert states() == ["connecting", "connected", "reconnecting", "connected", "stopped"]
    lines = daemon.event_lines()
    events = [json.loads(line.text) for line in lines]
    assert [e["seq"] for e in events] == list(range(len(events)))
    resumed = [e for line, e in zip(lines, events) if line.t > on_at]
    silent = [e for line, e in zip(lines, events) if off_at + 1.0 < line.t < on_at]
    assert len(resumed) >= 10 and silent == []
    assert camera.connections >= 2
    assert "Traceback" not in daemon.stderr


# -- in-process: the real pipeline and models, a scripted camera through the real capture thread ----------


def run_scripted(analyzer, sink: ListOutput, source: ScriptedSource, config: dict):
    """A Pipeline whose one camera reads ``source`` (the factory replaces the config's demo); not yet run."""
    stop = threading.Event()
    pipeline = Pipeline(
        parse_config(config), analyzer, OutputRunner([sink]), stop, run_id="reliability1", sources=lambda cam: source
    )
    return pipeline, stop


@pytest.mark.slow
def test_a_camera_that_disappears_ends_its_track_and_a_new_one_starts_when_it_returns(analyzer, list_output, scenes):
    frames = [s.bgr for s in scenes]
    source = ScriptedSource([*frames, Gone(opens=3), *frames, Stall(60)], fps=20)
    config = {"cameras": [{"source": "demo", "reconnect": {"initial_delay": 0.4, "max_delay": 0.8}}]}
    sink = list_output
    pipeline, stop = run_scripted(analyzer, sink, source, config)
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(pipeline.run()), name="test-pipeline", daemon=True)
    worker.start()
    try:
        sink.wait_for(lambda es: any(e.type == "start" and e.track_id == 2 for e in es), timeout=30)
        # every frame of the second connection delivered: the source now sits in its final stall
        wait_until(lambda: pipeline.cameras[0].capture.stats().captured == 2 * len(frames), 10, what="all frames")
    finally:
        stop.set()
        worker.join(10)
    assert result == [0]
    states = [state for _, state, _ in sink.states]
    assert states[:4] == ["connecting", "connected", "reconnecting", "connected"]
    timeline = [(e.type, e.track_id) for e in sink.events if e.type in ("start", "end")]
    assert timeline == [("start", 1), ("end", 1), ("start", 2), ("end", 2)]
    first_end = next(e for e in sink.events if e.type == "end")
    second_start = next(e for e in sink.events if e.type == "start" and e.track_id == 2)
    assert second_start.frame >= len(frames), "the new track is on frames from after the reconnect"
    assert first_end.seq < second_start.seq
    assert [e.seq for e in sink.events] == list(range(len(sink.events)))
    stats = pipeline.cameras[0].capture.stats()
    assert stats.reconnects == 1 and stats.errors == 4  # the failed read and three failed opens


def test_frames_of_the_wrong_shape_dtype_or_size_are_rejected_counted_and_inference_goes_on(
    analyzer, list_output, scenes, caplog
):
    good = [s.bgr for s in scenes[:12]]
    bad = [
        good[0].astype(np.float32),  # wrong dtype
        good[0].astype(np.int16),
        np.zeros((240, 320, 2), np.uint8),  # wrong channel count
        np.zeros((2, 240, 320, 3), np.uint8),  # a batch, not an image
        np.zeros((0, 320, 3), np.uint8),  # size zero
        np.zeros((240, 0, 3), np.uint8),
        np.zeros((0, 0, 3), np.uint8),
        "not an image",
    ]
    odd_but_valid = [np.zeros((1, 1, 3), np.uint8), np.full((2, 2000, 3), 200, np.uint8), good[5][:60, :80].copy()]
    script: list[object] = []
    for i, frame in enumerate(good):  # a bad frame after every good one, then the odd sizes, then the rest
        script.append(frame)
        if i < len(bad):
            script.append(bad[i])
    script[len(script) // 2 : len(script) // 2] = odd_but_valid
    source = ScriptedSource([*script, End()], live=False, paced=False)
    config = {"cameras": [{"source": "demo"}], "events": {"mode": "every_frame"}}
    sink = list_output
    pipeline, _ = run_scripted(analyzer, sink, source, config)
    assert pipeline.run() == 0
    stats = pipeline.cameras[0].capture.stats()
    usable = len(good) + len(odd_but_valid)
    assert (stats.errors, stats.captured, stats.processed, stats.dropped) == (len(bad), usable, usable, 0)
    assert pipeline.latest_stats.camera("cam0")["errors"] == len(bad)
    faces = [e for e in sink.events if e.type == "face"]
    assert len({e.frame for e in faces}) >= len(good) - 2, "inference went on between and after the bad frames"
    assert max(e.frame for e in faces) == usable - 1, "the last good frame, after every bad one, was analysed"
    assert "could not be processed" not in caplog.text
    assert "rejected a frame" in caplog.text


def test_frames_over_max_frame_pixels_are_shrunk_and_events_keep_the_sources_coordinates(analyzer, caplog):
    """A 4K source with a limit of 960x540: nothing after the capture holds a 4K frame (the queue, the detector,
    the preview and recording get 960x540), the face is found, and its event boxes are in the 4K frame's pixels.
    One line says so, however many frames come. Before: no such setting; an 8000x8000 stream took 3.3 GB."""
    scene = make_scene(3840, 2160, faces=[(1900, 1000, 480, False)], background="coffee", seed=1)
    source = ScriptedSource([scene.bgr] * 6 + [End()], live=False, paced=False)
    config = {"cameras": [{"source": "demo", "max_frame_pixels": 960 * 540}], "events": {"mode": "every_frame"}}
    sink = ListOutput(watch=["cam0"])
    pipeline, _ = run_scripted(analyzer, sink, source, config)
    assert pipeline.run() == 0
    assert {image.shape for _, _, image in sink.frames} == {(540, 960, 3)}
    faces = [e for e in sink.events if e.type == "face"]
    assert len(faces) == 6
    truth = Box(*scene.faces[0].box)
    assert all(e.box.iou(truth) > 0.7 for e in faces), [(e.box, truth) for e in faces]
    lines = [r for r in caplog.records if "max_frame_pixels" in r.getMessage()]
    assert len(lines) == 1 and "3840x2160 frames" in lines[0].getMessage() and "960x540" in lines[0].getMessage()

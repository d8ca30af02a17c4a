"""The pipeline in-process, with real models and real frames through the real capture code."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from edge_fer.config.settings import parse_config
from edge_fer.outputs.base import Sink, SinkRunner
from edge_fer.runtime.daemon import build_analyzer
from edge_fer.runtime.pipeline import Pipeline
from tests.photos import moving_face_scenes


class ListSink(Sink):
    name = "list"

    def __init__(self) -> None:
        self.events = []

    def handle(self, event) -> None:
        self.events.append(event)


def write_moving_clip(path: Path, frames: int = 40, size=(640, 360), fps: float = 15.0) -> Path:
    """A real clip: the astronaut's face sliding across a photo background."""
    import cv2

    width, height = size
    scenes = moving_face_scenes(frames, width, height, start=(160, 180), end=(480, 170), face_px=110)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    for scene in scenes:
        writer.write(scene.bgr)
    writer.release()
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_moving_clip(tmp_path_factory.mktemp("clip") / "moving.avi")


@pytest.fixture(scope="module")
def analyzer():
    return build_analyzer(parse_config({"detector": {"min_face_size": 40}}))


class SlowDetector:
    """The real detector, deliberately slowed: inference slower than capture."""

    def __init__(self, inner, delay: float) -> None:
        self.inner, self.delay = inner, delay

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def detect(self, image):
        time.sleep(self.delay)
        return self.inner.detect(image)

    def detect_array(self, image, **kwargs):  # what gated detection calls
        time.sleep(self.delay)
        return self.inner.detect_array(image, **kwargs)


class SlowAnalyzer:
    def __init__(self, inner, delay: float) -> None:
        self.classifier, self.aligner = inner.classifier, inner.aligner
        self.detector = SlowDetector(inner.detector, delay)


def make_pipeline(config: dict, analyzer, **kwargs) -> tuple[Pipeline, ListSink, threading.Event]:
    sink = ListSink()
    runner = SinkRunner([sink])
    runner.start()
    stop = threading.Event()
    pipeline = Pipeline(parse_config(config), analyzer, runner, stop, run_id="testrun00001", **kwargs)
    return pipeline, sink, stop


def test_batch_file_processes_every_frame_and_ends_cleanly(clip, analyzer):
    cfg = {"cameras": [{"name": "Door Cam", "source": str(clip), "realtime": False}], "events": {"mode": "every_frame"}}
    pipeline, sink, _ = make_pipeline(cfg, analyzer)
    assert pipeline.run() == 0
    stats = pipeline.cameras[0].capture.stats()
    assert stats.balanced
    assert (stats.captured, stats.processed, stats.dropped, stats.skipped) == (40, 40, 0, 0)
    faces = [e for e in sink.events if e.type == "face"]
    assert {e.frame for e in faces} == set(range(40)), "every frame has its face event"
    assert [e.seq for e in sink.events] == list(range(len(sink.events)))
    assert all(e.camera == "door_cam" for e in sink.events)


def test_one_track_id_while_the_face_moves(clip, analyzer):
    pipeline, sink, _ = make_pipeline({"cameras": [{"source": str(clip), "realtime": False}]}, analyzer)
    assert pipeline.run() == 0
    kinds = [e.type for e in sink.events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert {e.track_id for e in sink.events} == {1}
    end = sink.events[-1]
    assert end.dominant_emotion in end.scores and end.duration == pytest.approx(39 / 15, abs=0.15)


def test_detect_every_and_accounting_while_inference_is_slow(clip, analyzer):
    """A paced (real-time) file with inference slower than capture: frames drop, the ledger balances."""
    cfg = {"cameras": [{"source": str(clip), "realtime": True, "detect_every": 2, "queue_size": 1}]}
    pipeline, _, stop = make_pipeline(cfg, SlowAnalyzer(analyzer, 0.15))
    samples = []

    def watch():
        while not stop.is_set():
            samples.append(pipeline.cameras[0].capture.stats())
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert pipeline.run() == 0
    watcher.join(2)
    final = pipeline.cameras[0].capture.stats()
    assert all(s.balanced for s in samples) and final.balanced
    assert final.captured == 40 and final.skipped == 20
    assert final.dropped > 0, "inference at ~6 fps cannot keep up with 7.5 fps of kept frames"
    assert final.processed + final.dropped == 20


def test_stop_event_ends_open_tracks_and_returns_quickly(analyzer):
    pipeline, sink, stop = make_pipeline({"cameras": [{"source": "demo"}], "tracking": {"min_hits": 2}}, analyzer)
    threading.Timer(2.0, stop.set).start()
    t0 = time.monotonic()
    assert pipeline.run() == 0
    assert time.monotonic() - t0 < 2.0 + 5.0
    types = [e.type for e in sink.events]
    assert types[0] == "start" and types[-1] == "end"


def test_stats_payload_validates_against_the_schema(clip, analyzer):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).parents[2] / "edge_fer/schema/stats.schema.json").read_text())
    payloads = []
    cfg = {"cameras": [{"source": str(clip), "realtime": False}], "stats": {"interval": 0.2}}
    pipeline, _, _ = make_pipeline(cfg, SlowAnalyzer(analyzer, 0.02), on_stats=payloads.append)
    assert pipeline.run() == 0
    assert payloads, "at least the final stats"
    for payload in payloads:
        jsonschema.validate(payload, schema)
    last = payloads[-1]["cameras"]["cam0"]
    assert last["processed"] == 40 and last["latency_ms_p95"] > 0 and last["detect_ms_p50"] > 0
    assert last["full_scans"] >= 1 and last["full_scans"] + last["region_scans"] == 40


def test_two_cameras_share_the_worker(clip, analyzer):
    cfg = {
        "cameras": [
            {"name": "a", "source": str(clip), "realtime": False},
            {"name": "b", "source": str(clip), "realtime": False},
        ],
        "events": {"mode": "every_frame"},
    }
    pipeline, sink, _ = make_pipeline(cfg, analyzer)
    assert pipeline.run() == 0
    for name in ("a", "b"):
        events = [e for e in sink.events if e.camera == name]
        assert [e.seq for e in events] == list(range(len(events)))
        assert {e.frame for e in events} == set(range(40))


def test_ensemble_events_validate_and_name_every_member(clip):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).parents[2] / "edge_fer/schema/face_event.schema.json").read_text())
    config = {"detector": {"min_face_size": 40}, "classifier": {"models": ["mini_xception", "mini_xception"]}}
    ensemble = build_analyzer(parse_config(config))
    cfg = {"cameras": [{"source": str(clip), "realtime": False}], "events": {"mode": "every_frame"}}
    pipeline, sink, _ = make_pipeline(cfg, ensemble, max_frames=5)
    assert pipeline.run() == 0
    faces = [e.to_dict() for e in sink.events if e.type == "face"]
    assert faces
    for event in faces:
        jsonschema.validate(event, schema)
        assert event["model"] == {
            "name": "mini_xception_fer+mini_xception_fer",
            "sha256": ensemble.classifier.sha256_id,
        }
    assert ensemble.classifier.sha256_id != ensemble.classifier.models[0].sha256[:12]

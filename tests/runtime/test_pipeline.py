"""The pipeline in-process, with real models and real frames through the real capture code."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from edge_fer.config.loading import parse_config
from edge_fer.outputs.runner import OutputRunner
from edge_fer.runtime.pipeline import Pipeline
from edge_fer.vision.analyzer import FaceAnalyzer
from tests.photos import moving_face_scenes
from tests.recording import ListOutput
from tests.wait import wait_until


def analyzer_for(config: dict) -> FaceAnalyzer:
    cfg = parse_config(config)
    return FaceAnalyzer.from_settings(cfg.detector, cfg.classifier)


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


def slow_analyzer(inner: FaceAnalyzer, delay: float) -> FaceAnalyzer:
    """The same analysis with a slowed detector, injected like any analyzer."""
    return FaceAnalyzer(
        SlowDetector(inner.detector, delay),
        inner.aligner,
        inner.classifier,
        min_score=inner.min_score,
        min_face_size=inner.min_face_size,
    )


def make_pipeline(config: dict, analyzer, sink=None, **kwargs) -> tuple[Pipeline, ListOutput, threading.Event]:
    sink = sink or ListOutput()
    runner = OutputRunner([sink])
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
    pipeline, _, stop = make_pipeline(cfg, slow_analyzer(analyzer, 0.15))
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
    cfg = {"cameras": [{"source": str(clip), "realtime": False}], "stats": {"interval": 0.2}}
    pipeline, sink, _ = make_pipeline(cfg, slow_analyzer(analyzer, 0.02))
    assert pipeline.run() == 0
    payloads = [s.to_dict() for s in sink.snapshots if s.due]
    assert payloads, "at least the final stats"
    assert sink.snapshots[-1].due and sink.snapshots[-1] is pipeline.latest_stats
    for payload in payloads:
        jsonschema.validate(payload, schema)
        assert payload["mqtt"] is None and payload["sinks"]["list"]["dropped"] == 0
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
    ensemble = analyzer_for(config)
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


def test_frames_are_annotated_only_for_cameras_an_output_watches(clip, analyzer):
    cfg = {
        "cameras": [
            {"name": "a", "source": str(clip), "realtime": False},
            {"name": "b", "source": str(clip), "realtime": False},
        ],
    }
    sink = ListOutput(watch={"b"})
    pipeline, _, _ = make_pipeline(cfg, analyzer, sink=sink)
    assert pipeline.run() == 0
    assert {camera for camera, _, _ in sink.frames} == {"b"}
    assert sorted(index for _, index, _ in sink.frames) == list(range(40))
    _, _, image = sink.frames[0]
    assert image.ndim == 3


def test_sources_and_analyzer_are_injected_and_the_analyzer_timings_feed_the_meters(analyzer):
    from edge_fer.capture import DemoSource

    made = []

    def sources(cam):
        made.append(cam.name)
        return DemoSource(width=320, height=240, fps=30.0, faces=1, realtime=False)

    cfg = {"cameras": [{"name": "injected", "source": "0"}]}
    pipeline, _, _ = make_pipeline(cfg, analyzer, sources=sources, max_frames=10)
    assert made == ["injected"], "the factory, not camera 0, gave the camera its source"
    assert pipeline.run() == 0
    meters = pipeline.cameras[0].meters
    assert len(meters.detect_ms) >= 10 and meters.faces_found >= 1
    assert meters.classify_ms_per_face.mean() > 0


def test_health_stays_ok_for_a_camera_that_max_fps_limits_below_one_frame_per_stall_timeout(analyzer):
    """max_fps 0.5 (a frame every 2 s) with stall_timeout 1 s: healthy throughout, not 503 between frames."""
    cfg = {"cameras": [{"source": "demo", "max_fps": 0.5, "stall_timeout": 1.0}]}
    pipeline, _, stop = make_pipeline(cfg, analyzer)
    runner = threading.Thread(target=pipeline.run, daemon=True)
    runner.start()
    try:
        wait_until(lambda: pipeline.cameras[0].meters.last_processed_mono is not None, 30, what="a first frame")
        seen = []
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            seen.append(pipeline.health()[0])
            time.sleep(0.1)
    finally:
        stop.set()
        runner.join(10)
    assert all(seen), f"{seen.count(False)} of {len(seen)} health checks said stalled"

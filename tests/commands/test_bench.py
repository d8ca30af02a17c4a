"""`edge-fer bench` runs the real pipeline and reports what it measured."""

import json
import subprocess
import sys

import pytest


def bench(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "edge_fer", "bench", "--json", *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_bench_reports_every_figure_on_the_demo_source():
    result = bench("--frames", "20")
    assert result["frames"] >= 20
    assert result["faces_per_frame"] == pytest.approx(1.0, abs=0.1)
    for key in ("processed_fps", "detect_ms_p50", "detect_ms_p95", "classify_ms_per_face", "latency_ms_p95"):
        assert result[key] > 0, key
    assert 0 < result["start_to_first_event_s"] < 60
    assert result["peak_rss_mb"] > 50 and result["threads_peak"] >= 3


@pytest.mark.slow
def test_bench_on_a_multi_face_demo():
    result = bench("--source", "demo:3", "--frames", "8", "--width", "960", "--height", "540")
    assert (result["width"], result["height"]) == (960, 540)
    assert result["faces_per_frame"] >= 2.5


def test_bench_rejects_bad_frame_count():
    proc = subprocess.run([sys.executable, "-m", "edge_fer", "bench", "--frames", "0"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--frames" in proc.stderr


@pytest.mark.slow
def test_bench_reports_full_and_region_scans_separately():
    gated = bench("--frames", "40")
    assert gated["full_scans"] >= 2 and gated["region_scans"] >= 20  # 40 frames at 30 fps: full at 0 and 0.5 s
    assert gated["full_scans"] + gated["region_scans"] == gated["frames"]
    assert gated["full_scan_ms_p50"] > gated["region_scan_ms_p50"] > 0
    full = bench("--frames", "10", "--full-scan-interval", "0")
    assert full["region_scans"] == 0 and full["full_scans"] == full["frames"] and full["region_scan_ms_p50"] is None


@pytest.mark.slow
def test_bench_without_roi_detection_scans_every_frame_in_full(tmp_path):
    config = tmp_path / "edge-fer.yaml"
    config.write_text("detector:\n  roi_detection: false\n")
    result = bench("--frames", "10", "--config", str(config))
    assert result["region_scans"] == 0 and result["full_scans"] == result["frames"]


def test_run_bench_measures_the_analyzer_it_is_given_without_patching_anything():
    """A caller's analyzer (a benchmark variant) is injected; faces and timings come from its results."""
    from edge_fer.config.loading import apply_overrides, load_config
    from edge_fer.offline.bench import run_bench
    from edge_fer.vision.analyzer import FaceAnalyzer

    class Counting(FaceAnalyzer):
        calls = 0

        def analyze(self, image_bgr, detect=None):
            Counting.calls += 1
            return super().analyze(image_bgr, detect)

    config = apply_overrides(load_config(None), {"output.stdout": "off"}, source="demo")
    base = FaceAnalyzer.from_settings(config.detector, config.classifier)
    analyzer = Counting(
        base.detector, base.aligner, base.classifier, min_score=base.min_score, min_face_size=base.min_face_size
    )
    result = run_bench(config, 8, paced=False, analyzer=analyzer)
    assert Counting.calls == result.frames >= 8
    assert result.faces_per_frame == pytest.approx(1.0, abs=0.2) and result.detect_ms_p50 > 0


@pytest.mark.slow
def test_bench_reports_process_cpu_per_frame_and_the_idle_cost():
    busy = bench("--frames", "20")
    idle = bench("--frames", "20", "--idle")
    assert busy["cpu_ms_per_frame"] > 0 and busy["cpu_cores"] > 0 and busy["idle"] is False
    assert idle["idle"] is True and idle["faces_per_frame"] == 0 and idle["events"] == 0
    assert idle["source"].startswith("still scene, demo")
    # no face: no classification, and region scans with nothing to look at cost only the motion check
    assert idle["cpu_ms_per_frame"] < busy["cpu_ms_per_frame"]


def test_bench_idle_needs_the_demo_source(tmp_path):
    video = tmp_path / "clip.avi"
    video.write_bytes(b"not a video")
    proc = subprocess.run(
        [sys.executable, "-m", "edge_fer", "bench", "--idle", "--source", str(video)], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "--idle needs the demo source" in proc.stderr


def test_still_scene_has_no_face():
    from edge_fer.offline.bench import still_scene
    from edge_fer.vision.mtcnn import MtcnnDetector

    with MtcnnDetector() as detector:
        assert detector.detect(still_scene(640, 480)) == []

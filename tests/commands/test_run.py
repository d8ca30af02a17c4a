"""`edge-fer run` as a user runs it: a real process, real signals, real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_fer.outputs.window import opencv_has_windows
from tests.processes import edge_fer

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "edge_fer/schema/face_event.schema.json"


def events_of(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.mark.slow
def test_demo_source_prints_valid_face_events_and_exits_0():
    jsonschema = pytest.importorskip("jsonschema")
    proc = edge_fer("--source", "demo", "--max-frames", "45")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    events = events_of(out)
    assert events, f"no events; stderr:\n{err}"
    schema = json.loads(SCHEMA.read_text())
    for event in events:
        jsonschema.validate(event, schema)
    assert events[0]["type"] == "start" and events[-1]["type"] == "end"
    assert [e["seq"] for e in events] == list(range(len(events)))


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_drains_ends_tracks_and_exits_0_within_5_s(signum):
    proc = edge_fer("--source", "demo")
    deadline = time.monotonic() + 60
    first = proc.stdout.readline()  # the first event: the pipeline is running and a track started
    assert first and time.monotonic() < deadline, proc.stderr.read()
    t0 = time.monotonic()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=15)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, err
    assert elapsed < 5.0, f"shutdown took {elapsed:.1f} s"
    events = [json.loads(first), *events_of(out)]
    assert events[-1]["type"] == "end"


def test_sigterm_while_models_load_is_a_clean_stop():
    """systemd may stop the unit during its start: the signal must reach the stop event, not kill."""
    proc = edge_fer("--source", "demo")
    line = proc.stderr.readline()  # the emotion model has loaded; the detector and outputs are being built
    assert "emotion model" in line, line
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, line + err
    assert "Traceback" not in err


def _decode_frames(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_annotated_video_stays_playable_after_termination(tmp_path, signum):
    out_dir = tmp_path / "video"
    proc = edge_fer("--source", "demo", "--output", str(out_dir))
    assert proc.stdout.readline(), proc.stderr.read()
    time.sleep(2.0)
    proc.send_signal(signum)
    proc.communicate(timeout=15)
    files = sorted(p for p in out_dir.iterdir() if p.suffix in (".avi", ".mp4"))  # MJPEG, or H.264 with PyAV
    assert len(files) == 1
    assert _decode_frames(files[0]) >= 20


def test_preview_without_display_is_a_clear_error():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run(
        [sys.executable, "-m", "edge_fer", "--preview", "--max-frames", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "http" in lines[0], lines
    # The default install is OpenCV's headless build: that is said first, with the swap that gives a window.
    said = "--preview needs a display" if opencv_has_windows() else "pip install 'opencv-python"
    assert said in lines[0], lines


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        (b"garbage", 69, "not a usable ONNX model"),
        (None, 78, "classifier.models"),
    ],
    ids=["corrupt", "missing"],
)
def test_bad_model_file_fails_at_start_with_one_line(tmp_path, content, code, message):
    model = tmp_path / "model.onnx"
    if content is not None:
        model.write_bytes(content)
    config = tmp_path / "c.yaml"
    config.write_text(f"classifier:\n  models: [{model}]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "edge_fer", "--config", str(config), "--max-frames", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_missing_video_file_is_a_clear_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "edge_fer", "--source", str(tmp_path / "nope.mp4"), "--max-frames", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 78
    assert "nope.mp4" in proc.stderr and "Traceback" not in proc.stderr


def test_set_applies_overrides_to_the_config():
    from edge_fer.config.loading import apply_assignments, load_config

    config = apply_assignments(load_config(None), ["tracking.min_hits=5", "cameras[0].source=demo:2"])
    assert config.tracking.min_hits == 5
    assert config.cameras[0].source == "demo:2"


@pytest.mark.parametrize(
    "item",
    ["tracking.min_hits=hunter2secret", "tracking.min_hits=987654321", "http.port=hunter2 secret", "nokey"],
)
def test_invalid_set_exits_78_naming_the_key_never_the_value(item):
    proc = edge_fer("run", "--source", "demo", "--max-frames", "1", "--set", item)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 78, err
    assert out == ""
    value = item.partition("=")[2] or item
    assert value not in err and "hunter2" not in err
    line = [x for x in err.splitlines() if x.startswith("edge-fer run: --set")]
    assert len(line) == 1, err
    if "=" in item:
        assert item.partition("=")[0] in line[0]


@pytest.mark.slow
def test_a_cut_off_or_corrupt_video_ends_run_like_analyze_with_one_line_and_exit_1(tmp_path):
    """The same file, the same exit status from both commands; the frames before the cut still give events."""
    from tests.clips import write_clip

    whole = write_clip(tmp_path / "whole.avi", frames=90, fps=30, size=(640, 480))
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64)
    common = ("--set", "cameras[0].realtime=false", "--log-level", "warning")
    codes = {}
    for video in (whole, cut, junk):
        run = edge_fer("--source", str(video), *common)
        out, err = run.communicate(timeout=120)
        analyze = subprocess.run([sys.executable, "-m", "edge_fer", "analyze", "--out", str(tmp_path / "a"),
                                  str(video)], capture_output=True, text=True, timeout=120)  # fmt: skip
        codes[video.name] = (run.returncode, analyze.returncode)
        if video is cut:
            (line,) = err.strip().splitlines()
            assert f"{cut}: decoding stopped after " in line and "of 90 frames (the file is cut off or corrupt)" in line
            assert events_of(out), "the frames before the cut were processed"
        if video is junk:
            (line,) = err.strip().splitlines()
            assert str(junk) in line and "Traceback" not in err
    assert codes == {"whole.avi": (0, 0), "cut.avi": (1, 1), "junk.mp4": (1, 1)}

"""The video analysis on real clips written from the shipped portrait: the table, the summary, the timeline,
early ends, and the small pieces (container sniffing, progress line, track runs) on their own."""

from __future__ import annotations

import csv
import json
import os
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_fer.capture.opencv_source import short_by
from edge_fer.config.settings import DetectorSettings, TrackingSettings
from edge_fer.offline import timeline
from edge_fer.offline.inputs import Input, InputError, classify, container
from edge_fer.offline.progress import Progress
from edge_fer.offline.table import TrackLog, columns
from edge_fer.offline.video import VideoAnalysis, VideoOptions, stem_of
from edge_fer.outputs.annotate import EMOTION_COLORS
from edge_fer.tracking.tracker import TrackUpdate
from edge_fer.vision.types import EMOTIONS
from tests.clips import clip_frame, write_clip

SIZE = (640, 480)  # the portrait's face is ~60 px here, above the default minimum face (40)


def write_gap_clip(path: Path, *, before: int = 30, gap: int = 45, after: int = 30, fps: float = 30.0) -> Path:
    """The portrait, then an empty picture for longer than ``tracking.max_age``, then the portrait again:
    two tracks."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, SIZE)
    empty = np.full((SIZE[1], SIZE[0], 3), 96, np.uint8)
    for i in range(before + gap + after):
        # the face drifts 3 px a frame and wraps at the right edge: restart its drift so it never jumps
        writer.write(empty if before <= i < before + gap else clip_frame(i % (before + gap), SIZE))
    writer.release()
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    return {
        "one": write_clip(root / "one.avi", frames=45, fps=30, size=SIZE),
        "two": write_gap_clip(root / "two.avi"),
    }


def analyse(analyzer, path: Path, out: Path, **options):
    runner = VideoAnalysis(analyzer, DetectorSettings(), TrackingSettings(), threading.Event())
    return runner.run(Input("video", str(path)), VideoOptions(out_dir=out, **options), path.stem)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_one_row_per_face_per_frame_and_a_summary_per_track(analyzer, clips, tmp_path):
    result = analyse(analyzer, clips["two"], tmp_path)
    assert result.problem is None and result.frames == 105 and result.expected_frames == 105
    rows = read_csv(tmp_path / "two.frames.csv")
    assert list(rows[0]) == list(columns())
    frames = [int(r["frame"]) for r in rows]
    assert frames == sorted(frames) and len(set(frames)) == len(frames)  # one face: one row per frame
    assert set(frames) == set(range(30)) | set(range(75, 105))  # nothing in the empty stretch
    jsonl = [json.loads(line) for line in (tmp_path / "two.frames.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in jsonl] == frames
    assert jsonl[0]["smoothed_emotion"] is None and jsonl[0]["track_id"] == 0  # not confirmed yet
    tracked = [r for r in jsonl if r["track_id"]]
    assert {r["track_id"] for r in tracked} == {1, 2}
    assert all(r["smoothed_emotion"] == "happy" and r["claim"] is True and 0 < r["quality"] <= 1 for r in tracked)
    assert all(abs(sum(r[e] for e in EMOTIONS) - 1) < 0.01 for r in jsonl)
    assert all(abs(r["time_s"] - r["frame"] / 30) < 1e-3 for r in jsonl)
    summary = read_csv(tmp_path / "two.tracks.csv")
    assert [s["track_id"] for s in summary] == ["1", "2"]
    first, second = summary
    assert first["dominant_emotion"] == "happy" and float(first["share_happy"]) == 1.0
    assert float(first["first_s"]) == 0.0 and abs(float(first["last_s"]) - 29 / 30) < 1e-3
    assert abs(float(second["first_s"]) - 75 / 30) < 1e-3 and abs(float(second["last_s"]) - 104 / 30) < 1e-3
    assert int(first["faces"]) + int(second["faces"]) == len(tracked)


def test_the_timeline_has_one_band_per_track(analyzer, clips, tmp_path):
    analyse(analyzer, clips["two"], tmp_path, csv=False, jsonl=False)
    assert not (tmp_path / "two.frames.csv").exists()
    image = cv2.imread(str(tmp_path / "two.timeline.png"))
    assert image is not None and image.shape[1] == timeline.WIDTH
    happy = np.all(image == EMOTION_COLORS["happy"], axis=2)
    # Track 1 fills the first ~28% of the time axis, track 2 the last ~28%: two bands, one above the other.
    plot_w = timeline.WIDTH - 110 - 30
    early, late = 110 + int(0.1 * plot_w), 110 + int(0.9 * plot_w)
    assert _runs(happy[:200, early]) == 1 and _runs(happy[:200, late]) == 1
    assert np.argmax(happy[:200, early]) < np.argmax(happy[:200, late])
    assert not happy[:200, 110 + plot_w // 2].any()  # the empty stretch


def _runs(column: np.ndarray) -> int:
    return int(np.count_nonzero(np.diff(column.astype(np.int8)) == 1) + column[0])


def test_annotated_video_has_every_frame(analyzer, clips, tmp_path):
    result = analyse(analyzer, clips["one"], tmp_path, annotate_dir=tmp_path / "ann")
    cap = cv2.VideoCapture(result.files["annotated_avi"])
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    assert len(frames) == 45 and frames[0].shape[:2] == (SIZE[1], SIZE[0])
    assert np.any(frames[10] != clip_frame(10, SIZE), axis=2).sum() > 300  # boxes and labels drawn


def test_a_cut_off_file_keeps_its_rows_and_says_so(analyzer, clips, tmp_path):
    data = clips["one"].read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    result = analyse(analyzer, cut, tmp_path)
    assert result.problem is not None and "cut off or corrupt" in result.problem
    assert f"after {result.frames} of 45 frames" in result.problem and 0 < result.frames < 45
    rows = read_csv(tmp_path / "cut.frames.csv")
    assert [int(r["frame"]) for r in rows] == list(range(result.frames))
    assert cv2.imread(str(tmp_path / "cut.timeline.png")) is not None


def test_a_stop_ends_the_video_with_what_was_done_written(analyzer, clips, tmp_path, monkeypatch):
    from edge_fer.offline import progress

    monkeypatch.setattr(progress, "REDRAW_EVERY", 0.0)  # a line per frame
    stop = threading.Event()
    runner = VideoAnalysis(analyzer, DetectorSettings(), TrackingSettings(), stop)

    class StopAfter:  # stands in for the progress stream: the line of frame 10 stops the run (Ctrl-C)
        def write(self, text):
            if " 10/45 " in text:
                stop.set()

        def flush(self):
            pass

    result = runner.run(Input("video", str(clips["one"])), VideoOptions(tmp_path, progress=StopAfter()), "one")
    assert result.interrupted and result.problem is None and 10 <= result.frames < 45
    assert len(read_csv(tmp_path / "one.frames.csv")) == result.frames
    assert read_csv(tmp_path / "one.tracks.csv")[0]["track_id"] == "1"  # the open track is summarised


def test_max_frames_is_not_an_early_end(analyzer, clips, tmp_path):
    result = analyse(analyzer, clips["one"], tmp_path, max_frames=12)
    assert result.frames == 12 and result.problem is None and not result.interrupted


def test_container_sniffing_and_refusals(clips, tmp_path):
    assert container(clips["one"].read_bytes()[:512]) == "AVI"
    assert container(b"\x00\x00\x00\x18ftypisom" + bytes(8)) == "MP4/QuickTime"
    assert container(b"\x1a\x45\xdf\xa3" + bytes(8)) == "Matroska/WebM"
    assert container(b"\xff\xd8\xff\xe0" + bytes(600)) is None
    assert classify(str(clips["one"])) == [Input("video", str(clips["one"]))]
    assert classify("rtsp://cam.local/stream") == [Input("url", "rtsp://cam.local/stream")]
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="is a FIFO, not a regular file"):
        classify(str(fifo))
    (tmp_path / "zero.mp4").symlink_to("/dev/zero")
    with pytest.raises(InputError, match="is a device, not a regular file"):
        classify(str(tmp_path / "zero.mp4"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="is a directory without images"):
        classify(str(tmp_path / "empty"))


def test_stems_of_streams_carry_no_password():
    assert stem_of(Input("url", "rtsp://user:secret@cam.local:554/live/1?x=1")) == "cam.local-554-live-1"
    assert stem_of(Input("video", "/a/b/clip.mp4")) == "clip"


def test_short_by_tolerates_estimated_counts():
    assert not short_by(None, 5) and not short_by(100, 99) and not short_by(1000, 991)
    assert short_by(100, 50) and short_by(1000, 980)


def test_progress_line_counts_rate_and_time_left():
    now = [0.0]
    lines: list[str] = []

    class Sink:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    bar = Progress(Sink(), "clip.mp4", 300, clock=lambda: now[0])
    now[0] = 2.0
    assert bar.line(100) == "clip.mp4 [######              ] 100/300 frames  50.0 fps  ETA 0:04  (33%)"
    bar.update(100)
    bar.update(101)  # too soon after the last redraw: not drawn
    assert len(lines) == 1 and lines[0].startswith("\rclip.mp4")
    stream = Progress(Sink(), "cam", None, clock=lambda: now[0])
    now[0] = 4.0
    assert stream.line(10) == "cam 10 frames  5.0 fps  0:02 elapsed"


def track_state(track_id: int, label: str):
    from edge_fer.tracking.tracker import TrackState
    from edge_fer.vision.types import Box
    from tests.factories import emotion

    raw = emotion(label, 0.9)
    box = Box(10, 10, 60, 60)
    return TrackState(track_id, box, 0.99, None, raw, label, 0.9, raw.scores, 0.0, 0.0, 1, 0, {label: 0.0})


def test_track_runs_merge_while_the_label_holds():
    log = TrackLog(gap_s=1.0)
    for i, label in enumerate(["happy"] * 5 + ["sad"] * 3):
        log.add(i / 10, TrackUpdate(i / 10, i, present=(track_state(7, label),), face_track_ids=(7,)))
    log.add(3.0, TrackUpdate(3.0, 30, present=(track_state(7, "sad"),), face_track_ids=(7,)))  # after a gap
    assert log.runs[7] == [["happy", 0.0, 0.5], ["sad", 0.5, 0.7], ["sad", 3.0, 3.0]]
    assert log.faces[7] == 9

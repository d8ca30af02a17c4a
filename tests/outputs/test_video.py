"""VideoSink: files that decode after a clean close, SIGTERM and SIGKILL; rotation; disk cap; disk full.

Most tests pin MJPEG (always available); the H.264 ones need PyAV (the ``video`` extra) and are skipped
without it."""

import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edge_fer.capture.frame import Frame
from edge_fer.config.settings import VideoSettings
from edge_fer.outputs.video import MB, VideoSink
from edge_fer.outputs.video_encoders import h264_available
from tests import factories

cv2 = pytest.importorskip("cv2")

REPO = Path(__file__).resolve().parents[2]
FPS = 10.0
T_WALL = 1_796_017_819.0  # 2026-11-30T05:50:19Z


def frames(n, size=(320, 240), camera="cam0", step=1.0 / FPS, start=0):
    """Real frames: the astronaut photo panning, so consecutive frames differ."""
    base = cv2.resize(factories.astronaut_bgr(), size, interpolation=cv2.INTER_AREA)
    for i in range(start, start + n):
        yield Frame(camera, i, 100.0 + i * step, T_WALL + i * step, np.ascontiguousarray(np.roll(base, 4 * i, axis=1)))


def decode(path):
    cap = cv2.VideoCapture(str(path))
    images = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        images.append(image)
    cap.release()
    return images


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


def test_clean_close_decodes_every_frame_with_its_content(tmp_path):
    sink = VideoSink(VideoSettings(path=tmp_path, codec="mjpeg"), FPS)
    written = list(frames(30))
    for frame in written:
        sink.on_frame(frame, frame.image)
    sink.close()
    (path,) = sink.paths
    assert re.fullmatch(r"cam0_20261130-055019_0\.avi", path.name)
    decoded = decode(path)
    assert len(decoded) == 30 and decoded[0].shape == (240, 320, 3)
    assert min(psnr(d, f.image) for d, f in zip(decoded, written)) > 28  # the frames, in order, not noise
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
    assert sink.problem is None


def test_frames_are_placed_at_the_source_rate(tmp_path):
    """Frames processed every other source frame are repeated so the file still plays in real time."""
    sink = VideoSink(VideoSettings(path=tmp_path, codec="mjpeg"), FPS)
    for frame in frames(10, step=2 / FPS):
        sink.on_frame(frame, frame.image)
    for frame in frames(5, step=0.5 / FPS, start=100):  # faster than FPS: every other one is skipped
        sink.on_frame(frame, frame.image)
    sink.close()
    assert len(decode(sink.paths[0])) == 19 + 3  # 10 frames over 1.8 s, then 5 frames over 0.2 s


WRITER = textwrap.dedent(
    """
    import sys
    import cv2, numpy as np
    from edge_fer.capture.frame import Frame
    from edge_fer.config.settings import VideoSettings
    from edge_fer.outputs.video import VideoSink
    from tests.outputs.test_video import frames

    sink = VideoSink(VideoSettings(path=sys.argv[1], codec=sys.argv[2]), 10.0, check_every=5)
    for frame in frames(100_000, size=(640, 480)):
        sink.on_frame(frame, frame.image)
        print(frame.index + 1, flush=True)
    """
)


def start_writer(directory, codec="mjpeg"):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory), codec],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_recording_stays_readable_when_the_writer_is_killed(tmp_path, sig):
    proc = start_writer(tmp_path)
    try:
        for line in proc.stdout:
            if int(line) == 40:
                break
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -sig
    (path,) = list(tmp_path.iterdir())
    decoded = decode(path)
    # 40 frames were handed over before the kill (a few more may have followed); at most one is lost
    assert len(decoded) >= 39, len(decoded)
    assert decoded[0].shape == (480, 640, 3)


def test_segments_rotate_by_time(tmp_path):
    sink = VideoSink(VideoSettings(path=tmp_path, segment_seconds=1.0, max_total_mb=None, codec="mjpeg"), FPS)
    for frame in frames(35):
        sink.on_frame(frame, frame.image)
    sink.close()
    assert [p.name for p in sink.paths] == [f"cam0_20261130-0550{19 + k:02d}_{k}.avi" for k in range(4)]
    assert [len(decode(p)) for p in sink.paths] == [10, 10, 10, 5]


def test_segments_rotate_by_size(tmp_path):
    sink = VideoSink(
        VideoSettings(path=tmp_path, segment_seconds=None, segment_mb=0.25, max_total_mb=None, codec="mjpeg"), FPS
    )
    for frame in frames(40):
        sink.on_frame(frame, frame.image)
    sink.close()
    sizes = [p.stat().st_size for p in sink.paths]
    assert len(sizes) >= 3 and sum(len(decode(p)) for p in sink.paths) == 40
    frame_bytes = max(sizes) / len(decode(sink.paths[0]))
    assert all(size <= 0.25 * MB + 2 * frame_bytes for size in sizes)


def test_total_cap_deletes_the_oldest_segments_first(tmp_path):
    old = tmp_path / "cam0_20200101-000000_0.avi"  # from an earlier run
    old.write_bytes(b"\0" * 200_000)
    os.utime(old, (1e9, 1e9))
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("not ours")
    cfg = VideoSettings(path=tmp_path, segment_seconds=0.5, max_total_mb=0.5, codec="mjpeg")
    sink = VideoSink(cfg, FPS)
    for frame in frames(60):
        sink.on_frame(frame, frame.image)
        on_disk = sum(p.stat().st_size for p in tmp_path.glob("*.avi"))
        assert on_disk <= 0.5 * MB + cfg.segment_bytes  # the cap, plus the segment being written
    sink.close()
    remaining = sorted(p.name for p in tmp_path.glob("*.avi"))
    assert not old.exists() and unrelated.exists()
    assert len(remaining) < len(sink.paths) and remaining == sorted(p.name for p in sink.paths[-len(remaining) :])
    assert all(len(decode(tmp_path / name)) > 0 for name in remaining)


DISK_FULL = textwrap.dedent(
    """
    import logging, resource, signal, sys
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 400_000
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    from edge_fer.outputs.runner import OutputRunner
    from edge_fer.config.settings import VideoSettings
    from edge_fer.outputs.video import VideoSink
    from tests.outputs.test_video import frames

    sink = VideoSink(VideoSettings(path=sys.argv[1], codec=sys.argv[2]), 10.0, check_every=5)
    runner = OutputRunner([sink]).start()
    offered = 0
    for frame in frames(120, size=(640, 480)):
        if runner.wants_frames(frame.camera):  # as the pipeline asks: no annotating for a stopped recording
            offered += 1
            runner.on_frame(frame, frame.image)
        runner.flush(5.0)
    runner.close(5.0)
    (stats,) = runner.stats()
    print(f"alive delivered_all={stats.frames_delivered == offered < 120} errors={stats.errors}", file=sys.stderr)
    print(f"problem={stats.problem}", file=sys.stderr)
    """
)


def test_disk_full_stops_the_sink_with_one_error_and_the_process_goes_on(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", DISK_FULL, str(tmp_path), "mjpeg"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, result.stderr
    assert "stopped growing at 400000 bytes" in errors[0] and "recording stopped" in errors[0]
    assert "alive delivered_all=True errors=0" in result.stderr and "problem=" in result.stderr
    assert "Traceback" not in result.stderr
    (path,) = list(tmp_path.iterdir())
    assert path.stat().st_size == 400_000
    assert 1 <= len(decode(path)) <= 5  # what fitted is still playable


def test_single_file_path_records_one_camera_and_stops_at_its_cap(tmp_path, caplog):
    target = tmp_path / "sub" / "clip.avi"
    sink = VideoSink(VideoSettings(path=target, segment_seconds=1.0, segment_mb=0.5), FPS)
    with caplog.at_level(logging.INFO, logger="edge_fer.sinks.video"):
        for a, b in zip(frames(60), frames(60, camera="door")):
            sink.on_frame(a, a.image)
            sink.on_frame(b, b.image)
    sink.close()
    assert sink.paths == [target] and list(target.parent.iterdir()) == [target]
    n = len(decode(target))
    assert 5 < n < 60  # no time rotation, but the size cap ended it
    assert "size cap" in sink.problem
    assert sum("'door'" in r.getMessage() for r in caplog.records) == 1


def test_resolution_change_starts_a_new_segment(tmp_path):
    sink = VideoSink(VideoSettings(path=tmp_path, codec="mjpeg"), FPS)
    for frame in [*frames(5), *frames(5, size=(160, 120), start=5)]:
        sink.on_frame(frame, frame.image)
    sink.close()
    assert [decode(p)[0].shape for p in sink.paths] == [(240, 320, 3), (120, 160, 3)]


def test_unwritable_directory_is_one_clear_error(tmp_path, caplog):
    # check-config refuses a path under a file; here the directory's place is taken after the check.
    blocker = tmp_path / "videos"
    sink = VideoSink(VideoSettings(path=blocker, codec="mjpeg"), FPS)
    blocker.write_text("x")
    with caplog.at_level(logging.ERROR, logger="edge_fer.sinks.video"):
        for frame in frames(3):
            sink.on_frame(frame, frame.image)
    assert len(caplog.records) == 1 and str(blocker) in caplog.records[0].getMessage()
    assert "cannot create the video directory" in sink.problem


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "out.mkv"}, r"out\.mkv: video output is written as MJPEG \.avi or H\.264 \.mp4"),
        ({"segment_mb": 0}, "segment_mb"),
        ({"quality": 0}, "quality"),
    ],
)
def test_bad_video_config_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VideoSettings(**({"path": "videos"} | kwargs))


needs_pyav = pytest.mark.skipif(not h264_available(), reason="needs PyAV with libx264: pip install -e '.[video]'")


@needs_pyav
def test_h264_segments_decode_every_frame_with_its_content(tmp_path):
    sink = VideoSink(VideoSettings(path=tmp_path, codec="h264"), FPS)
    written = list(frames(30))
    for frame in written:
        sink.on_frame(frame, frame.image)
    sink.close()
    (path,) = sink.paths
    assert re.fullmatch(r"cam0_20261130-055019_0\.mp4", path.name)
    decoded = decode(path)
    assert len(decoded) == 30 and min(psnr(d, f.image) for d, f in zip(decoded, written)) > 28


@needs_pyav
def test_h264_plays_to_its_last_complete_fragment_after_sigkill(tmp_path):
    proc = start_writer(tmp_path, "h264")
    try:
        for line in proc.stdout:
            if int(line) == 45:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    (path,) = list(tmp_path.iterdir())
    assert path.suffix == ".mp4"
    decoded = decode(path)
    # One fragment per second (10 frames here); the encoder's look-ahead holds some frames back: what was
    # written before the kill plays, up to the last whole fragment.
    assert len(decoded) >= 20 and len(decoded) % 10 == 0, len(decoded)
    assert decoded[0].shape == (480, 640, 3)


def test_the_cap_holds_with_three_cameras_counting_open_segments(tmp_path):
    cfg = VideoSettings(path=tmp_path, segment_seconds=None, max_total_mb=0.5, codec="mjpeg")
    sink = VideoSink(cfg, {"a": FPS, "b": FPS, "c": FPS}, check_every=1)
    frame_bytes = 0
    for a, b, c in zip(frames(80, camera="a"), frames(80, camera="b"), frames(80, camera="c")):
        for frame in (a, b, c):
            sink.on_frame(frame, frame.image)
        frame_bytes = max(frame_bytes, max(s.last_frame_bytes for s in sink._segments.values()))
        on_disk = sum(p.stat().st_size for p in tmp_path.iterdir())
        assert on_disk <= 0.5 * MB + 3 * frame_bytes, on_disk  # the cap, give or take one frame per camera
    sink.close()
    assert len(sink.paths) > 6 and sink.problem is None  # segments rotated to stay within their shares
    assert all(len(decode(p)) > 0 for p in tmp_path.iterdir())


def test_a_single_file_stops_at_the_total_cap(tmp_path):
    target = tmp_path / "one.avi"
    sink = VideoSink(VideoSettings(path=target, max_total_mb=0.3, codec="mjpeg"), FPS)
    for frame in frames(200):
        sink.on_frame(frame, frame.image)
    sink.close()
    assert "size cap of 0.3 MB" in sink.problem
    assert 0.3 * MB <= target.stat().st_size <= 0.3 * MB + 100_000
    assert 5 < len(decode(target)) < 200


def test_a_batch_source_has_every_frame_written(tmp_path):
    """Frames read faster than real time (a file with realtime: false) all go into the file, in order."""
    sink = VideoSink(VideoSettings(path=tmp_path, codec="mjpeg"), FPS, batch={"cam0": True})
    written = list(frames(40, step=0.1 / FPS))  # ten times real time
    for frame in written:
        sink.on_frame(frame, frame.image)
    sink.close()
    decoded = decode(sink.paths[0])
    assert len(decoded) == 40 and min(psnr(d, f.image) for d, f in zip(decoded, written)) > 28


def test_codec_choice(tmp_path, monkeypatch):
    from edge_fer.outputs import video_encoders

    assert VideoSink(VideoSettings(path=tmp_path / "x.avi"), FPS)._writer.suffix == ".avi"  # the suffix decides
    monkeypatch.setattr(video_encoders, "h264_available", lambda: False)
    assert VideoSink(VideoSettings(path=tmp_path), FPS)._writer.suffix == ".avi"  # auto falls back to MJPEG
    with pytest.raises(video_encoders.EncoderError, match=r"pip install 'edge-fer\[video\]'"):
        VideoSink(VideoSettings(path=tmp_path, codec="h264"), FPS)
    with pytest.raises(video_encoders.EncoderError, match="PyAV"):
        VideoSink(VideoSettings(path=tmp_path / "x.mp4"), FPS)
    assert video_encoders.crf_for(75) == 28 and video_encoders.crf_for(100) == 18 and video_encoders.crf_for(1) == 51


@needs_pyav
def test_h264_recording_stays_playable_after_the_disk_fills(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", DISK_FULL, str(tmp_path), "h264", "150000"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "recording stopped" in errors[0], result.stderr
    assert "alive delivered_all=True errors=0" in result.stderr and "Traceback" not in result.stderr
    (path,) = list(tmp_path.iterdir())
    assert path.stat().st_size <= 150_000
    assert len(decode(path)) >= 10  # every whole fragment that fitted plays

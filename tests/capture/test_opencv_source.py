import socket
import time

import numpy as np
import pytest

from edge_fer.capture.opencv_source import CameraSource, FileSource, UrlSource, mask_url
from edge_fer.capture.source import SourceError
from tests.clips import frame_number, write_clip
from tests.clock import FakeClock


def read_all(source, limit=1000):
    images = []
    while len(images) < limit and (image := source.read()) is not None:
        images.append(image)
    return images


def test_missing_camera_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match=r"camera /dev/video93: device not found; is it plugged in"):
        CameraSource("/dev/video93").open()
    with pytest.raises(SourceError, match=r"camera 93: device not found"):
        CameraSource(93).open()


def test_camera_follows_symlinks_and_refuses_non_devices(tmp_path):
    dangling = tmp_path / "usb-cam-index0"
    dangling.symlink_to(tmp_path / "video42")
    with pytest.raises(SourceError, match="device not found"):
        CameraSource(str(dangling)).open()
    not_a_camera = tmp_path / "video7"
    not_a_camera.write_bytes(b"")
    link = tmp_path / "by-id-cam"
    link.symlink_to(not_a_camera)
    with pytest.raises(SourceError, match=rf"cannot open {not_a_camera} with V4L2"):
        CameraSource(str(link), width=640, height=480, fourcc="MJPG").open()


def test_camera_rejects_a_bad_fourcc():
    with pytest.raises(ValueError, match="four characters"):
        CameraSource(0, fourcc="MJPEG")


def test_file_reads_every_frame_in_order_then_ends(tmp_path):
    path = write_clip(tmp_path / "clip.avi", frames=25, fps=25)
    source = FileSource(path, realtime=False, fps=5)  # the file's own rate wins over the fallback
    source.open()
    assert not source.is_live and not source.paced
    assert source.fps == pytest.approx(25) and source.frame_count == 25
    images = read_all(source)
    assert [frame_number(i) for i in images] == list(range(25))
    assert images[0].shape == (240, 320, 3) and images[0].dtype == np.uint8
    assert source.read() is None
    source.close()
    source.close()


def test_file_loop_starts_over(tmp_path):
    path = write_clip(tmp_path / "clip.mp4", frames=10)
    source = FileSource(path, realtime=False, loop=True)
    source.open()
    numbers = [frame_number(source.read()) for _ in range(25)]
    assert numbers == list(range(10)) * 2 + list(range(5))


def test_realtime_file_is_paced_at_its_own_rate(tmp_path):
    path = write_clip(tmp_path / "clip.avi", frames=20, fps=40)
    clock = FakeClock(auto=True)
    source = FileSource(path, clock=clock)
    source.open()
    assert source.paced
    t0 = clock.monotonic()
    assert len(read_all(source)) == 20
    assert clock.monotonic() - t0 == pytest.approx(19 * 0.025)  # 19 periods of 25 ms after the first frame
    assert clock.slept == pytest.approx([0.025] * 19)


def test_missing_and_undecodable_files_fail_permanently(tmp_path):
    with pytest.raises(SourceError, match=r"video file .*nope.mp4: not found") as missing:
        FileSource(tmp_path / "nope.mp4").open()
    assert missing.value.permanent
    junk = tmp_path / "junk.mp4"
    junk.write_text("this is not a video\n")
    with pytest.raises(SourceError, match=r"junk.mp4: FFmpeg cannot decode it") as undecodable:
        FileSource(junk).open()
    assert undecodable.value.permanent


def test_url_reads_an_http_mjpeg_stream_and_reports_its_end(mjpeg_server):
    mjpeg_server.frames = 12
    source = UrlSource(mjpeg_server.url, open_timeout=5, read_timeout=5)
    source.open()
    assert source.is_live
    numbers = [frame_number(source.read()) for _ in range(12)]
    assert numbers == list(range(12))
    with pytest.raises(SourceError, match=r"stream http://127\.0\.0\.1:\d+/stream.mjpg: stream ended"):
        source.read()
    source.close()


def test_url_read_timeout_ends_a_silent_stream(mjpeg_server):
    mjpeg_server.frames, mjpeg_server.stall = 3, True
    source = UrlSource(mjpeg_server.url, open_timeout=5, read_timeout=0.5)
    source.open()
    for _ in range(3):
        source.read()
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=r"sent nothing for 0\.5 s"):
        source.read()
    assert time.monotonic() - t0 < 3


def test_url_open_fails_fast_on_refused_and_within_timeout_on_silent_hosts():
    with pytest.raises(SourceError, match="cannot open"):
        UrlSource("http://127.0.0.1:9/none.mjpg", open_timeout=2).open()
    with socket.socket() as silent:  # accepts TCP connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        t0 = time.monotonic()
        with pytest.raises(SourceError, match=r"no answer within 0\.5 s"):
            UrlSource(f"http://127.0.0.1:{silent.getsockname()[1]}/x", open_timeout=0.5).open()
        assert time.monotonic() - t0 < 3


def test_url_passwords_never_reach_logs():
    assert mask_url("rtsp://admin:s3cret@10.0.0.5:554/stream1") == "rtsp://admin:***@10.0.0.5:554/stream1"
    assert mask_url("http://cam.local/mjpg") == "http://cam.local/mjpg"
    assert "s3cret" not in UrlSource("rtsp://admin:s3cret@cam/live").describe()

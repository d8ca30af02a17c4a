import pytest

from edge_fer.capture import CameraSource, DemoSource, FileSource, SourceError, UrlSource, open_source
from tests.clips import write_clip


def test_demo_with_defaults_and_options():
    demo = open_source("demo")
    assert isinstance(demo, DemoSource) and (demo.width, demo.height, demo.fps, demo.faces) == (640, 480, 30, 1)
    big = open_source("DEMO", width=1280, height=720, fps=15, faces=4, realtime=False)
    assert (big.width, big.height, big.fps, big.faces, big.paced) == (1280, 720, 15, 4, False)


@pytest.mark.parametrize("spec, device", [(0, 0), ("2", 2), (" 1 ", 1), ("/dev/video0", "/dev/video0")])
def test_cameras_by_index_or_path(spec, device):
    source = open_source(spec, width=640, height=480, fps=30, fourcc="MJPG", loop=True)
    assert isinstance(source, CameraSource) and source.device == device
    assert (source.width, source.height, source.requested_fps, source.fourcc) == (640, 480, 30, "MJPG")


def test_by_id_paths_are_cameras():
    source = open_source("/dev/v4l/by-id/usb-Logitech_C920-video-index0")
    assert isinstance(source, CameraSource) and source.describe().endswith("usb-Logitech_C920-video-index0")


@pytest.mark.parametrize(
    "url", ["rtsp://user:pw@10.0.0.2:554/h264", "http://cam.local/video.mjpg", "https://x/y.m3u8", "rtsps://h/s"]
)
def test_urls_are_streams(url):
    source = open_source(url, open_timeout=3, read_timeout=4)
    assert isinstance(source, UrlSource) and (source.open_timeout, source.read_timeout) == (3, 4)
    assert source.is_live and "pw@" not in source.describe()


def test_files_by_path_or_file_url(tmp_path):
    path = write_clip(tmp_path / "clip.avi", frames=3)
    source = open_source(str(path), realtime=False, loop=True)
    assert isinstance(source, FileSource) and (source.realtime, source.loop) == (False, True)
    assert isinstance(open_source(f"file://{path}"), FileSource)


@pytest.mark.parametrize(
    "spec, match",
    [
        ("", "empty"),
        (-1, "must be 0 or more"),
        (True, "expected demo"),
        ("ftp://host/x.mp4", "unsupported URL scheme 'ftp'"),
        ("/tmp/edge-fer-no-such-clip.mp4", r"'/tmp/edge-fer-no-such-clip.mp4': no such video file"),
        ("file:///tmp/edge-fer-missing.avi", "no such video file"),
    ],
)
def test_bad_specs_are_one_clear_line(spec, match):
    with pytest.raises(SourceError, match=match) as info:
        open_source(spec)
    assert "\n" not in str(info.value)


def test_a_directory_is_not_a_video(tmp_path):
    with pytest.raises(SourceError, match="is a directory"):
        open_source(str(tmp_path))

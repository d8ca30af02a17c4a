"""The disk fills up under a recording daemon: the video writer stops with one error line, and inference and
events go on to a clean exit. The limit is real: the daemon runs under RLIMIT_FSIZE, so its writes fail with
EFBIG exactly as they would with ENOSPC, without filling the test machine's disk."""

from __future__ import annotations

import json
import resource
import signal

import pytest

from tests.reliability.harness import DaemonProcess

LIMIT = 400_000  # bytes: a handful of 640x480 MJPEG frames


def limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


@pytest.mark.slow
def test_disk_full_stops_only_the_recording(tmp_path):
    out_dir = tmp_path / "video"
    args = ["--source", "demo", "--output", str(out_dir), "--max-frames", "150"]
    with DaemonProcess(*args, "--config", str(_every_frame(tmp_path)), preexec_fn=limit_file_size) as daemon:
        rc = daemon.wait(120)
    assert rc == 0, daemon.stderr
    errors = [line for line in daemon.err if " ERROR " in line.text]
    assert len(errors) == 1, daemon.stderr
    (error,) = errors
    assert "video:" in error.text and "recording stopped, inference and events continue" in error.text
    assert "Traceback" not in daemon.stderr
    events = daemon.event_lines()
    after = [line for line in events if line.t > error.t]
    assert len(after) >= 20, f"only {len(after)} events after the writer stopped"
    seqs = [json.loads(line.text)["seq"] for line in events]
    assert seqs == list(range(len(events)))
    (segment,) = out_dir.glob("*.avi")
    assert 0 < segment.stat().st_size <= LIMIT


def _every_frame(tmp_path):
    path = tmp_path / "edge-fer.yaml"
    path.write_text("events:\n  mode: every_frame\noutput:\n  video:\n    codec: mjpeg\n")  # H.264: test_video.py
    return path

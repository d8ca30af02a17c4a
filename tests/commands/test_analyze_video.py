"""``edge-fer analyze`` on videos as a user runs it: the table agrees with the daemon's every_frame events on
the same file, Ctrl-C keeps what was done, bad inputs end in one line, the progress bar only when wanted."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import pytest

from edge_fer.cli import main
from tests.clips import clip_frame, write_clip
from tests.processes import edge_fer
from tests.wait import wait_until

SIZE = (640, 480)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clip") / "walk.avi", frames=60, fps=30, size=SIZE)


def test_the_table_agrees_with_the_daemons_every_frame_events(clip, tmp_path, capsys):
    assert main(["analyze", "--out", str(tmp_path), "--table", "jsonl", str(clip)]) == 0
    capsys.readouterr()
    rows = [json.loads(line) for line in (tmp_path / "walk.frames.jsonl").read_text().splitlines()]
    daemon = edge_fer(
        "run", "--source", str(clip), "--log-level", "warning",
        "--set", "cameras[0].realtime=false", "--set", "events.mode=every_frame",
    )  # fmt: skip
    out, err = daemon.communicate(timeout=120)
    assert daemon.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(rows) == len(events) == 60

    def key(record, box):
        return (record["frame"], record["track_id"], box, record["emotion"], record["claim"])

    assert [key(r, [r["x"], r["y"], r["w"], r["h"]]) for r in rows] == [key(e, e["box"]) for e in events]
    assert [r["confidence"] for r in rows] == [e["confidence"] for e in events]
    assert [r["quality"] for r in rows] == [e.get("quality") for e in events]


def test_json_summary_and_a_folder_of_images(clip, tmp_path, capsys):
    stills = tmp_path / "stills"
    stills.mkdir()
    for i in (0, 20):
        cv2.imwrite(str(stills / f"f{i:02d}.png"), clip_frame(i, SIZE))
    (stills / "notes.txt").write_text("not an image")
    assert main(["analyze", "--json", "--out", str(tmp_path / "out"), str(clip), str(stills)]) == 0
    video, *images = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert video["video"] == str(clip) and video["frames"] == 60 and video["complete"] is True
    assert [t["track_id"] for t in video["tracks"]] == [1] and video["tracks"][0]["dominant_emotion"] == "happy"
    assert set(video["files"]) == {"frames_csv", "frames_jsonl", "tracks_csv", "timeline_png"}
    assert all(os.path.getsize(p) > 0 for p in video["files"].values())
    assert [r["image"] for r in images] == [str(stills / "f00.png"), str(stills / "f20.png")]
    assert all(len(r["faces"]) == 1 for r in images)


def test_progress_only_when_asked_or_on_a_terminal(clip, tmp_path):
    shown = subprocess.run(
        [sys.executable, "-m", "edge_fer", "analyze", "--progress", "--out", str(tmp_path), str(clip)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    last = shown.stderr.split("\r")[-1]
    assert "60/60 frames" in last and " fps " in last and "ETA 0:00" in last and "(100%)" in last
    hidden = subprocess.run(
        [sys.executable, "-m", "edge_fer", "analyze", "--out", str(tmp_path), str(clip)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert hidden.returncode == 0 and hidden.stderr == ""  # stderr is a pipe here, not a terminal


def test_ctrl_c_keeps_the_rows_and_exits_130(tmp_path):
    long_clip = write_clip(tmp_path / "long.avi", frames=900, fps=30, size=SIZE)
    proc = edge_fer("analyze", "--out", str(tmp_path / "out"), str(long_clip))
    table = tmp_path / "out" / "long.frames.csv"
    wait_until(lambda: table.exists() and table.read_text().count("\n") > 20, timeout=60)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "edge-fer analyze: interrupted; the results of what was finished are written"
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert 20 < len(rows) < 900 and [int(r["frame"]) for r in rows] == list(range(len(rows)))
    assert cv2.imread(str(tmp_path / "out" / "long.timeline.png")) is not None
    assert "long.avi (640x480, 30 fps)" in out


def test_cut_off_fifo_and_device_inputs_end_in_one_line_each(clip, tmp_path):
    cut = tmp_path / "cut.avi"
    data = clip.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    os.mkfifo(tmp_path / "pipe.mp4")
    (tmp_path / "zero.mp4").symlink_to("/dev/zero")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "edge_fer", "analyze", "--out", str(tmp_path), str(cut), str(tmp_path / "pipe.mp4"),
         str(tmp_path / "zero.mp4")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert time.monotonic() - started < 60
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 4 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"edge-fer analyze: {cut}: decoding stopped after ") and "cut off or corrupt" in lines[0]
    assert "pipe.mp4: is a FIFO, not a regular file" in lines[1]
    assert "zero.mp4: is a device, not a regular file" in lines[2]
    assert lines[3] == "edge-fer analyze: 3 of 3 videos failed"
    rows = (tmp_path / "cut.frames.csv").read_text().splitlines()
    assert len(rows) > 10  # the frames before the cut are in the table


def test_an_http_stream_gives_the_same_table_as_the_file(clip, tmp_path, capsys):
    """An explicit http:// URL: every frame the server sends is analysed (none dropped for freshness), on the
    stream's own timeline, and its end is the end (no reconnect that would play it again)."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(clip.parent))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{clip.name}"
        assert main(["analyze", "--out", str(tmp_path / "url"), "--table", "jsonl", url]) == 0
        assert main(["analyze", "--out", str(tmp_path / "file"), "--table", "jsonl", str(clip)]) == 0
    finally:
        server.shutdown()
    capsys.readouterr()
    (streamed,) = (tmp_path / "url").glob("*.frames.jsonl")
    from_file = (tmp_path / "file" / "walk.frames.jsonl").read_text()
    assert streamed.read_text() == from_file and from_file.count("\n") == 60


def test_a_stream_that_cannot_be_opened_is_one_line_and_leaves_no_files(tmp_path, capsys):
    from tests.mosquitto import free_port

    url = f"http://127.0.0.1:{free_port()}/nothing.mp4"  # nobody listens there
    assert main(["analyze", "--out", str(tmp_path), url]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"edge-fer analyze: stream {url}: cannot open") and len(err) == 2
    assert list(tmp_path.iterdir()) == []

"""The daemon's contract: building it starts nothing, ``close`` releases a daemon that never ran, and a run feeds
every output through the one runner, so ``/stats.json`` shows MQTT's real state."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request

import pytest

from edge_fer.config.loading import parse_config
from edge_fer.outputs.window import opencv_has_windows
from edge_fer.runtime.daemon import Daemon
from tests.mosquitto import free_port
from tests.processes import ROOT, edge_fer


class QuietNotifier:
    """No systemd here: what the daemon would tell it, kept."""

    def __init__(self) -> None:
        self.statuses: list[str] = []

    def ready(self, text: str) -> None:
        pass

    def maybe_watchdog(self) -> None:
        pass

    def status(self, text: str) -> None:
        self.statuses.append(text)

    def stopping(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def config_with_every_output(tmp_path, http_port: int, mqtt_port: int, **extra):
    return parse_config(
        {
            "cameras": [{"source": "demo", "realtime": False, "width": 320, "height": 240}],
            "http": {"enabled": True, "port": http_port},
            "mqtt": {"url": f"mqtt://127.0.0.1:{mqtt_port}", "reconnect_min_delay": 0.1},
            "output": {"stdout": "on", "video": {"path": str(tmp_path / "video")}},
            "stats": {"interval": 0.3},
            **extra,
        }
    )


def can_bind(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_building_starts_nothing_and_close_releases_a_daemon_that_never_ran(tmp_path):
    http_port = free_port()
    before = set(threading.enumerate())
    daemon = Daemon(config_with_every_output(tmp_path, http_port, free_port()), notifier=QuietNotifier())
    assert set(threading.enumerate()) == before, "no thread started"
    assert can_bind(http_port), "no socket bound"
    assert [o.name for o in daemon.outputs.outputs] == ["mqtt", "stdout", "http", "video"]  # MQTT stores first
    assert daemon.pipeline.cameras[0].capture.is_alive() is False
    t0 = time.monotonic()
    daemon.close()
    assert time.monotonic() - t0 < 1.0
    assert set(threading.enumerate()) == before and not (tmp_path / "video").exists()


@pytest.mark.slow
def test_a_run_shows_the_mqtt_section_in_stats_json_and_stops_cleanly(tmp_path, capsys):
    http_port, mqtt_port = free_port(), free_port()  # no broker listens there: MQTT's state says so
    stop = threading.Event()
    config = config_with_every_output(tmp_path, http_port, mqtt_port)
    config = config.model_copy(update={"cameras": [config.cameras[0].model_copy(update={"loop": True})]})
    daemon = Daemon(config, stop=stop, notifier=QuietNotifier())
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(daemon.run()), name="test-daemon", daemon=True)
    worker.start()
    try:
        stats = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/stats.json", timeout=2) as reply:
                    stats = json.loads(reply.read())["pipeline"]
            except OSError:
                stats = None
            if stats and stats.get("mqtt") and stats["cameras"]["cam0"]["processed"] > 0:
                break
            time.sleep(0.2)
        assert stats is not None and stats["mqtt"] is not None, stats
        assert stats["mqtt"]["connected"] is False and stats["mqtt"]["connect_failures"] >= 1
        assert set(stats["sinks"]) == {"stdout", "mqtt", "http", "video"}
    finally:
        stop.set()
        worker.join(15)
    assert result == [0]
    left = {t.name for t in threading.enumerate()} & {"http-serve", "output-mqtt", "output-http", "output-video"}
    assert not left, "every output thread and the server ended"
    assert any(p.suffix in (".avi", ".mp4") for p in (tmp_path / "video").iterdir()), "the video output got frames"
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert events and events[0]["type"] == "start" and events[-1]["type"] == "end"


def test_stdout_as_the_only_output_stops_cleanly_when_its_reader_leaves(tmp_path):
    """`edge-fer | head -n 1`, for real: the daemon ends with exit 0 and one info line, like a Unix filter."""
    import subprocess
    import sys

    config = tmp_path / "edge-fer.yaml"
    config.write_text("cameras: [{name: cam0, source: demo}]\nevents: {mode: every_frame}\n")
    command = f'{sys.executable} -m edge_fer --config {config} | head -n 1; echo "status=${{PIPESTATUS[0]}}" >&2'
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert len(result.stdout.splitlines()) == 1 and '"seq":0' in result.stdout
    assert "status=0" in result.stderr, result.stderr[-2000:]
    assert "it was the only output, so edge-fer stops" in result.stderr
    assert " WARNING " not in result.stderr and " ERROR " not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("path", ["/proc/edge-fer-nope/out.avi", "/sys/edge-fer.avi"])
def test_an_output_path_that_cannot_be_created_is_one_line_and_exit_78(path):
    """Paths that os.access lets root "write" (a read-only /sys, /proc): the start probes for real."""
    proc = edge_fer("--source", "demo", "--output", path, "--max-frames", "5")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 78, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "output.video.path (--output): cannot write to" in lines[0], lines
    assert out == ""


@pytest.mark.skipif(
    opencv_has_windows(), reason="the GUI build of OpenCV is installed: the next test covers its display check"
)
def test_preview_with_the_headless_opencv_names_the_swap_in_one_line_and_exit_2():
    """The default install has no window backend at all; a display being set must not hide that."""
    proc = edge_fer("--source", "demo", "--preview", "--max-frames", "1", env={"DISPLAY": ":0"})
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "headless build" in lines[0] and "pip install 'opencv-python>=4.8'" in lines[0] and "http" in lines[0]


@pytest.mark.skipif(not opencv_has_windows(), reason="OpenCV's headless build (the default) opens no window at all")
def test_preview_on_a_display_nobody_serves_is_one_line_and_exit_2_not_a_qt_abort():
    """DISPLAY set, no X server behind it: Qt would abort the process (134) inside cv2.namedWindow."""
    import os

    number = next(n for n in range(917, 999) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))
    proc = edge_fer("--source", "demo", "--preview", "--max-frames", "1", env={"DISPLAY": f":{number}"})
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"--preview cannot open a window on display :{number}" in lines[0] and "http" in lines[0]

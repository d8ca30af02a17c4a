"""SIGHUP against a real daemon: a changed threshold and a new camera applied without ending the running camera's
track, without an MQTT reconnect and without a seq gap; a broken config refused with its problem while the
daemon runs on; a storm of 100 SIGHUPs taken as one reload."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import yaml

from tests.mosquitto import Subscriber
from tests.reliability.harness import DaemonProcess
from tests.wait import wait_until

pytestmark = pytest.mark.slow


def write(path: Path, **sections) -> Path:
    path.write_text(yaml.safe_dump({"device": "reldev", "output": {"stdout": "on"}, **sections}))
    return path


def after(daemon: DaemonProcess, t: float) -> list[dict]:
    return [json.loads(line.text) for line in daemon.event_lines() if line.t > t]


def test_sighup_applies_a_new_threshold_and_camera_and_refuses_a_broken_config(broker, tmp_path):
    mqtt = {"url": broker.url}
    path = write(tmp_path / "edge-fer.yaml", cameras=[{"name": "cam0", "source": "demo"}], mqtt=mqtt)
    sub = Subscriber(broker.port, ["edge-fer/reldev/+/face"]).start()
    try:
        with DaemonProcess("--config", str(path)) as daemon:
            first = next(e for e in daemon.wait_events(1, timeout=60) if e["type"] == "start")
            write(
                path,
                cameras=[{"name": "cam0", "source": "demo"}, {"name": "cam1", "source": "demo"}],
                detector={"min_score": 0.95},
                mqtt=mqtt,
            )
            daemon.signal(signal.SIGHUP)
            applied = daemon.wait_stderr("reload: applied:", timeout=60)
            assert "detector.min_score" in applied.text and "camera cam1 added" in applied.text
            wait_until(lambda: any(e["camera"] == "cam1" for e in after(daemon, applied.t)), 60, what="cam1 events")
            wait_until(
                lambda: any(
                    e["camera"] == "cam0" and e["track_id"] == first["track_id"] for e in after(daemon, applied.t)
                ),
                30,
                what="cam0's track going on after the reload",
            )

            path.write_text(path.read_text().replace("min_score: 0.95", "min_score: 0.95\n  no_such_key: 1"))
            daemon.signal(signal.SIGHUP)
            refused = daemon.wait_stderr("reload refused", timeout=30)
            problem = daemon.wait_stderr("no_such_key").text
            assert "unknown key" in problem
            wait_until(lambda: len(after(daemon, refused.t)) >= 5, 30, what="events after the refusal")

            storm_at = daemon.err[-1].t
            for _ in range(100):
                os.kill(daemon.pid, signal.SIGHUP)
            wait_until(lambda: len(after(daemon, storm_at)) >= 10, 30, what="events after the storm")
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(30) == 0, daemon.stderr[-3000:]
        printed = daemon.events()
        reads = [line for line in daemon.err if "reading the config again" in line.text and line.t > storm_at]
        assert 1 <= len(reads) <= 3, f"{len(reads)} reloads for a storm of 100 SIGHUPs"
        stderr = daemon.stderr
        assert stderr.count("MQTT: connected to") == 1, "the MQTT session was kept"
        assert "Traceback" not in stderr
        # Track ids are never reused: cam0's first track seen after the reload means the reload did not end it.
        ends = [e for e in printed if e["type"] == "end" and e["camera"] == "cam0"]
        assert [e["track_id"] for e in ends].count(first["track_id"]) <= 1
        for camera in ("cam0", "cam1"):
            seqs = [e["seq"] for e in printed if e["camera"] == camera]
            assert seqs == list(range(len(seqs))), f"{camera}: gapless seq on stdout"
            topic = f"edge-fer/reldev/{camera}/face"
            sub.wait_count(topic, len(seqs), 30)
            got = sorted({json.loads(m.payload)["seq"] for m in sub.on(topic)})
            assert got == seqs, f"{camera}: every seq over MQTT"
    finally:
        sub.stop()


def test_a_model_that_does_not_load_refuses_the_whole_reload(tmp_path):
    """classifier.models naming a corrupt file: nothing changes, not even the camera added in the same edit."""
    path = write(tmp_path / "edge-fer.yaml", cameras=[{"name": "cam0", "source": "demo"}])
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not an onnx model")
    with DaemonProcess("--config", str(path)) as daemon:
        daemon.wait_events(1, timeout=60)
        write(
            path,
            cameras=[{"name": "cam0", "source": "demo"}, {"name": "cam1", "source": "demo"}],
            classifier={"models": [str(bad)]},
        )
        daemon.signal(signal.SIGHUP)
        refused = daemon.wait_stderr("reload refused", timeout=60)
        assert "do not load" in daemon.stderr and "not a usable ONNX model" in daemon.stderr
        wait_until(lambda: len(after(daemon, refused.t)) >= 3, 30, what="events after the refusal")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.stderr[-3000:]
    events = daemon.events()
    assert {e["camera"] for e in events} == {"cam0"}
    assert {e["model"]["sha256"] for e in events} == {events[0]["model"]["sha256"]}

"""Snapshot publishing end to end: the real daemon on the demo source, a real Mosquitto, a real subscriber.

Nothing is published on the snapshot topic unless ``output.snapshots.publish`` is on; with it on, the JPEGs that
arrive decode, Home Assistant gets a camera entity for the snapshot topic, and a snapshot over
``publish_max_kb`` is not published but counted in the stats and logged."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edge_fer import exitcodes
from tests.processes import edge_fer

pytestmark = pytest.mark.slow

DEVICE = "box"
SNAPSHOTS = f"edge-fer/{DEVICE}/+/snapshot"
FACES = f"edge-fer/{DEVICE}/+/face"
STATS = f"edge-fer/{DEVICE}/stats"
DISCOVERY = "homeassistant/camera/+/config"


def run_demo(broker, tmp_path, *settings: str, frames: int = 60) -> tuple[int, str]:
    """The daemon on the demo, as fast as it goes, publishing to ``broker``; its exit status and stderr."""
    args = ["--source", "demo", "--max-frames", str(frames), "--log-level", "warning", "--mqtt", broker.url]
    for s in (f"device={DEVICE}", "cameras[0].realtime=false", "stats.interval=0.5", *settings):
        args += ["--set", s]
    proc = edge_fer(*args, env={"STATE_DIRECTORY": str(tmp_path / "state")})
    _, err = proc.communicate(timeout=180)
    return proc.returncode, err


def test_nothing_is_published_on_the_snapshot_topic_unless_publish_is_on(broker, subscribe, tmp_path):
    sub = subscribe(broker.port, [SNAPSHOTS, FACES, DISCOVERY])
    code, err = run_demo(broker, tmp_path, "output.snapshots.enabled=true", "mqtt.discovery=true")
    assert code == exitcodes.OK, err
    sub.wait_for(lambda ms: any(m.topic.endswith("/face") for m in ms))  # the run did publish
    assert not [m for m in sub.messages if m.topic.endswith("/snapshot") or "/camera/" in m.topic]
    assert list((tmp_path / "state" / "snapshots").glob("*.jpg"))  # saving alone still works


def test_published_snapshots_are_jpegs_that_decode_and_home_assistant_gets_a_camera(broker, subscribe, tmp_path):
    sub = subscribe(broker.port, [SNAPSHOTS, DISCOVERY, STATS])
    code, err = run_demo(
        broker, tmp_path, "output.snapshots.enabled=true", "output.snapshots.publish=true",
        "output.snapshots.save=false", "mqtt.discovery=true",
    )  # fmt: skip
    assert code == exitcodes.OK, err
    shots = sub.wait_count(f"edge-fer/{DEVICE}/cam0/snapshot", 2, timeout=20)  # the start, and the peak at the end
    for m in shots:
        assert not m.retain and m.payload[:2] == b"\xff\xd8"
        image = cv2.imdecode(np.frombuffer(m.payload, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and min(image.shape[:2]) >= 90 and image.std() > 20
    (config,) = [json.loads(m.payload) for m in sub.messages if m.topic.startswith("homeassistant/camera/")]
    assert config["topic"] == f"edge-fer/{DEVICE}/cam0/snapshot"
    assert config["availability_topic"] == f"edge-fer/{DEVICE}/availability"
    assert not (tmp_path / "state" / "snapshots").exists()  # save: false
    stats = [m for m in sub.wait_for(lambda ms: any(m.topic == STATS for m in ms)) if m.topic == STATS]
    last = json.loads(stats[-1].payload)  # snapshots may arrive after the last stats message
    stats = [json.loads(m.payload)["mqtt"]["snapshots"] for m in sub.messages if m.topic == STATS]
    assert stats[-1]["too_large"] == 0 and stats[-1]["dropped"] == 0, last


def test_an_oversize_snapshot_is_not_published_and_is_counted(broker, subscribe, tmp_path):
    sub = subscribe(broker.port, [SNAPSHOTS, STATS])
    code, err = run_demo(
        broker, tmp_path, "output.snapshots.enabled=true", "output.snapshots.publish=true",
        "output.snapshots.publish_max_kb=1", "output.snapshots.quality=100", frames=90,
    )  # fmt: skip
    assert code == exitcodes.OK, err
    assert "over output.snapshots.publish_max_kb (1 KB): not published" in err
    stats = [json.loads(m.payload)["mqtt"]["snapshots"] for m in sub.messages if m.topic == STATS]
    assert stats and max(s["too_large"] for s in stats) >= 1, stats
    assert not [m for m in sub.messages if m.topic.endswith("/snapshot")]
    assert len(list((tmp_path / "state" / "snapshots").glob("*.jpg"))) >= 1  # the files are not capped by it


def test_publish_without_a_broker_is_a_config_error(tmp_path):
    proc = edge_fer("--source", "demo", "--max-frames", "1", "--set", "output.snapshots.enabled=true",
                    "--set", "output.snapshots.publish=true", env={"STATE_DIRECTORY": str(tmp_path)})  # fmt: skip
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == exitcodes.CONFIG
    assert "output.snapshots.publish is on but no MQTT broker is set" in err

"""Event snapshots: off unless enabled; a start picture and a peak picture per track, cropped with context
from the frames; the disk cap; and the real daemon on the demo writing them."""

from __future__ import annotations

import dataclasses
import os

import cv2
import pytest

from edge_fer.capture.frame import Frame
from edge_fer.config.settings import SnapshotSettings
from edge_fer.events import FaceEvent, ModelInfo, iso_utc_ms
from edge_fer.outputs.snapshots import SnapshotSink
from edge_fer.vision.types import EMOTIONS, Box
from tests import factories
from tests.processes import edge_fer

BOX = Box(180.0, 65.0, 85.0, 107.0)  # the astronaut's face in the 512x512 portrait
T_WALL = 1_796_017_819.0  # 2026-11-30T05:50:19Z


def event(kind: str, track: int, emotion: str = "happy", confidence: float = 0.7, frame: int = 0) -> FaceEvent:
    scores = {label: (confidence if label == emotion else (1 - confidence) / 6) for label in EMOTIONS}
    end = kind == "end"
    return FaceEvent(
        device="box", camera="cam0", run_id="run-1", seq=frame, ts=iso_utc_ms(T_WALL + frame), frame=frame,
        track_id=track, type=kind, box=BOX, det_score=0.99, emotion=emotion, confidence=confidence, scores=scores,
        model=ModelInfo("m", "0123abcd"), duration=1.0 if end else None, dominant_emotion=emotion if end else None,
    )  # fmt: skip


def frame(index: int) -> Frame:
    return Frame("cam0", index, 100.0 + index, T_WALL + index, factories.astronaut_bgr())


def test_off_by_default():
    assert SnapshotSettings().enabled is False


def test_a_start_and_a_peak_picture_per_track(tmp_path):
    sink = SnapshotSink(SnapshotSettings(enabled=True, margin=0.5), tmp_path)
    assert not sink.wants_frames("cam0")
    sink.on_event(event("start", 3, confidence=0.6, frame=0))
    assert sink.wants_frames("cam0") and not sink.wants_frames("door")
    sink.on_frame(frame(0), frame(0).image)  # the start picture, then the peak so far from the next frame
    (start,) = sink.written
    assert start.name == "cam0_20261130-055019_3_start_happy.jpg"
    picture = cv2.imread(str(start))
    height, width = picture.shape[:2]
    assert abs(height - 107 * 2) <= 1 and abs(width - 85 * 2) <= 1  # the face and half its size on each side
    sink.on_frame(frame(1), frame(1).image)
    assert not sink.wants_frames("cam0")
    sink.on_event(event("update", 3, confidence=0.605, frame=2))  # not a new peak: too small a rise
    assert not sink.wants_frames("cam0")
    sink.on_event(event("change", 3, emotion="surprise", confidence=0.9, frame=3))
    assert sink.wants_frames("cam0")
    sink.on_frame(frame(3), frame(3).image)
    assert len(sink.written) == 1  # the peak waits in memory until the track ends
    sink.on_event(event("end", 3, emotion="surprise", confidence=0.9, frame=9))
    assert [p.name for p in sink.written][1] == "cam0_20261130-055022_3_peak_surprise.jpg"
    assert cv2.imread(str(sink.written[1])).shape == picture.shape


def test_a_shrunk_frame_is_cropped_where_the_event_box_in_source_pixels_says(tmp_path):
    """A camera over ``max_frame_pixels``: events carry boxes of the 1024x1024 source, the frame is the 512x512
    image it was shrunk to (scale 2); the picture is the face, not a region twice as far from the corner."""
    sink = SnapshotSink(SnapshotSettings(enabled=True, margin=0.0), tmp_path)
    source_box = Box(BOX.x * 2, BOX.y * 2, BOX.w * 2, BOX.h * 2)
    sink.on_event(dataclasses.replace(event("start", 1), box=source_box))
    shrunk = Frame("cam0", 0, 100.0, T_WALL, factories.astronaut_bgr(), (2.0, 2.0))
    sink.on_frame(shrunk, shrunk.image)
    (start,) = sink.written
    picture = cv2.imread(str(start)).astype(float)
    expected = shrunk.image[65 : 65 + 107, 180 : 180 + 85].astype(float)
    assert picture.shape == expected.shape and abs(picture - expected).mean() < 8  # JPEG's loss, same place


def test_the_oldest_snapshots_go_past_the_cap(tmp_path):
    old = tmp_path / "cam0_20200101-000000_1_start_happy.jpg"
    old.write_bytes(b"\xff\xd8" + bytes(30_000))
    os.utime(old, (1e9, 1e9))
    other = tmp_path / "notes.txt"
    other.write_text("not ours")
    sink = SnapshotSink(SnapshotSettings(enabled=True, max_mb=0.05), tmp_path)
    for track in range(1, 8):
        sink.on_event(event("start", track, frame=track))
        sink.on_frame(frame(track), frame(track).image)
    ours = [p for p in tmp_path.iterdir() if p.suffix == ".jpg"]
    assert not old.exists() and other.exists()
    assert sum(p.stat().st_size for p in ours) <= 0.05 * 1024 * 1024
    assert sink.written[-1] in ours


@pytest.mark.slow
def test_the_daemon_writes_snapshots_only_when_enabled(tmp_path):
    common = ("--source", "demo", "--log-level", "warning", "--max-frames", "90", "--set", "cameras[0].realtime=false")
    state = tmp_path / "state"
    off = edge_fer(*common, env={"STATE_DIRECTORY": str(state)})
    assert off.wait(120) == 0 and not (state / "snapshots").exists()
    on = edge_fer(*common, "--set", "output.snapshots.enabled=true", env={"STATE_DIRECTORY": str(state)})
    _, err = on.communicate(timeout=120)
    assert on.returncode == 0, err
    names = sorted(p.name for p in (state / "snapshots").iterdir())
    assert sorted(n.split("_", 2)[2] for n in names) == ["1_peak_happy.jpg", "1_start_happy.jpg"], names
    for name in names:
        image = cv2.imread(str(state / "snapshots" / name))
        assert image is not None and image.std() > 20 and min(image.shape[:2]) >= 90


def test_settings_refuse_a_switch_that_does_nothing_and_a_share_too_small_for_one_snapshot():
    from pydantic import ValidationError

    assert SnapshotSettings(enabled=True).saving and not SnapshotSettings(enabled=True).publishing
    assert not SnapshotSettings(publish=True).publishing  # `enabled` is the one switch for both ways out
    with pytest.raises(ValidationError, match="save and publish both off"):
        SnapshotSettings(enabled=True, save=False)
    with pytest.raises(ValidationError, match="at least one snapshot of publish_max_kb"):
        SnapshotSettings(publish_max_kb=2048, publish_queue_mb=1)
    with pytest.raises(ValidationError):
        SnapshotSettings(publish_max_kb=16 * 1024 + 1)

"""Gated detection: full scans on schedule, regions in between, and no face lost that a full scan finds."""

from __future__ import annotations

import numpy as np
import pytest

from edge_fer.config.settings import DetectorSettings
from edge_fer.vision.gated import FaceGate, make_gate
from edge_fer.vision.mtcnn import MtcnnDetector
from tests.photos import FaceSpec, make_scene


@pytest.fixture(scope="module")
def detector():
    with MtcnnDetector(DetectorSettings(min_face_size=30)) as d:
        yield d


class Spy:
    """The real detector, counting calls and remembering each call's image size and minimum face."""

    def __init__(self, inner) -> None:
        self.inner, self.config, self.calls = inner, inner.config, []

    def detect_array(self, image, min_face_size=None, chained_pyramid=False):
        self.calls.append((image.shape[:2], min_face_size))
        return self.inner.detect_array(image, min_face_size=min_face_size, chained_pyramid=chained_pyramid)


def moving_scenes(count: int, faces_at=None) -> list[np.ndarray]:
    """Three real faces drifting a few pixels per frame over a real photo background."""
    frames = []
    for i in range(count):
        specs = [
            FaceSpec(150 + 2 * i, 140 + i, 70),
            FaceSpec(450 - 2 * i, 170, 56, flip=True, source="camera"),
            FaceSpec(320, 350 - i, 48, source="lfw:7"),
        ]
        if faces_at is not None:
            specs = faces_at(i, specs)
        frames.append(make_scene(640, 480, specs, background="coffee").bgr)
    return frames


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"full_scan_interval": -1},
        {"full_scan_interval": float("nan")},
        {"motion_threshold": 300},
        {"full_scan_interval": True},
    ],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        DetectorSettings(**kwargs)


def test_region_scans_find_every_face_a_full_scan_finds(detector):
    spy = Spy(detector)
    gate = FaceGate(spy, DetectorSettings(full_scan_interval=0.5))
    frames = moving_scenes(16)
    strong = matched = 0
    for i, frame in enumerate(frames):
        rows = gate.detect_array(frame, i / 30)
        full = detector.detect_array(frame)
        for face in full[full[:, 4] >= 0.9]:
            strong += 1
            matched += any(iou(face, row) >= 0.5 for row in rows)
    assert strong >= 3 * len(frames) - 1
    assert matched == strong
    assert gate.full_scans == 2 and gate.region_scans == 14  # t = 0 and t = 0.5 s (frame 15)
    region_calls = [c for c in spy.calls if c[0] != (480, 640)]
    assert region_calls, "region scans should look at crops, not the frame"
    assert all(h * w < 640 * 480 / 2 for (h, w), _ in region_calls)
    assert all(min_face >= 30 for _, min_face in region_calls)  # never below the configured minimum
    assert any(min_face > 30 for _, min_face in region_calls)  # a known face's size raises the pyramid floor


def test_full_scan_at_least_every_interval_and_after_the_clock_goes_back(detector):
    gate = FaceGate(detector, DetectorSettings(full_scan_interval=0.5, motion_threshold=0))
    frame = moving_scenes(1)[0]
    kinds = []
    for t in (0.0, 0.2, 0.4, 0.5, 0.7, 0.99, 1.0, 0.1, 0.3):
        gate.detect_array(frame, t)
        kinds.append(gate.last_was_full)
    assert kinds == [True, False, False, True, False, False, True, True, False]


def test_a_new_face_is_found_by_motion_at_once_or_by_the_next_full_scan(detector):
    def late_face(i, specs):
        return specs if i >= 3 else specs[:2]

    frames = moving_scenes(12, late_face)
    for threshold, first_seen in ((12.0, 3), (0.0, 9)):  # frame 9: t = 0.3 s, the next full scan
        gate = FaceGate(detector, DetectorSettings(full_scan_interval=0.3, motion_threshold=threshold))
        seen = []
        for i, frame in enumerate(frames):
            rows = gate.detect_array(frame, i / 30)
            seen.append(any(iou(row, [290, 318, 350, 378]) >= 0.3 for row in rows if row[4] >= 0.9))
        assert seen.index(True) == first_seen, (threshold, seen)
        assert all(seen[first_seen:])


def test_no_known_face_and_a_still_picture_cost_no_detection(detector):
    spy = Spy(detector)
    gate = FaceGate(spy, DetectorSettings(full_scan_interval=1.0))
    empty = make_scene(640, 480, [], background="coffee").bgr
    for i in range(10):
        assert gate.detect_array(empty, i / 30).shape == (0, 15)
    assert len(spy.calls) == 1 and gate.full_scans == 1 and gate.region_scans == 9


def test_a_cut_to_another_scene_gets_a_full_scan(detector):
    gate = FaceGate(detector, DetectorSettings(full_scan_interval=5.0))
    before = moving_scenes(1)[0]
    after = make_scene(640, 480, [FaceSpec(500, 300, 90, source="camera")], background="brick").bgr
    gate.detect_array(before, 0.0)
    rows = gate.detect_array(after, 0.033)
    assert gate.last_was_full
    assert len(rows) and iou(rows[0], [455, 255, 545, 345]) >= 0.5


def test_min_face_override_starts_the_pyramid_higher(detector):
    scene = make_scene(640, 480, [FaceSpec(160, 200, 40), FaceSpec(450, 220, 120, source="camera")]).bgr
    plan, raised = detector.pyramid(480, 640), detector.pyramid(480, 640, 80)
    assert plan[0][0] == pytest.approx(12 / 30) and raised[0][0] == pytest.approx(12 / 80)
    assert len(raised) < len(plan)
    big = [r for r in detector.detect_array(scene, min_face_size=80) if r[4] >= 0.9 and r[2] - r[0] > 100]
    assert len(big) == 1 and iou(big[0], [390, 160, 510, 280]) >= 0.5


def test_make_gate_only_for_detectors_that_scan_regions(detector):
    class PlainDetector:
        def detect(self, image):
            return []

    on = DetectorSettings(roi_detection=True, full_scan_interval=0.5)
    assert isinstance(make_gate(detector, on), FaceGate)
    assert make_gate(detector, DetectorSettings(roi_detection=False, full_scan_interval=0.5)) is None
    assert make_gate(detector, DetectorSettings(roi_detection=True, full_scan_interval=0.0)) is None
    assert make_gate(PlainDetector(), on) is None


def test_chained_pyramid_finds_the_same_faces(detector):
    from tests.photos import multi_face_scenes

    for scene in list(multi_face_scenes())[:4]:
        exact = detector.detect_array(scene.bgr)
        chained = detector.detect_array(scene.bgr, chained_pyramid=True)
        for face in exact[exact[:, 4] >= 0.9]:
            assert max(iou(face, row) for row in chained) >= 0.8


def test_grayscale_frames_and_bad_input(detector):
    gate = FaceGate(detector, DetectorSettings(full_scan_interval=0.5))
    gray = moving_scenes(2)[0][:, :, 1]
    full = gate.detect_array(gray, 0.0)
    regions = gate.detect_array(gray[:, :, None], 0.033)
    assert len(full) >= 3 and not gate.last_was_full and len(regions) >= 3
    with pytest.raises(ValueError, match="uint8"):
        gate.detect_array(gray.astype(np.float32), 0.066)

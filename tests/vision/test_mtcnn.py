"""The ONNX MTCNN detector and its box arithmetic, without TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from edge_fer.config.settings import DetectorSettings
from edge_fer.vision import mtcnn_ops as ops
from edge_fer.vision.mtcnn import MtcnnDetector
from edge_fer.vision.types import Box
from tests.photos import astronaut_bgr, face_source, make_scene, multi_face_scenes


@pytest.fixture(scope="module")
def detector() -> MtcnnDetector:
    return MtcnnDetector(DetectorSettings(min_face_size=20))


def _face_box(source: str = "astronaut") -> Box:
    return Box(*face_source(source).face)


def test_astronaut_is_found_once_with_plausible_landmarks(detector):
    faces = detector.detect(astronaut_bgr())
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.99
    assert face.box.iou(_face_box()) > 0.95
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    # image coordinates, as the mtcnn package names them: "left" is the point further left in the picture
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert all(face.box.x < x < face.box.x2 and face.box.y < y < face.box.y2 for x, y in face.landmarks)


def test_mirrored_astronaut_keeps_image_left_landmarks_on_the_left(detector):
    image = np.ascontiguousarray(astronaut_bgr()[:, ::-1])
    (face,) = detector.detect(image)
    b = _face_box()
    assert face.box.iou(Box(512 - b.x2, b.y, b.w, b.h)) > 0.9
    assert face.landmarks[0, 0] < face.landmarks[1, 0] and face.landmarks[3, 0] < face.landmarks[4, 0]


def test_grayscale_input_is_accepted(detector):
    gray = astronaut_bgr().mean(axis=2).astype(np.uint8)
    assert len(detector.detect(gray)) == 1
    assert len(detector.detect(gray[:, :, None])) == 1


@pytest.mark.parametrize("kind", ["blank", "noise", "tiny"])
def test_no_face_where_there_is_none(detector, kind):
    rng = np.random.default_rng(7)
    image = {
        "blank": np.full((480, 640, 3), 200, dtype=np.uint8),
        "noise": rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8),
        "tiny": np.full((8, 9, 3), 90, dtype=np.uint8),  # smaller than P-Net's 12 px window
    }[kind]
    assert detector.detect(image) == []


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((48, 48, 3), dtype=np.float32), "uint8"),
        (np.zeros((48, 48, 4), dtype=np.uint8), "HxWx3"),
        (np.zeros((48,), dtype=np.uint8), "HxWx3"),
        (np.zeros((0, 48, 3), dtype=np.uint8), "empty"),
        (np.zeros((48, 0), dtype=np.uint8), "empty"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_bad_images_raise_value_error(detector, image, message):
    with pytest.raises(ValueError, match=message):
        detector.detect(image)


def test_min_face_size_filters_small_faces():
    scene = make_scene(640, 480, faces=[(160, 200, 30, False), (430, 240, 130, True)], background="grass")
    small, large = (Box(*f.box) for f in scene.faces)
    everything = MtcnnDetector(DetectorSettings(min_face_size=20)).detect(scene.bgr)
    assert any(d.box.iou(small) > 0.5 for d in everything) and any(d.box.iou(large) > 0.5 for d in everything)
    big_only = MtcnnDetector(DetectorSettings(min_face_size=80)).detect(scene.bgr)
    assert [d.box.iou(large) > 0.5 for d in big_only] == [True]


def test_results_are_sorted_clipped_and_typed(detector):
    scene = make_scene(640, 480, faces=[(100, 120, 60, False), (500, 300, 90, False), (630, 60, 70, True)])
    faces = detector.detect(scene.bgr)
    assert len(faces) == 3
    scores = [f.score for f in faces]
    assert scores == sorted(scores, reverse=True)
    for f in faces:
        assert f.box.x >= 0 and f.box.x2 <= 639 and f.box.y >= 0 and f.box.y2 <= 479
        assert f.landmarks.shape == (5, 2)
    rows = detector.detect_array(scene.bgr)
    assert rows.shape == (3, 15) and rows.dtype == np.float64


def test_every_placed_face_is_found_where_the_scene_says(detector):
    faces = 0
    for scene in multi_face_scenes():
        height, width = scene.bgr.shape[:2]
        found = detector.detect(scene.bgr)
        for placed in scene.faces:
            truth = Box(*placed.box).clip(width, height)
            best = max(found, key=lambda d: d.box.iou(truth))
            assert best.box.iou(truth) > 0.5, (scene.background, placed.spec)
            if placed.landmarks is not None:
                error = np.linalg.norm(best.landmarks - placed.landmarks, axis=1).max()
                assert error < 0.2 * placed.spec.face_px, (scene.background, placed.spec, error)
            faces += 1
    assert faces >= 40


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_face_size": 0},
        {"thresholds": (0.6, 0.7)},
        {"thresholds": (0.6, 1.2, 0.7)},
        {"scale_factor": 1.0},
        {"nms_thresholds": (0.5, 0.7, 0.7)},
        {"nms_thresholds": (0.5, 0.7, -0.1, 0.7)},
        {"threads": 0},
        {"threads": 1.5},
        {"thresholds": 0.7},
        {"helper_thread": "sometimes"},
        {"scale_factor": 0.97},
        {"min_score": 1.5},
    ],
)
def test_config_rejects_out_of_range_values(kwargs):
    with pytest.raises(ValueError):
        DetectorSettings(**kwargs)


def test_config_accepts_lists_and_stores_tuples():
    config = DetectorSettings(min_face_size=40, thresholds=[0.5, 0.6, 0.7], nms_thresholds=[0.5, 0.7, 0.7, 0.6])
    assert config.thresholds == (0.5, 0.6, 0.7) and config.nms_thresholds == (0.5, 0.7, 0.7, 0.6)
    assert config.min_face_size == 40.0 and hash(config)


def test_pyramid_is_cached_and_drops_levels_too_small_for_pnet():
    det = MtcnnDetector(DetectorSettings(min_face_size=40))
    plan = det.pyramid(480, 640)
    assert plan is det.pyramid(480, 640)
    assert plan[0] == (0.3, 144, 192)
    assert len(plan) == 8  # the reference's formula gives 10; the last two are under 11 px high
    assert all(ops.pnet_output_size(h) > 0 for _, h, _ in plan)


def test_importing_the_detector_stays_light():
    code = (
        "import sys, edge_fer.vision.mtcnn;"
        "bad = [m for m in ('tensorflow', 'mtcnn', 'cv2', 'onnxruntime') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --- box arithmetic on hand-made arrays -------------------------------------------------------


def test_pyramid_scales_follow_the_reference_formula():
    scales = ops.pyramid_scales(640, 480, 20, 0.709)
    assert len(scales) == 10
    assert scales[0] == pytest.approx(0.6) and scales[1] == pytest.approx(0.6 * 0.709)
    assert ops.scaled_shape(480, 640, 0.6) == (288, 384)
    assert ops.scaled_shape(480, 640, 0.4254) == (204, 272)  # truncated, not rounded
    assert [ops.pnet_output_size(n) for n in (10, 11, 12, 13, 14, 16)] == [0, 1, 1, 2, 2, 3]


def test_pnet_proposals_decode_cells_into_image_boxes():
    prob = np.zeros((4, 6), dtype=np.float32)
    reg = np.zeros((4, 6, 4), dtype=np.float32)
    prob[3, 5], prob[1, 0] = 0.9, 0.7
    reg[1, 0] = (0.1, 0.0, 0.0, -0.1)
    boxes = ops.pnet_proposals(reg, prob, scale=0.5, threshold=0.6)
    # cell (y=3, x=5) covers scaled pixels 11..22 / 7..18; dividing by the scale maps them back
    np.testing.assert_allclose(boxes[0], [22, 14, 44, 36, 0.9], rtol=1e-6)
    np.testing.assert_allclose(boxes[1], [(1 + 1.1) * 2, 3 * 2, 12 * 2, (14 - 1.1) * 2, 0.7], rtol=1e-6)
    assert ops.pnet_proposals(reg, prob, 0.5, 0.95).shape == (0, 5)


def test_nms_is_the_one_pass_variant_and_supports_min_overlap():
    boxes = np.array(
        [
            [0, 0, 10, 10, 0.9],
            [4, 0, 14, 10, 0.8],  # overlaps the first (IoU 0.43)
            [8, 0, 18, 10, 0.7],  # overlaps the second (0.43), not the first
            [30, 30, 34, 34, 0.6],  # inside the next box: IoU 0.13, but 1.0 of the smaller one
            [29, 29, 40, 40, 0.5],
        ]
    )
    # greedy NMS would keep the third box; here the dropped second box still suppresses it
    assert ops.nms_keep(boxes, 0.4).tolist() == [0, 3, 4]
    assert ops.nms_keep(boxes, 0.5).tolist() == [0, 1, 2, 3, 4]
    assert ops.nms_keep(boxes, 0.5, method="min").tolist() == [0, 3]  # 60 / 100 of the smaller box
    assert ops.nms_keep(boxes, 0.7, method="min").tolist() == [0, 1, 2, 3]
    shuffled = boxes[[4, 2, 0, 3, 1]]
    np.testing.assert_array_equal(ops.nms(shuffled, 0.4), boxes[[0, 3, 4]])
    assert ops.nms_keep(np.empty((0, 5)), 0.5).shape == (0,)
    with pytest.raises(ValueError, match="union"):
        ops.nms_keep(boxes, 0.5, method="max")


def test_nms_blocks_give_the_same_answer_as_one_block():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 200, size=(300, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, size=(300, 2)), rng.uniform(size=(300, 1))], axis=1)
    boxes = ops.sort_by_score(boxes)
    np.testing.assert_array_equal(ops.nms_keep(boxes, 0.3, block=37), ops.nms_keep(boxes, 0.3, block=1000))


def test_square_regression_landmarks_and_clipping():
    boxes = np.array([[10.0, 20.0, 30.0, 60.0, 0.9]])
    np.testing.assert_allclose(ops.to_square(boxes), [[0.0, 20.0, 40.0, 60.0, 0.9]])
    moved = ops.apply_regression(boxes, np.array([[0.1, -0.1, 0.0, 0.5]], dtype=np.float32))
    np.testing.assert_allclose(moved[0, :4], [10 + 2.1, 20 - 4.1, 30, 60 + 20.5], rtol=1e-6)
    raw = np.array([[0.0, 1.0, 0.5, 0.25, 0.75, 0.0, 0.0, 0.5, 1.0, 1.0]])
    points = ops.onet_landmarks(raw, boxes)
    np.testing.assert_allclose(points[0], [[9, 19], [30, 19], [19.5, 39.5], [14.25, 60], [24.75, 60]])
    clipped = ops.clip_to_image(np.array([[-5.0, 3.0, 700.0, 500.0]]), 640, 480)
    np.testing.assert_allclose(clipped, [[0, 3, 639, 479]])


def test_crop_and_resize_samples_bilinearly_and_zeroes_outside():
    ys, xs = np.mgrid[0:5, 0:9].astype(np.float32)
    image = np.stack([xs, ys, xs + 10 * ys], axis=2)  # linear in x and y, so bilinear is exact
    crops = ops.crop_and_resize(image, np.array([[0.0, 0.0, 9.0, 5.0], [4.5, 0.0, 13.5, 5.0]]), 3)
    # box corners are divided by the image size: x samples at 0, 3.5 * 8/9 ... along (W - 1) = 8
    expected_x = np.array([0.0, 4.0, 8.0])
    np.testing.assert_allclose(crops[0, 0, :, 0], expected_x, atol=1e-5)
    np.testing.assert_allclose(crops[0, :, 0, 1], [0.0, 2.0, 4.0], atol=1e-5)
    np.testing.assert_allclose(crops[0, 2, 1, 2], 4.0 + 40.0, atol=1e-5)
    # second box starts at x = 4 and runs past the right edge: the last sample column is zero
    np.testing.assert_allclose(crops[1, 0, :2, 0], [4.0, 8.0], atol=1e-5)
    assert np.all(crops[1, :, 2] == 0)
    assert ops.crop_and_resize(image, np.empty((0, 4)), 24).shape == (0, 24, 24, 3)


# --- the helper thread --------------------------------------------------------------------------


def test_helper_thread_changes_latency_not_results():
    faces = [(120, 140, 70, False), (420, 160, 26, True), (600, 420, 110, False, "camera"), (250, 450, 40, False)]
    scene = make_scene(800, 600, faces=faces, background="rocket", seed=5)
    with (
        MtcnnDetector(DetectorSettings(helper_thread=True)) as shared,
        MtcnnDetector(DetectorSettings(helper_thread=False)) as alone,
    ):
        together, single = shared.detect_array(scene.bgr), alone.detect_array(scene.bgr)
    assert together.shape[0] == 4
    np.testing.assert_array_equal(together, single)


def test_pnet_runner_raises_a_helper_failure_instead_of_hanging():
    import cv2

    from edge_fer.vision.mtcnn_pyramid import Helper, run_pnet
    from edge_fer.vision.onnx_session import bundled_model, open_session

    session = open_session(bundled_model("mtcnn_pnet.onnx"))
    image = np.zeros((300, 360, 3), dtype=np.float32)  # a first level big enough for the helper to take part
    helper = Helper()
    try:
        good = list(run_pnet(session, image, [(0.5, 150, 180), (0.25, 75, 90)], helper))
        assert [out[1].shape for out in good] == [(1, 70, 85, 2), (1, 33, 40, 2)]
        with pytest.raises(cv2.error):
            list(run_pnet(session, image, [(0.5, 150, 180), (0.2, 0, 24), (0.1, 12, 12)], helper))
    finally:
        helper.close()

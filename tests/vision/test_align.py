"""Face alignment on the real astronaut photo: level eyes, exact box crops, fallbacks, borders, big faces."""

import math

import cv2
import numpy as np
import pytest

from edge_fer.config.loading import parse_config
from edge_fer.config.settings import ConfigError, DetectorSettings
from edge_fer.vision.align import FER_TEMPLATE, FaceAligner, fit_similarity, landmarks_reliable
from edge_fer.vision.mtcnn import MtcnnDetector
from edge_fer.vision.types import Box, Detection
from tests.photos import astronaut_bgr


@pytest.fixture(scope="module")
def detector():
    return MtcnnDetector(DetectorSettings(min_face_size=20))


@pytest.fixture(scope="module")
def photo():
    return astronaut_bgr()


def turned(image: np.ndarray, degrees: float) -> np.ndarray:
    center = (image.shape[1] / 2, image.shape[0] / 2)
    matrix = cv2.getRotationMatrix2D(center, degrees, 1.0)
    return cv2.warpAffine(image, matrix, image.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY).astype(float).ravel()
    b = cv2.cvtColor(b, cv2.COLOR_BGR2GRAY).astype(float).ravel()
    return float(np.corrcoef(a, b)[0, 1])


@pytest.mark.parametrize(
    ("kwargs", "key"), [({"align": "affine"}, "classifier.align"), ({"margin": 2.0}, "classifier.margin")]
)
def test_config_is_validated(kwargs, key):
    # The aligner's mode and margin are the classifier settings; their one check is the settings model's.
    with pytest.raises(ConfigError) as info:
        parse_config({"classifier": kwargs})
    assert [p.path for p in info.value.items] == [key]


def test_fit_recovers_a_known_similarity():
    angle, scale, shift = math.radians(30), 140.0, np.array([210.0, 95.0])
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    landmarks = FER_TEMPLATE @ rot.T * scale + shift
    matrix, misfit = fit_similarity(landmarks, FER_TEMPLATE)
    assert misfit < 1e-9
    np.testing.assert_allclose(landmarks @ matrix[:, :2].T + matrix[:, 2], FER_TEMPLATE, atol=1e-9)


def test_similarity_puts_real_landmarks_on_the_template_with_level_eyes(detector, photo):
    face = detector.detect(photo)[0]
    aligner = FaceAligner(size=64, mode="similarity", margin=0.0)
    matrix, used = aligner.transform(face)
    assert used == "similarity"
    mapped = face.landmarks @ matrix[:, :2].T + matrix[:, 2]
    assert mapped[0, 1] == pytest.approx(mapped[1, 1], abs=1e-6)  # eyes exactly level
    np.testing.assert_allclose(mapped, FER_TEMPLATE * 64, atol=5.0)  # a real face fits the template to a few px


@pytest.mark.parametrize("degrees", [-25, 20])
def test_similarity_undoes_a_tilted_head_and_the_box_does_not(detector, photo, degrees):
    upright = detector.detect(photo)[0]
    tilted_photo = turned(photo, degrees)
    tilted = detector.detect(tilted_photo)[0]
    sim, box = FaceAligner(128, "similarity"), FaceAligner(128, "box")
    reference = sim.align(photo, upright)
    sim_score = correlation(sim.align(tilted_photo, tilted), reference)
    box_score = correlation(box.align(tilted_photo, tilted), box.align(photo, upright))
    assert sim_score > 0.9
    assert sim_score > box_score + 0.1
    # the detector finds the re-levelled face again, eyes level to within a few degrees
    again = detector.detect(cv2.copyMakeBorder(sim.align(tilted_photo, tilted), 40, 40, 40, 40, cv2.BORDER_REPLICATE))
    (x1, y1), (x2, y2) = again[0].landmarks[:2]
    assert abs(math.degrees(math.atan2(y2 - y1, x2 - x1))) < 5


def test_box_mode_is_the_exact_square_around_the_box(photo):
    detection = Detection(Box(170, 60, 80, 100), 0.99)  # squared: side 100 centred on (210, 110)
    np.testing.assert_array_equal(FaceAligner(100, "box", 0.0).align(photo, detection), photo[60:160, 160:260])
    np.testing.assert_array_equal(FaceAligner(150, "box", 0.25).align(photo, detection), photo[35:185, 135:285])


def test_margin_zooms_out_around_the_same_centre(detector, photo):
    face = detector.detect(photo)[0]
    tight, _ = FaceAligner(64, "similarity", 0.0).transform(face)
    loose, _ = FaceAligner(64, "similarity", 0.2).transform(face)
    assert math.hypot(*loose[:, 0]) == pytest.approx(math.hypot(*tight[:, 0]) / 1.4)
    centre = FER_TEMPLATE.mean(axis=0)  # a face point keeps its place relative to the crop centre, scaled
    point = np.linalg.solve(tight[:, :2], centre * 64 - tight[:, 2])
    assert loose[:, :2] @ point + loose[:, 2] == pytest.approx((centre + 0.2) / 1.4 * 64)


def with_landmarks(face: Detection, landmarks) -> Detection:
    return Detection(face.box, face.score, None if landmarks is None else np.asarray(landmarks, np.float32))


@pytest.mark.parametrize(
    "change",
    ["none", "outside the box", "eyes together", "mouth above eyes", "rolled over"],
)
def test_unreliable_landmarks_fall_back_to_the_box(detector, photo, change):
    face = detector.detect(photo)[0]
    pts = face.landmarks.copy()
    if change == "none":
        pts = None
    elif change == "outside the box":
        pts[4] += [150, 0]
    elif change == "eyes together":
        pts[1] = pts[0] + [2, 0]
    elif change == "mouth above eyes":
        pts = pts[[3, 4, 2, 0, 1]]
    elif change == "rolled over":
        pts = pts[[1, 0, 2, 4, 3]]  # eye order swapped: a 180 degree roll
    bad = with_landmarks(face, pts)
    assert landmarks_reliable(face) and not landmarks_reliable(bad)
    aligner = FaceAligner(64, "similarity", 0.1)
    assert aligner.transform(bad)[1] == "box"
    np.testing.assert_array_equal(aligner.align(photo, bad), FaceAligner(64, "box", 0.1).align(photo, bad))


def test_pixels_outside_the_frame_replicate_the_border(photo):
    detection = Detection(Box(-30, -30, 100, 100), 0.9)
    crop = FaceAligner(100, "box", 0.0).align(photo, detection)
    assert (crop[:30, :30] == photo[0, 0]).all()
    np.testing.assert_array_equal(crop[:30, 30:], np.broadcast_to(photo[0, :70], (30, 70, 3)))
    np.testing.assert_array_equal(crop[30:, 30:], photo[:70, :70])


def test_big_faces_are_averaged_down_not_aliased():
    # 1 px black and white stripes: point sampling gives stripes or moire, averaging gives flat grey
    stripes = np.zeros((1200, 1200, 3), np.uint8)
    stripes[:, ::2] = 255
    crop = FaceAligner(64, "box", 0.0).align(stripes, Detection(Box(100, 100, 900, 900), 0.9))
    assert abs(float(crop.mean()) - 127.5) < 3 and float(crop.std()) < 4


def test_every_face_of_a_frame_is_cut(detector):
    from tests.photos import make_scene

    scene = make_scene(640, 480, [(150, 150, 90, False), (420, 160, 60, True), (500, 360, 40, False)], "coffee")
    faces = detector.detect(scene.bgr)
    crops = FaceAligner(64).align_all(scene.bgr, faces)
    assert len(crops) == len(faces) == 3
    assert all(c.shape == (64, 64, 3) and c.dtype == np.uint8 for c in crops)

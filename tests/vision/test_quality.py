"""Face quality on fixed inputs: pose from landmarks, and the size, blur and light terms on a real photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_fer.config.settings import ClaimSettings
from edge_fer.vision.quality import ClaimRule, QualityLimits, head_pose, measure
from edge_fer.vision.types import Box, Detection
from tests.factories import ASTRONAUT_FACE, ASTRONAUT_LANDMARKS, astronaut_bgr, landmarks_for


def _frontal() -> np.ndarray:
    return landmarks_for(Box(0, 0, 100, 100))


def test_frontal_landmarks_have_no_yaw_and_little_pitch():
    yaw, pitch = head_pose(ASTRONAUT_LANDMARKS)
    assert abs(yaw) < 0.1 and abs(pitch) < 0.1


def test_nose_towards_one_eye_is_yaw_with_its_sign():
    lm = _frontal().copy()
    eye_half = (lm[1, 0] - lm[0, 0]) / 2
    right = lm.copy()
    right[2, 0] += eye_half  # the nose under the right eye: half-way to a profile
    left = lm.copy()
    left[2, 0] -= eye_half
    assert head_pose(right)[0] == pytest.approx(head_pose(lm)[0] + 1.0, abs=1e-6)
    assert head_pose(left)[0] == pytest.approx(head_pose(lm)[0] - 1.0, abs=1e-6)


def test_pose_survives_in_plane_rotation():
    lm = _frontal()
    centre = lm.mean(axis=0)
    angle = np.deg2rad(30)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    turned = (lm - centre) @ rot.T + centre
    assert head_pose(turned) == pytest.approx(head_pose(lm), abs=1e-6)


def test_nose_low_or_high_is_pitch():
    lm = _frontal()
    down = lm.copy()
    down[2, 1] += 10
    assert head_pose(down)[1] > head_pose(lm)[1] + 0.1


@pytest.mark.parametrize("landmarks", [None, np.zeros((3, 2)), np.zeros((5, 2))])
def test_missing_or_degenerate_landmarks_give_no_pose(landmarks):
    assert head_pose(landmarks) == (None, None)


def _astronaut_detection(box: Box = ASTRONAUT_FACE, score: float = 0.99) -> Detection:
    return Detection(box=box, score=score, landmarks=ASTRONAUT_LANDMARKS)


def test_a_sharp_frontal_well_lit_face_scores_high():
    q = measure(astronaut_bgr(), _astronaut_detection())
    assert q.score > 0.9
    assert q.size == pytest.approx(95.0) and q.sharpness > QualityLimits().sharpness_good
    assert 70 < q.brightness < 200
    assert set(q.terms_json()) == {"size", "sharpness", "brightness", "yaw", "pitch"}


def test_blur_darkness_and_small_size_each_lower_the_score():
    image = astronaut_bgr()
    good = measure(image, _astronaut_detection()).score
    blurred = measure(cv2.GaussianBlur(image, (0, 0), 6), _astronaut_detection()).score
    dark = measure((image * 0.12).astype(np.uint8), _astronaut_detection()).score
    small = cv2.resize(image, (128, 128), interpolation=cv2.INTER_AREA)
    b = ASTRONAUT_FACE
    tiny_box = Box(b.x / 4, b.y / 4, b.w / 4, b.h / 4)
    tiny = measure(small, Detection(tiny_box, 0.99, ASTRONAUT_LANDMARKS / 4)).score
    assert blurred < 0.5 * good and dark < 0.5 * good and tiny < 0.5 * good


def test_detection_score_scales_the_quality():
    image = astronaut_bgr()
    assert measure(image, _astronaut_detection(score=0.5)).score == pytest.approx(
        0.5 / 0.99 * measure(image, _astronaut_detection()).score, rel=1e-6
    )


def test_a_box_outside_the_frame_is_unfit_not_an_error():
    q = measure(astronaut_bgr(), Detection(Box(600, 600, 40, 40), 0.9, None))
    assert q.score == 0.0 and q.yaw is None


@pytest.mark.parametrize(
    ("quality", "confidence", "claims"),
    [
        (0.5, 0.9, True),
        (0.2, 0.4, True),  # both limits are inclusive
        (0.19, 0.9, False),  # too poor, however sure
        (0.9, 0.39, False),  # good, but too unsure
        (None, 0.5, True),  # nothing measured: confidence decides
        (None, 0.3, False),
    ],
)
def test_claim_rule_needs_both_quality_and_confidence(quality, confidence, claims):
    rule = ClaimRule.from_settings(ClaimSettings(min_quality=0.2, min_confidence=0.4))
    assert rule.allows(quality, confidence) is claims


def test_the_default_rule_claims_everything():
    assert ClaimRule().allows(0.0, 0.0)

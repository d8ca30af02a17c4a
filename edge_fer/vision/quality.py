"""How fit a face is to be judged: size, sharpness, light, head pose and detection score, one number.

The emotion models were trained on frontal, sharp, evenly lit 48 px crops. A face far from that (a
profile, a 20 px blur, a face in the dark) still gets an answer from them, with a confidence that means
little. These measures are cheap (one small grey crop per face) and read only the picture and the
landmarks, so they can decide whether edge-fer should say anything about a face at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge_fer.vision.types import Detection, Quality

# Where the landmarks sit on a frontal face, as in the alignment template (vision/align.py FER_TEMPLATE):
# the nose's height between the eye line and the mouth line.
FRONTAL_NOSE_RATIO = 0.537
PATCH = 64  # side of the grey crop the sharpness and light are measured on


@dataclass(frozen=True, slots=True)
class QualityLimits:
    """Each term is 1 at or past ``good`` and falls linearly to 0 at ``poor``."""

    size_poor: float = 20.0  # shorter side of the box, px
    size_good: float = 48.0
    sharpness_poor: float = 15.0  # variance of the Laplacian on the 64 px grey crop
    sharpness_good: float = 120.0
    # Mean grey level. Faces darker than 60 are relit before classification (classifier.relight_dark), so
    # dimness only hurts where relighting mostly amplifies noise.
    dark_poor: float = 15.0
    dark_good: float = 45.0
    bright_poor: float = 245.0
    bright_good: float = 200.0
    yaw_good: float = 0.35  # |yaw|: nose offset from the eye midpoint, in half eye distances (~20 degrees)
    yaw_poor: float = 0.9
    # A profile scales quality by this instead of zeroing it: past |yaw| ~1 the landmarks are guesses, and on
    # the development clip the models read laughs in profile right more often than not.
    profile_floor: float = 0.5
    pitch_good: float = 0.12  # |nose ratio - frontal|
    pitch_poor: float = 0.3


def _ramp(value: float, poor: float, good: float) -> float:
    """1 at ``good``, 0 at ``poor``, linear between; works whichever side ``good`` is on."""
    if good == poor:
        return 1.0 if value >= good else 0.0
    t = (value - poor) / (good - poor)
    return float(min(1.0, max(0.0, t)))


def _pose_term(abs_yaw: float, limits: QualityLimits) -> float:
    floor = limits.profile_floor
    return floor + (1.0 - floor) * _ramp(abs_yaw, limits.yaw_poor, limits.yaw_good)


def head_pose(landmarks: np.ndarray | None) -> tuple[float | None, float | None]:
    """(yaw, pitch) proxies from the five landmarks; both 0 for a frontal face.

    Yaw: how far the nose sits from the midpoint of the eyes along the eye line, in half eye distances
    (a profile approaches 1). Pitch: the nose's height between the eye line and the mouth line, minus
    where it sits on a frontal face. Neither is an angle: they are what the landmarks can tell reliably.
    """
    if landmarks is None or np.asarray(landmarks).shape != (5, 2):
        return None, None
    lm = np.asarray(landmarks, dtype=np.float64)
    left, right, nose, mouth_l, mouth_r = lm
    eye_vec = right - left
    eye_dist = float(np.hypot(*eye_vec))
    if eye_dist < 1e-6:
        return None, None
    ux = eye_vec / eye_dist
    uy = np.array([-ux[1], ux[0]])
    mid_eyes, mid_mouth = (left + right) / 2, (mouth_l + mouth_r) / 2
    yaw = float((nose - mid_eyes) @ ux) / (eye_dist / 2)
    span = float((mid_mouth - mid_eyes) @ uy)
    if abs(span) < 1e-6:
        return yaw, None
    pitch = float((nose - mid_eyes) @ uy) / span - FRONTAL_NOSE_RATIO
    return yaw, pitch


def measure(image_bgr: np.ndarray, detection: Detection, limits: QualityLimits | None = None) -> Quality:
    """The quality of one detected face in its frame."""
    import cv2

    limits = limits or QualityLimits()
    b = detection.box
    h, w = image_bgr.shape[:2]
    x0, y0 = max(0, math.floor(b.x)), max(0, math.floor(b.y))
    x1, y1 = min(w, math.ceil(b.x + b.w)), min(h, math.ceil(b.y + b.h))
    crop = image_bgr[y0:y1, x0:x1]
    if crop.size == 0:
        sharpness = brightness = 0.0
    else:
        grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
        grey = cv2.resize(grey, (PATCH, PATCH), interpolation=cv2.INTER_AREA)
        sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
        brightness = float(grey.mean())
    yaw, pitch = head_pose(detection.landmarks)
    size = float(min(b.w, b.h))
    terms = [
        _ramp(size, limits.size_poor, limits.size_good),
        _ramp(sharpness, limits.sharpness_poor, limits.sharpness_good),
        min(
            _ramp(brightness, limits.dark_poor, limits.dark_good),
            _ramp(brightness, limits.bright_poor, limits.bright_good),
        ),
        1.0 if yaw is None else _pose_term(abs(yaw), limits),
        1.0 if pitch is None else _ramp(abs(pitch), limits.pitch_poor, limits.pitch_good),
    ]
    score = float(np.prod(terms)) * float(detection.score)
    return Quality(size, sharpness, brightness, yaw, pitch, float(detection.score), min(1.0, max(0.0, score)))


@dataclass(frozen=True, slots=True)
class ClaimRule:
    """Whether edge-fer says what a face shows: the ``classifier.claim`` settings as a predicate."""

    min_quality: float = 0.0
    min_confidence: float = 0.0

    @classmethod
    def from_settings(cls, claim) -> ClaimRule:
        return cls(float(claim.min_quality), float(claim.min_confidence))

    def allows(self, quality: float | None, confidence: float) -> bool:
        """A face without a measured quality (no frame to measure it on) is judged on confidence alone."""
        return (quality is None or quality >= self.min_quality) and confidence >= self.min_confidence

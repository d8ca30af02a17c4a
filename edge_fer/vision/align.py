"""Cut each detected face out of a frame the way the emotion model saw faces in training.

``similarity`` mode maps the five landmarks onto a template with one rotation (eyes level), one
scale and one shift; ``box`` mode squares the detector's box. Both then add ``margin`` (a fraction of
the face square on every side). The template is where MTCNN puts the landmarks on FER2013's own
crops, measured on 1357 training crops (``benchmarks/alignment.py --calibrate``), so ``similarity``
with margin 0 reproduces FER2013's framing. Which mode and margin work best is measured in
``docs/alignment.md``; the defaults follow that measurement.

Pixels that fall outside the frame (a face at the image edge) are filled by replicating the border:
a constant fill would put a hard black edge into the crop, which the classifier never saw in
training, while replicated edge pixels look like an out-of-focus continuation of the image.
"""

from __future__ import annotations

import math

import numpy as np

from edge_fer.vision.types import Detection

MODES = ("similarity", "box")
DEFAULT_MODE = "similarity"
DEFAULT_MARGIN = 0.0

# Landmarks (left eye, right eye, nose, mouth left, mouth right) in FER2013 crops, as fractions of the
# crop side: the mean of MTCNN's landmarks on 1357 training crops, made left-right symmetric.
FER_TEMPLATE = np.array(
    [[0.3199, 0.3766], [0.6801, 0.3766], [0.5000, 0.5917], [0.3495, 0.7772], [0.6505, 0.7772]], dtype=np.float64
)

MAX_ROLL_DEGREES = 60.0  # beyond this the landmarks are more likely wrong than the head that tilted
EYE_DISTANCE_RANGE = (0.2, 0.8)  # eye distance as a fraction of the box width, for a plausible face
MAX_FIT_ERROR = 0.25  # RMS landmark misfit after alignment, in eye distances
MAX_WARP_SIDE = 1024  # big faces are warped at most this large, then shrunk with INTER_AREA


def _roll(landmarks: np.ndarray) -> float:
    dx, dy = landmarks[1] - landmarks[0]
    return math.atan2(dy, dx)


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


def fit_similarity(landmarks: np.ndarray, template: np.ndarray) -> tuple[np.ndarray, float]:
    """The 2x3 matrix taking ``landmarks`` onto ``template`` with the eyes exactly level, and the RMS misfit
    in units of the template's eye distance.

    The rotation comes from the eye line alone (so the eyes come out level whatever the mouth does);
    scale and shift are then the least-squares fit over all five points.
    """
    src = np.asarray(landmarks, dtype=np.float64)
    angle = _roll(src) - _roll(template)
    rotated = _rotate(src, -angle)
    src_c, dst_c = rotated - rotated.mean(axis=0), template - template.mean(axis=0)
    scale = float((src_c * dst_c).sum() / max((src_c**2).sum(), 1e-12))
    shift = template.mean(axis=0) - scale * rotated.mean(axis=0)
    c, s = math.cos(-angle) * scale, math.sin(-angle) * scale
    matrix = np.array([[c, -s, shift[0]], [s, c, shift[1]]])
    residual = src @ matrix[:, :2].T + matrix[:, 2] - template
    eye_distance = float(np.linalg.norm(template[1] - template[0]))
    return matrix, float(np.sqrt((residual**2).sum(axis=1).mean()) / eye_distance)


def landmarks_reliable(detection: Detection) -> bool:
    """Whether the landmarks describe a plausible face inside the detection box."""
    pts = detection.landmarks
    box = detection.box
    if pts is None or box.w <= 0 or box.h <= 0:
        return False
    pad_x, pad_y = 0.1 * box.w, 0.1 * box.h
    inside = (
        (pts[:, 0] >= box.x - pad_x)
        & (pts[:, 0] <= box.x2 + pad_x)
        & (pts[:, 1] >= box.y - pad_y)
        & (pts[:, 1] <= box.y2 + pad_y)
    )
    if not inside.all():
        return False
    eye_distance = float(np.linalg.norm(pts[1] - pts[0]))
    lo, hi = EYE_DISTANCE_RANGE
    if not lo * box.w <= eye_distance <= hi * box.w:
        return False
    if abs(math.degrees(_roll(pts))) > MAX_ROLL_DEGREES:
        return False
    upright = _rotate(pts.astype(np.float64), -_roll(pts))  # eyes level: the mouth must sit below them
    return float(upright[3:, 1].mean() - upright[:2, 1].mean()) > 0.3 * eye_distance


class FaceAligner:
    """Face crops (BGR, ``size`` x ``size``) from detections, by similarity transform or squared box.

    ``size`` is the classifier's input side (from the model); ``mode`` and ``margin`` are the
    ``classifier.align`` and ``classifier.margin`` settings, whose ranges the settings model checks.
    """

    def __init__(self, size: int = 64, mode: str = DEFAULT_MODE, margin: float = DEFAULT_MARGIN) -> None:
        self.size, self.mode, self.margin = int(size), mode, float(margin)

    def transform(self, detection: Detection) -> tuple[np.ndarray, str]:
        """The 2x3 matrix from frame to crop pixels, and the mode actually used (``box`` on fallback)."""
        size, margin = self.size, self.margin
        # face-square units [-margin, 1 + margin] -> output pixels [0, size]
        unit = size / (1.0 + 2.0 * margin)
        if self.mode == "similarity" and landmarks_reliable(detection):
            matrix, misfit = fit_similarity(detection.landmarks, FER_TEMPLATE)
            if misfit <= MAX_FIT_ERROR:
                matrix = matrix * unit
                matrix[:, 2] += margin * unit
                return matrix, "similarity"
        box = detection.box
        side = max(box.w, box.h, 1.0)
        cx, cy = box.center
        scale = unit / side
        matrix = np.array([[scale, 0.0, (side / 2 - cx) * scale], [0.0, scale, (side / 2 - cy) * scale]])
        matrix[:, 2] += margin * unit
        return matrix, "box"

    def align(self, image_bgr: np.ndarray, detection: Detection) -> np.ndarray:
        import cv2

        size = self.size
        matrix, _ = self.transform(detection)
        scale = math.hypot(matrix[0, 0], matrix[1, 0])  # output pixels per frame pixel
        if scale >= 0.75:  # no worse than mild shrinking: one bilinear warp is enough
            return cv2.warpAffine(
                image_bgr, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
        # Strong shrinking: warp at (about) the frame's own resolution, then average pixels down with
        # INTER_AREA, so that a big face is not sampled with aliasing.
        side = min(MAX_WARP_SIDE, max(size, math.ceil(size / scale)))
        big = cv2.warpAffine(
            image_bgr, matrix * (side / size), (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)

    def align_all(self, image_bgr: np.ndarray, detections: list[Detection]) -> list[np.ndarray]:
        return [self.align(image_bgr, d) for d in detections]

"""Small result types shared by detection, classification, tracking and events.

They validate themselves on construction so that a bad value fails where it is made,
not three threads later when an event is serialised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
LANDMARK_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True, slots=True)
class Box:
    """Axis-aligned box in pixels: top-left corner, width and height."""

    x: float
    y: float
    w: float
    h: float

    def __post_init__(self) -> None:
        values = (self.x, self.y, self.w, self.h)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"box has a non-finite value: {values}")
        if self.w < 0 or self.h < 0:
            raise ValueError(f"box has negative size: w={self.w}, h={self.h}")

    @classmethod
    def from_xyxy(cls, x1: float, y1: float, x2: float, y2: float) -> Box:
        return cls(float(x1), float(y1), float(x2 - x1), float(y2 - y1))

    @property
    def x2(self) -> float:
        return self.x + self.w

    @property
    def y2(self) -> float:
        return self.y + self.h

    @property
    def area(self) -> float:
        return self.w * self.h

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x2, other.x2) - max(self.x, other.x))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def clip(self, width: int, height: int) -> Box:
        x1, y1 = min(max(self.x, 0.0), width), min(max(self.y, 0.0), height)
        x2, y2 = min(max(self.x2, 0.0), width), min(max(self.y2, 0.0), height)
        return Box.from_xyxy(x1, y1, x2, y2)

    def scaled(self, sx: float, sy: float) -> Box:
        """The box with x and width times ``sx``, y and height times ``sy``."""
        return Box(self.x * sx, self.y * sy, self.w * sx, self.h * sy)

    def as_list(self, ndigits: int = 1) -> list[float]:
        return [round(self.x, ndigits), round(self.y, ndigits), round(self.w, ndigits), round(self.h, ndigits)]


@dataclass(frozen=True, slots=True)
class Detection:
    """One face from the detector. ``landmarks`` is (5, 2) in LANDMARK_NAMES order, or None."""

    box: Box
    score: float
    landmarks: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0 + 1e-6:
            raise ValueError(f"detection score {self.score} is outside [0, 1]")
        if self.landmarks is not None:
            pts = np.asarray(self.landmarks, dtype=np.float32)
            if pts.shape != (5, 2) or not np.all(np.isfinite(pts)):
                raise ValueError(f"landmarks must be five finite (x, y) points, got shape {pts.shape}")
            object.__setattr__(self, "landmarks", pts)

    def landmarks_dict(self, ndigits: int = 1) -> dict[str, list[float]] | None:
        if self.landmarks is None:
            return None
        return {
            name: [round(float(x), ndigits), round(float(y), ndigits)]
            for name, (x, y) in zip(LANDMARK_NAMES, self.landmarks)
        }


@dataclass(frozen=True, slots=True)
class Emotion:
    """Classifier output for one face: the winning label and one probability per model label."""

    label: str
    confidence: float
    scores: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scores and self.label not in self.scores:
            raise ValueError(f"label {self.label!r} is not among the scores {list(self.scores)}")
        if not 0.0 <= self.confidence <= 1.0 + 1e-6:
            raise ValueError(f"confidence {self.confidence} is outside [0, 1]")

    @classmethod
    def from_scores(cls, scores: Mapping[str, float]) -> Emotion:
        label = max(scores, key=scores.__getitem__)
        return cls(label=label, confidence=float(scores[label]), scores=dict(scores))


@dataclass(frozen=True, slots=True)
class Quality:
    """How fit a face is to be judged (:mod:`edge_fer.vision.quality` measures it): the terms and their
    combination ``score``, 0 (unfit) to 1 (as good as the training data)."""

    size: float  # shorter side of the box, px
    sharpness: float  # variance of the Laplacian on a 64 px grey crop
    brightness: float  # mean grey level of that crop
    yaw: float | None  # None when the landmarks are missing
    pitch: float | None
    det_score: float
    score: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"quality score {self.score} is outside [0, 1]")

    def terms_json(self) -> dict:
        def r(v: float | None, nd: int = 3) -> float | None:
            return None if v is None else round(float(v), nd)

        return {
            "size": r(self.size, 1),
            "sharpness": r(self.sharpness, 1),
            "brightness": r(self.brightness, 1),
            "yaw": r(self.yaw),
            "pitch": r(self.pitch),
        }


@dataclass(frozen=True, slots=True)
class Face:
    """A detected face with its emotion: what analyze prints and what tracking consumes.

    ``claim`` false means edge-fer abstains on this face (too poor or too unsure to judge): ``emotion``
    stays the classifier's top class, for reference. ``quality`` is None where no frame was measured.
    """

    detection: Detection
    emotion: Emotion
    quality: Quality | None = None
    claim: bool = True

    @property
    def box(self) -> Box:
        return self.detection.box

    @property
    def quality_score(self) -> float | None:
        return None if self.quality is None else self.quality.score

    def to_json(self) -> dict:
        out = {
            "box": self.detection.box.as_list(),
            "det_score": round(float(self.detection.score), 4),
            "landmarks": self.detection.landmarks_dict(),
            "emotion": self.emotion.label,
            "confidence": round(float(self.emotion.confidence), 4),
            "scores": {k: round(float(v), 4) for k, v in self.emotion.scores.items()},
            "claim": self.claim,
        }
        if self.quality is not None:
            out["quality"] = round(self.quality.score, 3)
            out["quality_terms"] = self.quality.terms_json()
        return out

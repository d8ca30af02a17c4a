"""Builders for test data: emotions, detections and faces with plausible values, and the astronaut photo.

Defaults describe the astronaut's face in ``skimage.data.astronaut()`` (512x512), so a face built here
lands on a real face when drawn on the real photo.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from edge_fer.vision.types import EMOTIONS, Box, Detection, Emotion, Face, Quality

# Measured by eye on the photo: the face from hairline to chin, and the five MTCNN landmarks.
ASTRONAUT_FACE = Box(170.0, 70.0, 95.0, 115.0)
ASTRONAUT_LANDMARKS = np.array([[200, 112], [243, 112], [222, 131], [205, 152], [240, 152]], dtype=np.float32)


def astronaut_bgr() -> np.ndarray:
    """The public-domain astronaut portrait as a 512x512 BGR uint8 array (what cameras deliver)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def scores(label: str = "happy", confidence: float = 0.8, labels: tuple[str, ...] = EMOTIONS) -> dict[str, float]:
    """A probability vector where ``label`` holds ``confidence`` and the rest share what is left equally."""
    if label not in labels:
        raise ValueError(f"{label!r} is not one of {labels}")
    rest = (1.0 - confidence) / (len(labels) - 1)
    return {name: (confidence if name == label else rest) for name in labels}


def emotion(
    label: str = "happy", confidence: float = 0.8, *, probs: Mapping[str, float] | None = None, labels=EMOTIONS
) -> Emotion:
    """An Emotion; ``probs`` sets some labels explicitly and spreads the remainder over the others."""
    if probs is None:
        return Emotion.from_scores(scores(label, confidence, labels))
    fixed = dict(probs)
    free = [name for name in labels if name not in fixed]
    rest = max(0.0, 1.0 - sum(fixed.values())) / max(1, len(free))
    return Emotion.from_scores({name: fixed.get(name, rest) for name in labels})


def landmarks_for(box: Box) -> np.ndarray:
    """Five landmarks placed where they sit in a frontal face of this box (the astronaut's proportions)."""
    ref = ASTRONAUT_FACE
    rel = (ASTRONAUT_LANDMARKS - np.array([ref.x, ref.y], dtype=np.float32)) / np.array([ref.w, ref.h], np.float32)
    return (rel * np.array([box.w, box.h], dtype=np.float32) + np.array([box.x, box.y], dtype=np.float32)).astype(
        np.float32
    )


def detection(box: Box | tuple[float, float, float, float] = ASTRONAUT_FACE, score: float = 0.99) -> Detection:
    box = box if isinstance(box, Box) else Box(*map(float, box))
    return Detection(box=box, score=score, landmarks=landmarks_for(box))


def face(
    box: Box | tuple[float, float, float, float] = ASTRONAUT_FACE,
    label: str = "happy",
    confidence: float = 0.8,
    *,
    score: float = 0.99,
    probs: Mapping[str, float] | None = None,
    quality: float | None = None,
    claim: bool = True,
) -> Face:
    """A face; ``quality`` gives it a measured quality of that score (None: not measured)."""
    q = None if quality is None else quality_of(quality, score)
    return Face(detection(box, score), emotion(label, confidence, probs=probs), q, claim)


def quality_of(score: float, det_score: float = 0.99) -> Quality:
    """A Quality with this combined score and plausible terms for a frontal face."""
    return Quality(size=90.0, sharpness=150.0, brightness=120.0, yaw=0.05, pitch=0.02, det_score=det_score, score=score)


def face_events(n: int, *, camera: str = "cam0", faces_per_frame: int = 1) -> list:
    """``n`` real events from the tracker and the policy (every_frame mode: one per face per frame)."""
    from edge_fer.config.settings import EventsSettings
    from edge_fer.events import EventPolicy, ModelInfo
    from edge_fer.tracking.tracker import Tracker

    policy = EventPolicy(
        EventsSettings(mode="every_frame"),
        device="test-device",
        camera=camera,
        run_id="0123456789ab",
        model=ModelInfo("mini_xception_fer", "6a7c5d9f00b3"),
    )
    tracker, events, i = Tracker(), [], 0
    while len(events) < n:
        faces = [
            face((20 + 5 * i + 150 * k, 40 + 120 * k, 80, 96), quality=None if k else 0.1 + 0.8 * (i % 2))
            for k in range(faces_per_frame)
        ]
        events += policy.events(tracker.update(faces, i / 15, i), faces, 1_796_017_819.0 + i / 15)
        i += 1
    return events[:n]

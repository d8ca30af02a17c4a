"""Drawing results on frames for video files and previews, and blurring faces for privacy.

``annotate(frame, faces) -> frame`` never touches its input: the captured image may still be in use by
another output. With ``blur=True`` faces are made unrecognisable before anything is drawn, so every
image that leaves through an annotated output is blurred.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from edge_fer.tracking.tracker import TrackUpdate
from edge_fer.vision.types import Box, Face

# BGR, picked to stay distinguishable on skin, walls and for the common colour blindnesses.
EMOTION_COLORS: dict[str, tuple[int, int, int]] = {
    "angry": (40, 40, 230),
    "disgust": (40, 150, 40),
    "fear": (170, 60, 170),
    "happy": (0, 210, 255),
    "neutral": (200, 200, 200),
    "sad": (220, 120, 20),
    "surprise": (0, 140, 255),
}
_DEFAULT_COLOR = (255, 255, 255)
_ABSTAIN_COLOR = (128, 128, 128)  # a face edge-fer does not judge (claim false): grey, label in brackets


@dataclass(frozen=True, slots=True)
class AnnotatedFace:
    """What is drawn for one face. ``track_id`` None: not (yet) a confirmed track, drawn thinner.
    ``claim`` False: edge-fer abstains on it, drawn grey with the label in brackets."""

    box: Box
    label: str | None = None
    confidence: float | None = None
    track_id: int | None = None
    landmarks: np.ndarray | None = None
    claim: bool = True

    @classmethod
    def from_face(cls, face: Face, track_id: int | None = None) -> AnnotatedFace:
        emotion = face.emotion
        return cls(face.box, emotion.label, emotion.confidence, track_id, face.detection.landmarks, face.claim)


def faces_for_annotation(faces: Sequence[Face], update: TrackUpdate | None = None) -> list[AnnotatedFace]:
    """Faces of one frame as drawn: tracked faces show their published (smoothed) emotion, others the
    classifier's raw output."""
    if update is None:
        return [AnnotatedFace.from_face(face) for face in faces]
    tracks = {state.track_id: state for state in update.present}
    out = []
    for face, track_id in zip(faces, update.face_track_ids or (None,) * len(faces)):
        state = tracks.get(track_id) if track_id is not None else None
        if state is None:
            out.append(AnnotatedFace.from_face(face))
        else:
            out.append(
                AnnotatedFace(
                    face.box, state.emotion, state.confidence, track_id, face.detection.landmarks, state.claim
                )
            )
    return out


def _clip_region(box: Box, enlarge: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    dx, dy = box.w * enlarge, box.h * enlarge
    x1, y1 = max(0, int(np.floor(box.x - dx))), max(0, int(np.floor(box.y - dy)))
    x2, y2 = min(width, int(np.ceil(box.x2 + dx))), min(height, int(np.ceil(box.y2 + dy)))
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def _blur_in_place(image: np.ndarray, boxes: Iterable[Box], enlarge: float) -> None:
    """Pixelate each region to about 6 cells across its shorter side, then smooth the cells away: the
    result keeps a face's average colours and nothing that identifies it, at the same cost for any size."""
    import cv2

    height, width = image.shape[:2]
    for box in boxes:
        region = _clip_region(box, enlarge, width, height)
        if region is None:
            continue
        x1, y1, x2, y2 = region
        roi = image[y1:y2, x1:x2]
        h, w = roi.shape[:2]
        cell = max(1.0, min(w, h) / 6.0)
        small = cv2.resize(roi, (max(1, round(w / cell)), max(1, round(h / cell))), interpolation=cv2.INTER_AREA)
        smooth = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        image[y1:y2, x1:x2] = cv2.GaussianBlur(smooth, (0, 0), sigmaX=max(0.5, cell / 2.0))


def blur_faces(image: np.ndarray, boxes: Iterable[Box], *, enlarge: float = 0.15) -> np.ndarray:
    """A copy of ``image`` with each box (grown by ``enlarge`` of its size on every side, to take hair and
    chin along) made unrecognisable."""
    out = image.copy()
    _blur_in_place(out, boxes, enlarge)
    return out


def _pt(x: float, y: float, limit: int) -> tuple[int, int]:
    # OpenCV clips drawing itself but needs int coordinates in a sane range
    return int(np.clip(round(x), -limit, limit)), int(np.clip(round(y), -limit, limit))


def _text(image: np.ndarray, text: str, org: tuple[int, int], scale: float, color, thickness: int) -> None:
    """Text on a filled dark strip so it stays readable on any background; kept inside the image."""
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    height, width = image.shape[:2]
    x = min(max(org[0], 0), max(0, width - tw - 4))
    y = min(max(org[1], th + 4), height - base - 2)
    cv2.rectangle(image, (x, y - th - 4), (x + tw + 4, y + base + 2), (30, 30, 30), cv2.FILLED)
    cv2.putText(image, text, (x + 2, y), font, scale, color, thickness, cv2.LINE_AA)


def annotate(
    image: np.ndarray, faces: Sequence[AnnotatedFace], *, fps: float | None = None, blur: bool = False
) -> np.ndarray:
    """A new image with each face's box, landmarks, ``#id label 87%`` and an fps overlay drawn on it."""
    import cv2

    out = image.copy()
    if blur:
        _blur_in_place(out, (face.box for face in faces), 0.15)
    height, width = out.shape[:2]
    limit = 4 * max(width, height)
    thick = max(1, round(min(width, height) / 360))
    scale = max(0.4, min(width, height) / 900)
    for face in faces:
        color = EMOTION_COLORS.get(face.label or "", _DEFAULT_COLOR) if face.claim else _ABSTAIN_COLOR
        box = face.box
        line = thick if face.track_id is None else thick + 1
        cv2.rectangle(out, _pt(box.x, box.y, limit), _pt(box.x2, box.y2, limit), color, line, cv2.LINE_AA)
        if face.landmarks is not None:
            for x, y in np.asarray(face.landmarks, dtype=np.float64):
                cv2.circle(out, _pt(x, y, limit), thick + 1, (0, 255, 0), cv2.FILLED, cv2.LINE_AA)
        parts = [f"#{face.track_id}"] if face.track_id is not None else []
        if face.label:
            parts.append(face.label if face.claim else f"({face.label})")
        if face.confidence is not None:
            parts.append(f"{100 * face.confidence:.0f}%")
        if parts:
            x, y = _pt(box.x, box.y - 2 * thick, limit)
            _text(out, " ".join(parts), (x, y), scale, color, thick)
    if fps is not None:
        _text(out, f"{fps:.1f} fps", (4, 4), scale, (255, 255, 255), thick)
    return out


def annotate_faces(image_bgr: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """A copy of a still image with each face's box, landmarks, emotion and confidence drawn on it
    (``edge-fer analyze --annotate``): the same drawing as the video outputs, so both look alike."""
    return annotate(image_bgr, [AnnotatedFace.from_face(face) for face in faces])

"""Detect, align and classify every face of one frame: what ``edge-fer analyze`` and the daemon both call.

All faces of a frame go through the classifier in one batch, because one inference over N crops costs
far less than N inferences on a small CPU.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge_fer.vision.align import DEFAULT_MARGIN, DEFAULT_MODE, FaceAligner
from edge_fer.vision.onnx_session import DEFAULT_FLIP
from edge_fer.vision.types import Face

log = logging.getLogger("edge_fer.analyzer")


class FaceAnalyzer:
    """One frame in, its faces (box, landmarks, emotion) out, sorted by detection score."""

    def __init__(self, detector, aligner: FaceAligner | None, classifier) -> None:
        self.detector = detector
        self.classifier = classifier
        self.aligner = aligner or FaceAligner(size=max(classifier.input_size))

    @classmethod
    def create(
        cls,
        models: Sequence[str | Path] | None = None,
        flip: bool = DEFAULT_FLIP,
        min_face_size: float = 20.0,
        align_mode: str = DEFAULT_MODE,
        margin: float = DEFAULT_MARGIN,
        threads: int = 1,
    ) -> FaceAnalyzer:
        """The shipped detector and classifier (or ``models``) with the measured default alignment."""
        from edge_fer.vision.emotion import EmotionClassifier
        from edge_fer.vision.mtcnn import DetectorConfig, MtcnnDetector

        classifier = EmotionClassifier(models, flip=flip, threads=threads)
        detector = MtcnnDetector(DetectorConfig(min_face_size=min_face_size, threads=threads))
        aligner = FaceAligner(size=max(classifier.input_size), mode=align_mode, margin=margin)
        return cls(detector, aligner, classifier)

    def analyze(self, image_bgr: np.ndarray) -> list[Face]:
        detections = self.detector.detect(image_bgr)
        if not detections:
            return []
        crops = self.aligner.align_all(image_bgr, detections)
        emotions = self.classifier.classify(crops)
        log.debug("%d faces: %s", len(detections), ", ".join(e.label for e in emotions))
        return [Face(detection, emotion) for detection, emotion in zip(detections, emotions)]


def annotate_faces(image_bgr: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """A copy of the image with each face's box, landmarks, emotion and confidence drawn on it.

    The drawing itself lives in ``edge_fer.outputs.annotate`` (shared with the video outputs), so that a
    still image and a video frame look the same.
    """
    from edge_fer.outputs.annotate import AnnotatedFace, annotate

    return annotate(image_bgr, [AnnotatedFace.from_face(face) for face in faces])

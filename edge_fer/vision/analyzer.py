"""Detect, align and classify every face of one frame: what ``edge-fer analyze``, ``bench`` and the daemon all call.

All faces of a frame go through the classifier in one batch, because one inference over N crops costs
far less than N inferences on a small CPU.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edge_fer.vision.align import DEFAULT_MARGIN, FaceAligner
from edge_fer.vision.quality import ClaimRule, measure
from edge_fer.vision.types import Detection, Face

if TYPE_CHECKING:
    from edge_fer.config.settings import ClassifierSection, DetectorSettings

log = logging.getLogger("edge_fer.analyzer")

Detect = Callable[[np.ndarray], Sequence[Detection]]


@dataclass(frozen=True, slots=True)
class Analysis:
    """One frame's faces, sorted by detection score, and what finding them cost, so that the pipeline's
    meters and ``edge-fer bench`` read the timings instead of wrapping the analyzer."""

    faces: tuple[Face, ...]
    detect_ms: float
    classify_ms: float  # alignment, classification and quality of all faces together; 0 without faces

    @property
    def classify_ms_per_face(self) -> float | None:
        return self.classify_ms / len(self.faces) if self.faces else None


class FaceAnalyzer:
    """One frame in, its faces (box, landmarks, emotion) out: the one analysis path of ``edge-fer analyze``,
    ``edge-fer bench`` and the daemon, so that they find the same faces in the same image.

    A detection scored below ``min_score`` or whose box is smaller than ``min_face_size`` px on its shorter
    side is dropped before classification: the detector's pyramid only bounds the size it looks for, and its
    box regression can still report a smaller box. Every face kept gets its quality and, by ``claim``, whether
    edge-fer stands by its emotion.
    """

    def __init__(
        self,
        detector,
        aligner: FaceAligner | None,
        classifier,
        *,
        min_score: float = 0.0,
        min_face_size: float = 0.0,
        claim: ClaimRule | None = None,
    ) -> None:
        self.detector = detector
        self.classifier = classifier
        self.aligner = aligner or FaceAligner(size=max(classifier.input_size))
        self.min_score = float(min_score)
        self.min_face_size = float(min_face_size)
        self.claim = claim or ClaimRule()

    @classmethod
    def from_settings(cls, detector: DetectorSettings, classifier: ClassifierSection) -> FaceAnalyzer:
        """Detector, aligner and classifier as the ``detector`` and ``classifier`` config sections say; their
        defaults (``edge_fer.config.settings``) are the one documented set, for the daemon, ``analyze`` and
        ``bench`` alike. ModelError (one line) when a model won't load."""
        from edge_fer.vision.emotion import EmotionClassifier
        from edge_fer.vision.mtcnn import MtcnnDetector

        emotion = EmotionClassifier(
            list(classifier.models) or None,
            flip=classifier.flip,
            threads=classifier.threads,
            relight=classifier.relight_dark,
            providers=classifier.providers,
            provider_fallback=classifier.provider_fallback,
        )
        mtcnn = MtcnnDetector(detector)
        margin = DEFAULT_MARGIN if classifier.margin is None else classifier.margin
        aligner = FaceAligner(size=max(emotion.input_size), mode=classifier.align, margin=margin)
        return cls(
            mtcnn,
            aligner,
            emotion,
            min_score=detector.min_score,
            min_face_size=detector.min_face_size,
            claim=ClaimRule.from_settings(classifier.claim),
        )

    def usable(self, detection: Detection) -> bool:
        box = detection.box
        return detection.score >= self.min_score and min(box.w, box.h) >= self.min_face_size

    def analyze(self, image_bgr: np.ndarray, detect: Detect | None = None) -> Analysis:
        """Faces in the image. ``detect`` replaces the detector's full scan (a camera's gated detection:
        ``lambda image: gate.detect(image, t)``)."""
        t0 = time.perf_counter()
        found = (detect or self.detector.detect)(image_bgr)
        detections = [d for d in found if self.usable(d)]
        t1 = time.perf_counter()
        if not detections:
            return Analysis((), (t1 - t0) * 1000.0, 0.0)
        crops = self.aligner.align_all(image_bgr, detections)
        emotions = self.classifier.classify(crops)
        faces = []
        for detection, emotion in zip(detections, emotions):
            quality = measure(image_bgr, detection)
            faces.append(Face(detection, emotion, quality, self.claim.allows(quality.score, emotion.confidence)))
        t2 = time.perf_counter()
        log.debug("%d faces: %s", len(faces), ", ".join(f.emotion.label for f in faces))
        return Analysis(tuple(faces), (t1 - t0) * 1000.0, (t2 - t1) * 1000.0)

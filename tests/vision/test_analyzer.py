"""The whole still-image path (detect, align, classify in one batch) on real photo scenes."""

import json

import numpy as np
import pytest

from edge_fer.config.settings import ClassifierSection, DetectorSettings
from edge_fer.outputs.annotate import annotate_faces
from edge_fer.vision.analyzer import FaceAnalyzer
from edge_fer.vision.emotion import EmotionClassifier
from edge_fer.vision.mtcnn import MtcnnDetector
from edge_fer.vision.types import EMOTIONS, LANDMARK_NAMES, Box, Detection
from tests.photos import astronaut_bgr, face_source, make_scene


class CountingClassifier:
    """The real classifier, recording the size of every batch it is given."""

    def __init__(self) -> None:
        self.inner = EmotionClassifier()
        self.labels = self.inner.labels
        self.input_size = self.inner.input_size
        self.batches: list[int] = []

    def classify(self, crops):
        self.batches.append(len(crops))
        return self.inner.classify(crops)


def make(detector: dict | None = None, classifier: dict | None = None) -> FaceAnalyzer:
    """The analyzer the daemon and ``analyze`` build, from config sections."""
    return FaceAnalyzer.from_settings(DetectorSettings(**(detector or {})), ClassifierSection(**(classifier or {})))


def test_the_astronaut_is_found_and_happy(analyzer):
    faces = analyzer.analyze(astronaut_bgr()).faces
    assert len(faces) == 1
    face = faces[0]
    assert face.box.iou(Box(*face_source("astronaut").face)) > 0.75
    assert face.emotion.label == "happy" and face.emotion.confidence > 0.9
    assert list(face.emotion.scores) == list(EMOTIONS)
    out = json.loads(json.dumps(face.to_json()))
    assert list(out["landmarks"]) == list(LANDMARK_NAMES)
    assert face.claim is True and out["claim"] is True
    assert out["quality"] == pytest.approx(face.quality.score, abs=1e-3) and face.quality.score > 0.8
    assert set(out["quality_terms"]) == {"size", "sharpness", "brightness", "yaw", "pitch"}


def test_a_dark_blurred_face_is_reported_but_not_claimed():
    import cv2

    poor = (cv2.GaussianBlur(astronaut_bgr(), (0, 0), 3) * 0.2).astype(np.uint8)
    faces = make({"min_score": 0.5}).analyze(poor).faces
    assert len(faces) == 1
    assert faces[0].quality.score < 0.2 and faces[0].claim is False
    assert faces[0].emotion.label in EMOTIONS  # the top class stays, for reference
    assert make({"min_score": 0.5}, {"claim": {"min_quality": 0}}).analyze(poor).faces[0].claim is True


def test_the_confidence_floor_of_the_claim_rule_applies():
    faces = make(classifier={"claim": {"min_confidence": 1.0}}).analyze(astronaut_bgr()).faces
    assert faces[0].emotion.confidence < 1.0 and faces[0].claim is False


def test_all_faces_of_a_frame_go_to_the_classifier_in_one_batch():
    counting = CountingClassifier()
    analyzer = FaceAnalyzer(MtcnnDetector(), None, counting)
    scene = make_scene(640, 480, [(150, 150, 90, False), (420, 160, 70, True), (500, 360, 60, False)], "chelsea")
    result = analyzer.analyze(scene.bgr)
    faces = result.faces
    assert counting.batches == [3] and len(faces) == 3
    assert result.detect_ms > 0 and result.classify_ms > 0
    assert result.classify_ms_per_face == pytest.approx(result.classify_ms / 3)
    placed = [Box(*p.box) for p in scene.faces]
    for face in faces:
        assert max(face.box.iou(p) for p in placed) > 0.6
        assert face.emotion.label == "happy"  # every pasted face is the smiling astronaut
    scores = [face.detection.score for face in faces]
    assert scores == sorted(scores, reverse=True)


def test_a_frame_without_faces_skips_the_classifier():
    counting = CountingClassifier()
    empty = make_scene(320, 240, [], "brick").bgr
    result = FaceAnalyzer(MtcnnDetector(), None, counting).analyze(empty)
    assert result.faces == () and result.classify_ms == 0 and result.classify_ms_per_face is None
    assert counting.batches == []


def test_crop_size_follows_the_model_and_flip_agrees():
    plain = make()
    assert plain.aligner.size == 64 and plain.aligner.mode == "similarity"
    flipped = make(classifier={"flip": True}).analyze(astronaut_bgr()).faces
    assert flipped[0].emotion.label == "happy"


def test_box_mode_and_min_face_size_are_passed_through():
    scene = make_scene(640, 480, [(200, 200, 140, False), (480, 300, 26, False)], "grass")
    assert len(make({"min_face_size": 20}).analyze(scene.bgr).faces) == 2
    big_only = make({"min_face_size": 80}, {"align": "box", "margin": 0.1})
    assert (big_only.aligner.mode, big_only.aligner.margin) == ("box", 0.1)
    assert len(big_only.analyze(scene.bgr).faces) == 1


def test_the_defaults_are_the_config_defaults():
    defaults = DetectorSettings()
    analyzer = make()
    assert (analyzer.min_score, analyzer.min_face_size) == (defaults.min_score, defaults.min_face_size)


def test_detections_below_the_score_floor_or_the_smallest_face_are_dropped_before_classifying():
    counting = CountingClassifier()
    analyzer = FaceAnalyzer(MtcnnDetector(), None, counting, min_score=0.9, min_face_size=40)
    image = astronaut_bgr()
    real = max(analyzer.detector.detect(image), key=lambda d: d.score)
    faint = Detection(real.box, 0.5, real.landmarks)
    small = Detection(Box(10, 10, 39, 60), 0.99, real.landmarks)
    result = analyzer.analyze(image, detect=lambda img: [real, faint, small])
    assert [f.detection for f in result.faces] == [real] and counting.batches == [1]


def test_a_given_detect_replaces_the_full_scan():
    seen = []
    analyzer = make()
    result = analyzer.analyze(astronaut_bgr(), detect=lambda img: seen.append(img.shape) or [])
    assert seen == [(512, 512, 3)] and result.faces == ()


def test_annotation_draws_on_a_copy(analyzer):
    photo = astronaut_bgr()
    before = photo.copy()
    faces = analyzer.analyze(photo).faces
    drawn = annotate_faces(photo, faces)
    np.testing.assert_array_equal(photo, before)
    assert drawn.shape == photo.shape
    x, y, w, h = (int(v) for v in faces[0].box.as_list(0))
    changed = np.any(drawn != photo, axis=2)
    assert changed[y - 2 : y + h + 3, x - 2 : x + w + 3].sum() > 2 * (w + h)  # box outline and label
    assert not changed[300:, :].any()  # nothing drawn far from the face

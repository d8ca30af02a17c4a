"""The whole still-image path (detect, align, classify in one batch) on real photo scenes."""

import json

import numpy as np
import pytest

from edge_fer.vision.align import FaceAligner
from edge_fer.vision.analyzer import FaceAnalyzer, annotate_faces
from edge_fer.vision.emotion import EmotionClassifier
from edge_fer.vision.mtcnn import MtcnnDetector
from edge_fer.vision.types import EMOTIONS, LANDMARK_NAMES, Box
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


@pytest.fixture(scope="module")
def analyzer():
    return FaceAnalyzer.create()


def test_the_astronaut_is_found_and_happy(analyzer):
    faces = analyzer.analyze(astronaut_bgr())
    assert len(faces) == 1
    face = faces[0]
    assert face.box.iou(Box(*face_source("astronaut").face)) > 0.75
    assert face.emotion.label == "happy" and face.emotion.confidence > 0.9
    assert list(face.emotion.scores) == list(EMOTIONS)
    out = json.loads(json.dumps(face.to_json()))
    assert list(out["landmarks"]) == list(LANDMARK_NAMES)


def test_all_faces_of_a_frame_go_to_the_classifier_in_one_batch():
    counting = CountingClassifier()
    analyzer = FaceAnalyzer(MtcnnDetector(), None, counting)
    scene = make_scene(640, 480, [(150, 150, 90, False), (420, 160, 70, True), (500, 360, 60, False)], "chelsea")
    faces = analyzer.analyze(scene.bgr)
    assert counting.batches == [3] and len(faces) == 3
    placed = [Box(*p.box) for p in scene.faces]
    for face in faces:
        assert max(face.box.iou(p) for p in placed) > 0.6
        assert face.emotion.label == "happy"  # every pasted face is the smiling astronaut
    scores = [face.detection.score for face in faces]
    assert scores == sorted(scores, reverse=True)


def test_a_frame_without_faces_skips_the_classifier():
    counting = CountingClassifier()
    empty = make_scene(320, 240, [], "brick").bgr
    assert FaceAnalyzer(MtcnnDetector(), None, counting).analyze(empty) == []
    assert counting.batches == []


def test_crop_size_follows_the_model_and_flip_agrees():
    plain = FaceAnalyzer.create()
    assert plain.aligner.size == 64 and plain.aligner.config.mode == "similarity"
    flipped = FaceAnalyzer.create(flip=True).analyze(astronaut_bgr())
    assert flipped[0].emotion.label == "happy"


def test_box_mode_and_min_face_size_are_passed_through():
    scene = make_scene(640, 480, [(200, 200, 140, False), (480, 300, 26, False)], "grass")
    assert len(FaceAnalyzer.create(min_face_size=20).analyze(scene.bgr)) == 2
    big_only = FaceAnalyzer.create(min_face_size=80, align_mode="box", margin=0.1)
    assert big_only.aligner.config == FaceAligner(64, "box", 0.1).config
    assert len(big_only.analyze(scene.bgr)) == 1


def test_annotation_draws_on_a_copy(analyzer):
    photo = astronaut_bgr()
    before = photo.copy()
    faces = analyzer.analyze(photo)
    drawn = annotate_faces(photo, faces)
    np.testing.assert_array_equal(photo, before)
    assert drawn.shape == photo.shape
    x, y, w, h = (int(v) for v in faces[0].box.as_list(0))
    changed = np.any(drawn != photo, axis=2)
    assert changed[y - 2 : y + h + 3, x - 2 : x + w + 3].sum() > 2 * (w + h)  # box outline and label
    assert not changed[300:, :].any()  # nothing drawn far from the face

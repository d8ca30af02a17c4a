import math

import numpy as np
import pytest

from edge_fer.vision.types import Box, Detection, Emotion, Face


def test_box_iou_and_clip():
    a = Box(0, 0, 10, 10)
    assert a.iou(Box(0, 0, 10, 10)) == 1.0
    assert a.iou(Box(20, 20, 5, 5)) == 0.0
    assert a.iou(Box(5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert Box(-5, -5, 20, 20).clip(10, 8) == Box(0, 0, 10, 8)


@pytest.mark.parametrize("args", [(0, 0, -1, 1), (0, 0, 1, -1), (math.nan, 0, 1, 1), (0, math.inf, 1, 1)])
def test_box_rejects_bad_values(args):
    with pytest.raises(ValueError):
        Box(*args)


def test_detection_validates_score_and_landmarks():
    with pytest.raises(ValueError, match="outside"):
        Detection(Box(0, 0, 1, 1), 1.5)
    with pytest.raises(ValueError, match="five finite"):
        Detection(Box(0, 0, 1, 1), 0.9, np.zeros((4, 2)))
    d = Detection(Box(0, 0, 1, 1), 0.9, np.arange(10).reshape(5, 2))
    assert d.landmarks_dict()["right_eye"] == [2.0, 3.0]


def test_emotion_from_scores_picks_argmax_and_face_serialises():
    e = Emotion.from_scores({"happy": 0.7, "sad": 0.2, "neutral": 0.1})
    assert (e.label, e.confidence) == ("happy", 0.7)
    with pytest.raises(ValueError):
        Emotion("angry", 0.5, {"happy": 0.5})
    face = Face(Detection(Box(1, 2, 3, 4), 0.99), e)
    assert face.to_json()["box"] == [1.0, 2.0, 3.0, 4.0]
    assert face.to_json()["landmarks"] is None

"""Annotator on the real astronaut photo: what is drawn, what is left alone, and blurring that really blurs."""

import numpy as np
import pytest

from edge_fer.config.settings import TrackingSettings
from edge_fer.outputs.annotate import EMOTION_COLORS, AnnotatedFace, annotate, blur_faces, faces_for_annotation
from edge_fer.tracking.tracker import Tracker
from edge_fer.vision.types import Box
from tests import factories

cv2 = pytest.importorskip("cv2")

FACE = factories.ASTRONAUT_FACE


@pytest.fixture
def photo():
    return factories.astronaut_bgr()


def crop(image, box, pad=0):
    return image[int(box.y) - pad : int(box.y2) + pad, int(box.x) - pad : int(box.x2) + pad]


def sharpness(image):
    """Variance of the Laplacian: high for detail (eyes, hair), near zero for a smooth patch."""
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def test_draws_on_a_copy_and_leaves_the_input_alone(photo):
    before = photo.copy()
    face = AnnotatedFace.from_face(factories.face(FACE, "happy", 0.87), track_id=3)
    out = annotate(photo, [face], fps=14.6)
    assert np.array_equal(photo, before)
    assert out is not photo and not np.shares_memory(out, photo)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.any(crop(out, FACE, pad=3) != crop(photo, FACE, pad=3))
    # the box outline has the emotion's colour on its left edge
    left_edge = out[int(FACE.y) + 20 : int(FACE.y2) - 20, int(FACE.x)]
    assert np.all(left_edge == EMOTION_COLORS["happy"])
    # the label sits above the box, the fps overlay in the top-left corner
    assert np.any(out[int(FACE.y) - 25 : int(FACE.y) - 2, int(FACE.x) : int(FACE.x) + 80] != photo[40:63, 170:250])
    assert np.any(out[0:25, 0:80] != photo[0:25, 0:80])


def test_landmarks_are_drawn_at_their_points(photo):
    face = AnnotatedFace.from_face(factories.face(FACE))
    out = annotate(photo, [face])
    for x, y in factories.ASTRONAUT_LANDMARKS:
        assert tuple(out[int(y), int(x)]) == (0, 255, 0)
    without = annotate(photo, [AnnotatedFace(FACE, "happy", 0.9)])
    assert not any(tuple(without[int(y), int(x)]) == (0, 255, 0) for x, y in factories.ASTRONAUT_LANDMARKS)


def test_blur_destroys_the_detail_of_the_face_and_nothing_else(photo):
    out = blur_faces(photo, [FACE])
    before, after = sharpness(crop(photo, FACE)), sharpness(crop(out, FACE))
    assert before > 100 and after < before / 50, (before, after)
    # far from the face (outside the 15% margin) nothing changed
    x1, y1 = int(FACE.x - 0.15 * FACE.w) - 1, int(FACE.y - 0.15 * FACE.h) - 1
    x2, y2 = int(FACE.x2 + 0.15 * FACE.w) + 2, int(FACE.y2 + 0.15 * FACE.h) + 2
    mask = np.ones(photo.shape[:2], bool)
    mask[y1:y2, x1:x2] = False
    assert np.array_equal(out[mask], photo[mask])
    # and the blurred face no longer matches the original: it is not a light softening
    assert np.abs(crop(out, FACE).astype(int) - crop(photo, FACE).astype(int)).mean() > 10


def test_annotate_with_blur_blurs_before_drawing(photo):
    face = AnnotatedFace.from_face(factories.face(FACE))
    out = annotate(photo, [face], blur=True)
    inner = Box(FACE.x + 12, FACE.y + 12, FACE.w - 24, FACE.h - 24)  # inside the outline
    # the landmarks (green dots) are drawn on top, so measure around them on the forehead and cheeks
    forehead = Box(FACE.x + 15, FACE.y + 12, FACE.w - 30, 25)
    assert sharpness(crop(out, forehead)) < sharpness(crop(photo, forehead)) / 20
    assert np.any(crop(out, inner) != crop(photo, inner))


def test_faces_partly_outside_the_frame_and_empty_lists(photo):
    outside = [
        AnnotatedFace(Box(-60, -40, 120, 120), "sad", 0.5, 1, factories.landmarks_for(Box(-60, -40, 120, 120))),
        AnnotatedFace(Box(470, 480, 100, 100), "angry", 0.7),
        AnnotatedFace(Box(600, 600, 50, 50), "fear", 0.6),  # wholly outside
        AnnotatedFace(Box(-1e7, 5, 1e6, 10), None, None),
    ]
    out = annotate(photo, outside, blur=True, fps=30.0)
    assert out.shape == photo.shape
    blurred = blur_faces(photo, [face.box for face in outside])
    assert sharpness(blurred[0:80, 0:60]) < sharpness(photo[0:80, 0:60]) / 20  # the visible part of the first
    assert np.any(out[0:80, 0:60] != photo[0:80, 0:60])
    assert np.array_equal(annotate(photo, []), photo)
    assert np.array_equal(blur_faces(photo, []), photo)


def test_tracked_faces_show_their_published_emotion():
    tracker = Tracker(TrackingSettings(min_hits=2, smoothing_tau=1.0))
    tracker.update([factories.face(FACE, "happy", 0.9)], 0.0, 0)
    faces = [
        factories.face(FACE, "sad", 0.9),
        factories.face((10, 300, 20, 20), "fear", 0.7),
    ]  # second: new, unconfirmed
    update = tracker.update(faces, 0.1, 1)
    drawn = faces_for_annotation(faces, update)
    assert (drawn[0].track_id, drawn[0].label) == (1, "happy")  # smoothed and held by hysteresis
    assert drawn[0].confidence == pytest.approx(update.present[0].confidence)
    assert (drawn[1].track_id, drawn[1].label, drawn[1].confidence) == (None, "fear", pytest.approx(0.7))
    assert [f.label for f in faces_for_annotation(faces)] == ["sad", "fear"]

"""The wild development set's scoring: labels file, matching, coverage and accuracy on claimed faces, report."""

from __future__ import annotations

import json
from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from edge_fer.offline.wild import (
    WildSet,
    WildSetError,
    contact_sheet,
    evaluate_wild,
    match,
    write_wild_report,
)
from edge_fer.vision.types import Box
from tests.factories import ASTRONAUT_FACE, astronaut_bgr, face

HEADER = "image,x,y,w,h,label\n"


def _labels(tmp_path, text: str, name: str = "labels.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def photos(tmp_path):
    """Two photos: the astronaut (a happy face and a labelled patch of wall) and its mirror image."""
    root = tmp_path / "images"
    root.mkdir()
    image = astronaut_bgr()
    cv2.imwrite(str(root / "a.png"), image)
    cv2.imwrite(str(root / "b.png"), image[:, ::-1])
    b = ASTRONAUT_FACE
    mirrored = Box(512 - b.x - b.w, b.y, b.w, b.h)
    rows = [
        f"a.png,{b.x},{b.y},{b.w},{b.h},happy",
        "a.png,400,400,60,60,not_a_face",
        f"b.png,{mirrored.x},{mirrored.y},{mirrored.w},{mirrored.h},neutral",
    ]
    return _labels(tmp_path, HEADER + "\n".join(rows) + "\n"), root


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the header must be"),
        ("file,x,y,w,h,label\n", "the header must be"),
        (HEADER, "no labelled faces"),
        (HEADER + "a.png,1,2,3\n", ":2: expected 6 columns"),
        (HEADER + "a.png,1,2,x,4,happy\n", ":2: x, y, w, h must be finite"),
        (HEADER + "a.png,1,2,-3,4,happy\n", ":2: x, y, w, h must be finite"),
        (HEADER + "a.png,1,2,3,4,joyful\n", "label 'joyful' is not one of"),
        (HEADER + "../a.png,1,2,3,4,happy\n", "give a file name inside --root"),
        ("video,frame,x,y,w,h,label\nv.mp4,one,1,2,3,4,happy\n", "frame must be a whole number"),
    ],
)
def test_bad_labels_files_are_refused_with_file_and_line(tmp_path, text, message):
    with pytest.raises(WildSetError, match=message) as info:
        WildSet.load(_labels(tmp_path, text), tmp_path)
    assert str(tmp_path / "labels.csv") in str(info.value)


def test_root_must_be_a_directory(tmp_path):
    with pytest.raises(WildSetError, match="--root"):
        WildSet.load(_labels(tmp_path, HEADER + "a.png,1,2,3,4,happy\n"), tmp_path / "missing")


def test_matching_pairs_each_face_once_best_overlap_first():
    lf = [_lf(Box(0, 0, 100, 100)), _lf(Box(300, 0, 100, 100))]
    near, far, duplicate = face((5, 5, 100, 100)), face((300, 10, 100, 100)), face((20, 20, 100, 100))
    pairs = match(lf, [duplicate, far, near], iou=0.5)
    assert pairs[0][1] is near and pairs[1][1] is far
    assert match(lf, [face((600, 600, 50, 50))], iou=0.5) == [(lf[0], None), (lf[1], None)]


def _lf(box: Box, label: str = "happy"):
    from edge_fer.offline.wild import LabelledFace

    return LabelledFace("x.png", None, box, label)


@dataclass(frozen=True)
class _Abstaining:
    """A reported face whose pipeline abstained (``claim`` false): found, but not counted as an answer."""

    inner: object
    claim: bool = False

    @property
    def box(self):
        return self.inner.box

    @property
    def emotion(self):
        return self.inner.emotion


def test_coverage_accuracy_and_false_faces_from_scripted_answers(photos):
    labels, root = photos
    wild = WildSet.load(labels, root)
    answers = iter(
        [
            [face(ASTRONAUT_FACE, "happy", 0.9), face((400, 400, 60, 60), "sad", 0.6)],  # a.png: right + false face
            [_Abstaining(face((512 - 265, 70, 95, 115), "sad", 0.5))],  # b.png: found but abstains
        ]
    )
    result, _ = evaluate_wild(wild, lambda image: next(answers))
    assert len(result.faces) == 2 and len(result.claimed) == 1
    assert result.coverage == pytest.approx(0.5)
    assert result.metrics.accuracy == 1.0
    assert result.false_faces == 1
    summary = result.to_json()
    assert summary["claimed"] == 1 and summary["not_a_face_boxes"] == 1 and summary["false_faces"] == 1


def test_unreadable_pictures_are_counted_and_their_faces_unclaimed(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    wild = WildSet.load(_labels(tmp_path, HEADER + "broken.jpg,1,2,30,40,happy\nmissing.png,1,2,3,4,sad\n"), root)
    result, _ = evaluate_wild(wild, lambda image: pytest.fail("nothing should be analysed"))
    assert len(result.failures) == 2
    assert result.coverage == 0.0 and result.metrics.n == 0


def test_video_frames_are_read_in_one_pass(tmp_path):
    from tests.clips import frame_number, write_clip

    root = tmp_path / "videos"
    root.mkdir()
    write_clip(root / "clip.avi", frames=12, size=(320, 240))
    text = "video,frame,x,y,w,h,label\nclip.avi,9,0,0,10,10,happy\nclip.avi,3,0,0,10,10,sad\nclip.avi,40,0,0,5,5,sad\n"
    wild = WildSet.load(_labels(tmp_path, text), root)
    seen = []

    def analyze(image):
        seen.append(frame_number(image))
        return []

    result, _ = evaluate_wild(wild, analyze)
    assert seen == [3, 9]
    assert any("frame 40 cannot be read" in f for f in result.failures)


def test_real_pipeline_report_has_pictures_and_numbers(photos, tmp_path, analyzer):
    labels, root = photos
    wild = WildSet.load(labels, root)
    result, kept = evaluate_wild(wild, lambda image: analyzer.analyze(image).faces, keep_crops=True)
    assert len(result.claimed) == 2  # both real faces found, at both orientations
    happy = next(o for o in result.claimed if o.face.label == "happy")
    assert happy.predicted == "happy"  # the astronaut smiles
    files = write_wild_report(result, kept, tmp_path / "report", {"set": "test"})
    assert [f.name for f in files] == ["confusion_matrix.png", "mistakes.png", "report.json"]
    for png in files[:2]:
        assert cv2.imread(str(png)) is not None
    report = json.loads(files[2].read_text())
    assert report["set"] == "test" and report["labelled_faces"] == 2


def test_contact_sheet_shows_each_mistake(photos):
    labels, root = photos
    wild = WildSet.load(labels, root)
    answers = iter([[face(ASTRONAUT_FACE, "angry", 0.7)], [face((247, 70, 95, 115), "sad", 0.6)]])
    result, kept = evaluate_wild(wild, lambda image: next(answers), keep_crops=True)
    assert len(result.mistakes) == 2
    sheet = contact_sheet(result.mistakes, kept, tile=64)
    assert sheet.shape[1] == 2 * 64 and sheet.shape[0] > 64
    empty = contact_sheet([], {})
    assert empty.ndim == 3 and np.any(empty < 255)

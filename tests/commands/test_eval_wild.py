"""``edge-fer eval-wild`` on real photos labelled like the development set: the astronaut and its mirror image."""

from __future__ import annotations

import json

import cv2
import pytest

from edge_fer.cli import main
from tests.factories import ASTRONAUT_FACE, astronaut_bgr

HEADER = "image,x,y,w,h,label\n"


@pytest.fixture
def labelled(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    cv2.imwrite(str(root / "a.png"), astronaut_bgr())
    cv2.imwrite(str(root / "b.png"), astronaut_bgr()[:, ::-1])
    b = ASTRONAUT_FACE
    rows = [
        f"a.png,{b.x},{b.y},{b.w},{b.h},happy",
        f"b.png,{512 - b.x - b.w},{b.y},{b.w},{b.h},happy",
        "a.png,380,380,60,60,not_a_face",
    ]
    labels = tmp_path / "labels.csv"
    labels.write_text(HEADER + "\n".join(rows) + "\n")
    return labels, root


def test_json_summary_and_report(labelled, tmp_path, capsys):
    labels, root = labelled
    report = tmp_path / "report"
    assert main(["eval-wild", str(labels), "--root", str(root), "--json", "--report", str(report)]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["labelled_faces"] == 2 and summary["claimed"] == 2 and summary["coverage"] == 1.0
    assert summary["accuracy_on_claimed"] == 1.0  # the astronaut smiles, mirrored or not
    assert summary["not_a_face_boxes"] == 1 and summary["false_faces"] == 0
    assert summary["labels_file"] == str(labels) and summary["labels"][3] == "happy"
    for name in ("confusion_matrix.png", "mistakes.png"):
        assert cv2.imread(str(report / name)) is not None
    assert json.loads((report / "report.json").read_text())["claimed"] == 2
    assert "Traceback" not in err


def test_table_names_coverage_and_accuracy(labelled, capsys):
    labels, root = labelled
    assert main(["eval-wild", str(labels), "--root", str(root)]) == 0
    out, _ = capsys.readouterr()
    assert "2 labelled faces, 2 claimed (coverage 1.000), accuracy on claimed 1.0000" in out
    assert "0 of 1 non-face boxes reported as faces" in out


def test_unreadable_picture_exits_1_after_the_report(labelled, capsys):
    labels, root = labelled
    (root / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert main(["eval-wild", str(labels), "--root", str(root), "--json"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["claimed"] == 1
    assert err.strip().splitlines()[-1] == (
        "edge-fer eval-wild: 1 labelled pictures could not be read; their faces count as not found"
    )


@pytest.mark.parametrize(
    ("text", "root", "message"),
    [
        ("file,x\n", None, "the header must be"),
        (HEADER + "a.png,1,2,3,4,joy\n", None, "label 'joy' is not one of"),
        (HEADER + "a.png,1,2,3,4,happy\n", "missing", "not a directory"),
    ],
)
def test_bad_labels_exit_2_with_one_line(tmp_path, capsys, text, root, message):
    labels = tmp_path / "labels.csv"
    labels.write_text(text)
    assert main(["eval-wild", str(labels), "--root", str(tmp_path / root if root else tmp_path)]) == 2
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("edge-fer eval-wild: ")

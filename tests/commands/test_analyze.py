"""``edge-fer analyze`` on real photo scenes written to disk, next to every kind of bad file."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edge_fer.cli import main
from edge_fer.vision.types import EMOTIONS, LANDMARK_NAMES
from tests.photos import astronaut_bgr, make_scene


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    paths = {
        "astronaut": root / "astronaut.jpg",
        "group": root / "group.png",
        "empty_scene": root / "wall.png",
        "small_face": root / "small.png",
    }
    cv2.imwrite(str(paths["astronaut"]), astronaut_bgr())
    group = make_scene(640, 480, [(150, 150, 90, False), (420, 160, 70, True), (500, 360, 60, False)], "chelsea")
    cv2.imwrite(str(paths["group"]), group.bgr)
    cv2.imwrite(str(paths["empty_scene"]), make_scene(320, 240, [], "brick").bgr)
    cv2.imwrite(str(paths["small_face"]), make_scene(640, 480, [(320, 240, 26, False)], "gray").bgr)
    return paths


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_json_lines_one_per_image(images, capsys):
    paths = [str(images[k]) for k in ("astronaut", "group", "empty_scene")]
    assert main(["analyze", "--json", *paths]) == 0
    records = json_lines(capsys.readouterr().out)
    assert [r["image"] for r in records] == paths
    astronaut, group, wall = records
    assert (astronaut["width"], astronaut["height"]) == (512, 512)
    assert len(group["faces"]) == 3 and wall["faces"] == []
    face = astronaut["faces"][0]
    assert set(face) == {
        "box",
        "det_score",
        "landmarks",
        "emotion",
        "confidence",
        "scores",
        "claim",
        "quality",
        "quality_terms",
    }
    assert face["emotion"] == "happy" and face["confidence"] > 0.9
    assert list(face["landmarks"]) == list(LANDMARK_NAMES) and len(face["box"]) == 4
    assert list(face["scores"]) == list(EMOTIONS)


def test_table_output(images, capsys):
    assert main(["analyze", str(images["astronaut"]), str(images["empty_scene"])]) == 0
    out = capsys.readouterr().out
    assert f"{images['astronaut']} (512x512): 1 face" in out
    assert f"{images['empty_scene']} (320x240): 0 faces" in out
    assert "happy" in out


def test_min_face_and_flip(images, capsys):
    assert main(["analyze", "--json", "--flip", "--min-face", "20", str(images["small_face"])]) == 0
    assert len(json_lines(capsys.readouterr().out)[0]["faces"]) == 1
    assert main(["analyze", "--json", "--min-face", "80", str(images["small_face"])]) == 0
    assert json_lines(capsys.readouterr().out)[0]["faces"] == []


def test_the_smallest_face_by_default_is_the_daemons(images, capsys):
    """A 26 px face: below detector.min_face_size (28), so neither analyze nor the daemon reports it."""
    from edge_fer.config.settings import DetectorSettings

    assert DetectorSettings().min_face_size == 28
    assert main(["analyze", "--json", str(images["small_face"])]) == 0
    assert json_lines(capsys.readouterr().out)[0]["faces"] == []


def test_annotated_copies(images, tmp_path, capsys):
    other = tmp_path / "elsewhere"
    other.mkdir()
    again = other / "astronaut.jpg"
    again.write_bytes(images["astronaut"].read_bytes())
    out_dir = tmp_path / "annotated"
    args = ["analyze", "--annotate", str(out_dir), str(images["astronaut"]), str(again), str(images["group"])]
    assert main(args) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out_dir.iterdir()) == ["astronaut-2.jpg", "astronaut.jpg", "group.png"]
    original, drawn = cv2.imread(str(images["group"])), cv2.imread(str(out_dir / "group.png"))
    assert drawn.shape == original.shape
    assert np.any(drawn != original, axis=2).sum() > 500


def bad_files(root, good_jpeg: bytes) -> dict[str, str]:
    """Every kind of unusable input, with the words its error line must carry."""
    (root / "zero.jpg").write_bytes(b"")
    (root / "cut.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    (root / "notes.png").write_text("not pixels\n" * 50)
    garbled = bytearray(good_jpeg)
    start = garbled.find(b"\xff\xda")
    garbled[start - 300 : start + 20] = bytes(320)
    (root / "garbled.jpg").write_bytes(bytes(garbled))
    (root / "folder.jpg").mkdir()
    return {
        str(root / "missing.jpg"): "no such file",
        str(root / "folder.jpg"): "is a directory without images",
        str(root / "zero.jpg"): "empty file",
        str(root / "cut.jpg"): "truncated JPEG",
        str(root / "notes.png"): "not an image",
        str(root / "garbled.jpg"): "corrupt JPEG",
    }


def test_bad_files_get_one_line_each_and_the_rest_is_processed(images, tmp_path, capsys):
    expected = bad_files(tmp_path, images["astronaut"].read_bytes())
    bad = list(expected)
    args = ["analyze", "--json", bad[0], str(images["astronaut"]), *bad[1:], str(images["group"])]
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert [r["image"] for r in json_lines(out)] == [str(images["astronaut"]), str(images["group"])]
    lines = err.strip().splitlines()
    assert len(lines) == len(bad) + 1
    for line, (path, words) in zip(lines, expected.items()):
        assert line.startswith(f"edge-fer analyze: {path}: ") and words in line, line
    assert lines[-1] == f"edge-fer analyze: {len(bad)} of {len(bad) + 2} images failed"


def test_pixel_limit_refuses_before_decoding(images, tmp_path, capsys):
    bomb = tmp_path / "bomb.png"
    data = bytearray(images["group"].read_bytes())
    data[16:24] = (60_000).to_bytes(4, "big") + (60_000).to_bytes(4, "big")
    bomb.write_bytes(bytes(data))
    assert main(["analyze", "--json", str(bomb), str(images["astronaut"])]) == 1
    out, err = capsys.readouterr()
    assert "bomb.png: 60000x60000 is 3600.0 megapixels, over the limit of 40" in err
    assert len(json_lines(out)) == 1
    assert main(["analyze", "--max-pixels", "300000", str(images["group"]), str(images["astronaut"])]) == 1
    assert "group.png: 640x480 is 0.3 megapixels, over the limit of 0.3" in capsys.readouterr().err


def test_real_entry_point_has_no_tracebacks(images, tmp_path):
    missing = tmp_path / "nope.jpg"
    bad_model = tmp_path / "m.onnx"
    bad_model.write_bytes(b"junk")
    run = [sys.executable, "-m", "edge_fer", "analyze"]
    proc = subprocess.run([*run, "--json", str(images["astronaut"]), str(missing)], capture_output=True, text=True)
    assert proc.returncode == 1 and len(json_lines(proc.stdout)) == 1
    assert proc.stderr.splitlines() == [
        f"edge-fer analyze: {missing}: no such file",
        "edge-fer analyze: 1 of 2 images failed",
    ]
    proc = subprocess.run([*run, "--model", str(bad_model), str(images["astronaut"])], capture_output=True, text=True)
    assert proc.returncode == 69 and "m.onnx: not a usable ONNX model" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([*run, "--min-face", "0", str(images["astronaut"])], capture_output=True, text=True)
    assert proc.returncode == 2 and "--min-face" in proc.stderr and "greater than or equal to 12" in proc.stderr


def test_the_table_shows_quality_and_brackets_a_face_edge_fer_abstains_on(images, tmp_path, capsys):
    import cv2
    import numpy as np

    dark = tmp_path / "dark.png"
    picture = cv2.imread(str(images["astronaut"]))
    cv2.imwrite(str(dark), (cv2.GaussianBlur(picture, (0, 0), 3) * 0.2).astype(np.uint8))
    assert main(["analyze", str(images["astronaut"]), str(dark)]) == 0
    bright, poor = capsys.readouterr().out.split(str(dark))
    assert " q 0.9" in bright and " happy " in bright and "abstains" not in bright
    face = poor.splitlines()[1]
    assert " q 0.00  (" in face  # the label in brackets: for reference only
    assert "edge-fer abstains on that face" in poor

"""Metrics against hand-worked values, folder datasets built from real astronaut face crops, and reports."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_fer.offline.evaluate import FolderDataset, Metrics, draw_confusion, evaluate, load_crop, write_report
from edge_fer.vision.emotion import EmotionClassifier
from edge_fer.vision.types import EMOTIONS

ASTRONAUT = Path(__file__).resolve().parents[2] / "edge_fer" / "assets" / "astronaut.jpg"


def face_crops() -> list[np.ndarray]:
    """Six real crops of the smiling astronaut: shifted, scaled, mirrored, and one gray 48 px like FER2013."""
    image = cv2.imread(str(ASTRONAUT))
    face = image[55:175, 160:280]
    gray48 = cv2.cvtColor(cv2.resize(face, (48, 48), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    return [
        face,
        image[45:185, 150:290],
        image[60:170, 170:280],
        np.ascontiguousarray(face[:, ::-1]),
        cv2.resize(face, (200, 200)),
        gray48,
    ]


def make_dataset(root: Path) -> Path:
    """``Happy/`` (capitalised on purpose) holds four crops, ``sad/`` two; ``joy/`` is not a label;
    ``sad/`` also holds a corrupt JPEG and a hidden file that must be ignored."""
    crops = face_crops()
    for folder, picks in (("Happy", crops[:4]), ("sad", crops[4:])):
        (root / folder).mkdir(parents=True)
        for i, crop in enumerate(picks):
            cv2.imwrite(str(root / folder / f"{i}.png"), crop)
    (root / "joy").mkdir()
    cv2.imwrite(str(root / "joy" / "0.png"), crops[0])
    good = (root / "Happy" / "0.png").read_bytes()
    (root / "sad" / "broken.png").write_bytes(good[: len(good) // 2])
    (root / "sad" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    return root


def test_metrics_match_hand_worked_example():
    # true:  a a a b b c        pred: a b a b c c
    m = Metrics.from_predictions(["a", "b", "c", "d"], [0, 0, 0, 1, 1, 2], [0, 1, 0, 1, 2, 2])
    assert m.confusion.tolist() == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert (m.n, m.accuracy) == (6, pytest.approx(4 / 6))
    np.testing.assert_allclose(m.precision, [1.0, 0.5, 0.5, 0.0])
    np.testing.assert_allclose(m.recall, [2 / 3, 0.5, 1.0, 0.0])
    np.testing.assert_allclose(m.f1, [0.8, 0.5, 2 / 3, 0.0])
    assert m.support.tolist() == [3, 2, 1, 0]
    # "d" never occurs in truth or predictions, so the macro average leaves it out (as scikit-learn does).
    assert m.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    np.testing.assert_allclose(m.normalized()[0], [2 / 3, 1 / 3, 0, 0])
    np.testing.assert_allclose(m.normalized()[3], [0, 0, 0, 0])


def test_report_text_is_laid_out_like_sklearn():
    m = Metrics.from_predictions(["a", "b", "c"], [0, 0, 0, 1, 1, 2], [0, 1, 0, 1, 2, 2])
    lines = m.report().splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[2].split() == ["a", "1.00", "0.67", "0.80", "3"]
    assert lines[6].split() == ["accuracy", "0.67", "6"]
    assert lines[7].split() == ["macro", "avg", "0.67", "0.72", "0.66", "6"]
    assert lines[8].split() == ["weighted", "avg", "0.75", "0.67", "0.68", "6"]


def test_json_shape():
    m = Metrics.from_predictions(EMOTIONS, [3, 3, 5], [3, 5, 5])
    out = m.to_json()
    assert set(out) >= {"n", "accuracy", "macro_f1", "per_class", "confusion"}
    assert list(out["per_class"]) == list(EMOTIONS)
    assert out["per_class"]["happy"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert json.loads(json.dumps(out)) == out


def test_scan_matches_folders_case_insensitively_and_lists_unknown_ones(tmp_path):
    root = make_dataset(tmp_path / "data")
    ds = FolderDataset.scan(root, EMOTIONS)
    assert [s.label for s in ds.samples] == ["happy"] * 4 + ["sad"] * 3
    assert [p.name for p in ds.unknown_dirs] == ["joy"]
    assert ".DS_Store" not in {s.path.name for s in ds.samples}


def test_limit_keeps_an_even_spread(tmp_path):
    ds = FolderDataset.scan(make_dataset(tmp_path / "data"), EMOTIONS, limit=3)
    assert [s.label for s in ds.samples] == ["happy", "happy", "sad"]
    assert ds.samples[0].path.name == "0.png" and ds.samples[-1].path.name == "broken.png"


def test_scan_of_a_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        FolderDataset.scan(tmp_path / "absent", EMOTIONS)


def test_evaluate_counts_unreadable_images_and_agrees_with_the_classifier(tmp_path):
    root = make_dataset(tmp_path / "data")
    clf = EmotionClassifier(flip=False)
    seen = []
    result = evaluate(FolderDataset.scan(root, EMOTIONS), clf, batch_size=4, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(4, 7), (7, 7)]
    assert len(result.failures) == 1 and "broken.png: truncated PNG" in result.failures[0]
    direct = clf.predict([cv2.imread(str(p)) for p in sorted((root / "Happy").glob("*.png"))])
    direct = np.concatenate([direct, clf.predict([cv2.imread(str(p)) for p in sorted((root / "sad").glob("?.png"))])])
    truth = [EMOTIONS.index("happy")] * 4 + [EMOTIONS.index("sad")] * 2
    assert result.metrics.n == 6
    assert result.metrics.accuracy == pytest.approx(np.mean(direct.argmax(axis=1) == truth))
    assert result.metrics.support[EMOTIONS.index("happy")] == 4
    # the smiling astronaut is happy whatever the crop: all four happy crops right, both "sad" ones wrong
    assert result.metrics.recall[EMOTIONS.index("happy")] == 1.0
    assert result.metrics.accuracy == pytest.approx(4 / 6)


def test_crops_up_to_four_times_the_model_input_are_kept_as_they_are(tmp_path):
    face = face_crops()[4]  # 200x200, under 4 x 64
    cv2.imwrite(str(tmp_path / "face.png"), face)
    np.testing.assert_array_equal(load_crop(tmp_path / "face.png", 10**6, (256, 256)), face)


def test_a_photo_sized_crop_is_shrunk_as_it_is_read_and_classified_alike(tmp_path):
    """A batch must not hold full-size photos: each is shrunk right after decoding, and the model, which
    shrinks it further anyway, says the same of the small copy."""
    big = cv2.resize(face_crops()[0], (3000, 2000), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(tmp_path / "big.png"), big)
    small = load_crop(tmp_path / "big.png", 40_000_000, (256, 256))
    assert small.shape == (256, 256, 3)
    clf = EmotionClassifier(flip=False)
    full, shrunk = clf.predict([big])[0], clf.predict([small])[0]
    assert shrunk.argmax() == full.argmax() == EMOTIONS.index("happy")
    np.testing.assert_allclose(shrunk, full, atol=0.005)  # measured: under 0.0005


def test_report_files(tmp_path):
    m = Metrics.from_predictions(EMOTIONS, [0, 1, 2, 3, 3, 4, 5, 6], [0, 1, 2, 3, 4, 4, 5, 0])
    from edge_fer.offline.evaluate import EvalResult

    paths = write_report(EvalResult(m, ["x.png: truncated PNG file"], 1.5), tmp_path / "out", {"model": "m"})
    assert [p.name for p in paths] == ["confusion_matrix.png", "report.json"]
    image = cv2.imread(str(paths[0]))
    assert image.shape == draw_confusion(m).shape and image.shape[0] > 400 and image.shape[1] > 600
    # the diagonal cell of "angry" (recall 1.0) is drawn in the colour map's bright end, an empty cell in its dark end
    bright, dark = image[92 + 28, 118 + 10], image[92 + 28, 118 + 84 + 10]
    assert int(bright.sum()) > int(dark.sum()) + 200
    report = json.loads(paths[1].read_text())
    assert report["n"] == 8 and report["model"] == "m" and report["unreadable"] == 1
    assert report["confusion"] == m.confusion.tolist()


def test_the_result_carries_the_reliability_of_its_own_predictions(tmp_path):
    """A classifier that is always 0.9 sure and right two times in three: ECE |0.9 - 2/3|, in one bin."""

    class Sure:
        labels = ("a", "b")
        input_size = (8, 8)

        def predict(self, crops):
            return np.tile([0.9, 0.1], (len(crops), 1)).astype(np.float32)

    for name, label in (("1", "a"), ("2", "a"), ("3", "b")):
        (tmp_path / label).mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / label / f"{name}.png"), np.full((8, 8, 3), 128, np.uint8))
    result = evaluate(FolderDataset.scan(tmp_path, ("a", "b")), Sure())
    assert result.metrics.n == 3 and result.metrics.accuracy == pytest.approx(2 / 3)
    assert result.reliability.ece == pytest.approx(0.9 - 2 / 3, abs=1e-6)
    assert int(result.reliability.counts.sum()) == 3

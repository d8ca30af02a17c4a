"""Run reports: metrics checked by hand, figures that decode, files replaced atomically."""

import json

import cv2
import numpy as np
import pytest

from edge_fer.offline.evaluate import Metrics
from export.checkpoint import Checkpoint, atomic_write_text
from export.reports import REPORT_FILES, write_reports

LABELS = ("angry", "happy", "sad")


def metrics() -> Metrics:
    # truth: 4 angry, 4 happy, 2 sad
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 1, 2, 1, 1, 1, 0, 2, 1])
    return Metrics.from_predictions(LABELS, y_true, y_pred)


def test_text_report_lists_every_label_and_the_averages():
    lines = metrics().report(digits=4).splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    angry = next(line for line in lines if line.split()[:1] == ["angry"])
    assert angry.split()[1:] == ["0.6667", "0.5000", "0.5714", "4"]
    accuracy = next(line for line in lines if line.split()[:1] == ["accuracy"])
    assert accuracy.split()[1:] == ["0.6000", "10"]
    assert any(line.split()[:2] == ["macro", "avg"] for line in lines)


def test_write_reports_produces_readable_files(tmp_path):
    pytest.importorskip("matplotlib", reason="needs the export extra: pip install -e '.[export]'")
    history = [
        {"epoch": e, "loss": 2 - 0.1 * e, "acc": 0.3 + 0.05 * e, "val_loss": 1.9 - 0.05 * e, "val_acc": 0.3 + 0.04 * e}
        for e in (1, 2, 3)
    ]
    write_reports(tmp_path, metrics(), history, 3, "test run", {"val_accuracy": 0.6})
    for name in REPORT_FILES:
        assert (tmp_path / name).stat().st_size > 0
    for name in ("confusion_matrix.png", "curves.png"):
        image = cv2.imread(str(tmp_path / name))
        assert image is not None and image.shape[0] > 200 and image.shape[1] > 200
    assert json.loads((tmp_path / "summary.json").read_text()) == {"val_accuracy": 0.6}
    assert "angry" in (tmp_path / "classification_report.txt").read_text()
    assert not list(tmp_path.glob(".*.tmp"))


def test_checkpoint_round_trip_and_refusals(tmp_path):
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(4)]
    Checkpoint({"epoch": 3}, arrays, [np.zeros(2)], arrays).save(tmp_path)
    back = Checkpoint.load(tmp_path)
    assert back.state == {"epoch": 3}
    assert all(np.array_equal(a, b) for a, b in zip(back.model, arrays))
    assert len(back.optimizer) == 1 and len(back.best) == 2
    with pytest.raises(ValueError, match=r"no checkpoint\.npz"):
        Checkpoint.load(tmp_path / "empty")
    atomic_write_text(tmp_path / "checkpoint.npz", "truncated")
    with pytest.raises(ValueError, match="unreadable checkpoint"):
        Checkpoint.load(tmp_path)


def test_a_checkpoint_cut_short_is_refused_with_advice(tmp_path):
    Checkpoint({"epoch": 1}, [np.ones(1000)], [], []).save(tmp_path)
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ValueError, match="unreadable checkpoint"):
        Checkpoint.load(tmp_path)


def test_the_training_report_draws_the_confusion_matrix_as_eval_does():
    import cv2
    import numpy as np

    from edge_fer.offline.evaluate import Metrics, draw_confusion
    from edge_fer.vision.types import EMOTIONS
    from export.reports import confusion_png

    m = Metrics.from_predictions(EMOTIONS, [0, 1, 3, 3, 6], [0, 3, 3, 3, 5])
    decoded = cv2.imdecode(np.frombuffer(confusion_png(m, "t"), np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(decoded, draw_confusion(m, "t"))


def test_export_labels_are_the_runtime_labels():
    from edge_fer.vision.types import EMOTIONS
    from export.emotion import CANONICAL_LABELS, FER2013_LABELS

    assert CANONICAL_LABELS is EMOTIONS and sorted(FER2013_LABELS) == sorted(EMOTIONS)

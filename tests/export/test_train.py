"""``python -m export train`` end to end on a tiny astronaut data set: one epoch, resume, reports, ONNX."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_fer.vision.onnx_session import metadata, open_session
from export.checkpoint import Checkpoint
from export.cli import main
from export.emotion import CANONICAL_LABELS
from export.reports import REPORT_FILES
from tests.export.fer_fixtures import face_crop, write_folder_set

ROOT = Path(__file__).resolve().parents[2]
SUMMARY_KEYS = {
    "arch", "params", "input", "labels", "status", "epochs_planned", "epochs_run", "best_epoch", "val_accuracy",
    "val_accuracy_flip", "macro_f1", "per_class", "training_seconds", "seed", "config", "data", "versions", "onnx",
}  # fmt: skip


def export_cli(*args: str) -> subprocess.CompletedProcess:
    # A fresh process per call: training enables TensorFlow's global op determinism.
    return subprocess.run(
        [sys.executable, "-m", "export", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def epoch_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line.split()[0] + " " + line.split()[1] for line in result.stdout.splitlines() if line.startswith("epoch ")]


@pytest.mark.export
@pytest.mark.slow
def test_one_epoch_then_resume_then_export(tf, tmp_path):
    data = write_folder_set(tmp_path / "fer", per_label=6)
    run = tmp_path / "run"
    first = export_cli(
        "train", "--data", str(data), "--arch", "compact", "--out", str(run),
        "--epochs", "2", "--batch-size", "8", "--seed", "3", "--stop-after", "1", "--camera-aug", "0.5",
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert epoch_lines(first) == ["epoch 1/2"]
    history_1 = json.loads((run / "history.json").read_text())
    assert [row["epoch"] for row in history_1] == [1]
    assert json.loads((run / "summary.json").read_text())["status"] == "paused"

    second = export_cli("train", "--out", str(run), "--resume", "--export")
    assert second.returncode == 0, second.stderr
    assert "resuming" in second.stdout and "after epoch 1" in second.stdout
    assert epoch_lines(second) == ["epoch 2/2"]
    history = json.loads((run / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert history[0] == history_1[0]
    assert (run / "history.csv").read_text().splitlines()[0] == "epoch,loss,acc,val_loss,val_acc,lr,seconds"

    for name in REPORT_FILES:
        assert (run / name).is_file(), name
    for name in ("confusion_matrix.png", "curves.png"):
        assert cv2.imread(str(run / name)) is not None, name
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["status"] == "finished" and summary["epochs_run"] == 2 and summary["seed"] == 3
    assert summary["config"]["camera_aug"] == 0.5 and summary["camera_augmentation"]["share"] == 0.5
    assert summary["labels"] == list(CANONICAL_LABELS)
    assert sum(c["support"] for c in summary["per_class"].values()) == 7  # one held out per label
    assert summary["onnx"]["max_abs_diff"] <= 1e-4 and summary["onnx"]["samples"] == 32

    session = open_session(run / "model.onnx")
    meta = metadata(session)
    assert json.loads(meta["edge_fer.labels"]) == list(CANONICAL_LABELS)
    assert json.loads(meta["edge_fer.input_size"]) == [48, 48]
    assert meta["edge_fer.color"] == "gray" and meta["edge_fer.output"] == "probabilities"
    assert json.loads(meta["edge_fer.normalization"]) == {"mean": 127.5, "std": 127.5}
    x = (np.stack([face_crop(3, 0), face_crop(5, 1)])[..., None].astype(np.float32) - 127.5) / 127.5
    probs = session.run(None, {"input": x})[0]
    assert probs.shape == (2, 7) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    import onnx

    # The squeeze-excite gates were rewritten into NCHW convolutions (export/emotion_graph.py), under parity.
    ops = [n.op_type for n in onnx.load(str(run / "model.onnx")).graph.node]
    assert "Transpose" not in ops and ops.count("Conv") == 11 + 2 * 3

    renamed = export_cli("report", str(run), "--export", "--name", "my_compact")
    assert renamed.returncode == 0, renamed.stderr
    assert metadata(open_session(run / "model.onnx"))["edge_fer.name"] == "my_compact"
    assert json.loads((run / "summary.json").read_text())["onnx"]["name"] == "my_compact"

    again = export_cli("train", "--out", str(run), "--resume", "--epochs", "3", "--camera-aug", "0")
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert "--epochs 3 (run has 2), --camera-aug 0.0 (run has 0.5)" in again.stderr


def _fake_run(run: Path, data: Path) -> None:
    config = {"data": str(data), "arch": "compact", "epochs": 5, "lr": 0.001}
    Checkpoint({"config": config, "labels": list(CANONICAL_LABELS), "progress": {}}, [], [], []).save(run)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{tmp}/missing"], "{tmp}/missing: no such file or folder"),
        (["--data", "{tmp}", "--resume"], "no checkpoint.npz"),
        (["--data", "{tmp}", "--epochs", "0"], "--epochs must be positive"),
        (["--data", "{tmp}", "--camera-aug", "1.5"], "--camera-aug must be a share of each batch in [0, 1], not 1.5"),
        (["--data", "{tmp}", "--camera-aug", "nan"], "--camera-aug must be a share of each batch in [0, 1], not nan"),
        (["--resume", "--out", "{tmp}/run", "--camera-aug", "0.5"], "--camera-aug 0.5 (run has 0.0) differ"),
        (["--resume", "--out", "{tmp}/run", "--lr", "0.01"], "--lr 0.01 (run has 0.001) differ"),
        (["--data", "{tmp}/fer", "--out", "{tmp}/run"], "already holds a run; add --resume"),
        (["--data", "{tmp}", "--teacher", "compcat"], "--teacher 'compcat' is not a bundled model; did you mean"),
        (["--data", "{tmp}", "--teacher", "{tmp}/t.onnx"], "--teacher {tmp}/t.onnx: no such file"),
        (["--data", "{tmp}", "--teacher", "compact", "--teacher-weight", "1.5"], "--teacher-weight must be in [0, 1]"),
        (["--data", "{tmp}", "--teacher-temperature", "0"], "--teacher-temperature must be positive, not 0.0"),
        (["--resume", "--out", "{tmp}/run", "--teacher", "compact"], "--teacher ('compact',) (run has ()) differ"),
        ([], "--data is required"),
    ],
)
def test_user_errors_are_one_line(tmp_path, capsys, args, message):
    write_folder_set(tmp_path / "fer", per_label=2)
    (tmp_path / "run").mkdir()
    _fake_run(tmp_path / "run", tmp_path / "fer")
    argv = ["train", "--out", str(tmp_path / "new"), *[a.replace("{tmp}", str(tmp_path)) for a in args]]
    if "--out" in args:
        argv = ["train", *[a.replace("{tmp}", str(tmp_path)) for a in args]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message.replace("{tmp}", str(tmp_path)) in err


def test_resume_of_a_run_saved_before_camera_aug_accepts_its_default(tmp_path):
    from export.cli import build_parser
    from export.train_cli import resolve_config

    saved = {"data": str(tmp_path), "arch": "compact", "epochs": 5, "lr": 0.001}  # no camera_aug key
    args = build_parser().parse_args(["train", "--out", str(tmp_path), "--resume", "--camera-aug", "0"])
    assert resolve_config(args, saved).camera_aug == 0.0
    args = build_parser().parse_args(["train", "--out", str(tmp_path), "--resume"])
    assert resolve_config(args, {**saved, "camera_aug": 0.5}).camera_aug == 0.5


def test_a_teacher_read_back_from_the_checkpoint_is_the_one_typed(tmp_path):
    """JSON gives the teacher back as a list; typing the same teacher on --resume is no change."""
    from export.cli import build_parser
    from export.train_cli import resolve_config

    saved = {"data": str(tmp_path), "arch": "compact", "epochs": 5, "teacher": ["compact", "mini_xception"]}
    argv = ["train", "--out", str(tmp_path), "--resume", "--teacher", "compact", "--teacher", "mini_xception"]
    assert resolve_config(build_parser().parse_args(argv), saved).teacher == ("compact", "mini_xception")


@pytest.mark.export
@pytest.mark.slow
def test_a_run_with_a_teacher_computes_its_targets_once_and_records_the_teacher(tf, tmp_path):
    data = write_folder_set(tmp_path / "fer", per_label=4)
    run = tmp_path / "run"
    common = ["--epochs", "2", "--batch-size", "7", "--label-smoothing", "0"]
    first = export_cli("train", "--data", str(data), "--out", str(run), *common, "--stop-after", "1",
                       "--teacher", "compact", "--teacher", "mini_xception", "--teacher-weight", "0.5")  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "teacher compact+mini_xception (flip): agrees with" in first.stdout and (run / "teacher.npz").is_file()
    second = export_cli("train", "--out", str(run), "--resume")
    assert second.returncode == 0, second.stderr
    assert "agrees with" not in second.stdout and epoch_lines(second) == ["epoch 2/2"]  # the saved targets, read back
    config = json.loads((run / "summary.json").read_text())["config"]
    assert config["teacher"] == ["compact", "mini_xception"] and config["teacher_weight"] == 0.5

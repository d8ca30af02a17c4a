"""``edge-fer eval`` on a tiny folder dataset of real astronaut crops, with an unknown folder and a bad file."""

import json
import subprocess
import sys

import cv2
import pytest

from edge_fer.cli import main
from tests.offline.test_evaluate import make_dataset


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(tmp_path / "data")


def test_json_output(dataset, capsys):
    assert main(["eval", str(dataset), "--json", "--model", "mini_xception"]) == 1  # one image unreadable
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["n"] == 6 and result["accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    assert result["per_class"]["happy"]["recall"] == 1.0 and result["per_class"]["sad"]["support"] == 2
    assert len(result["confusion"]) == 7 and sum(map(sum, result["confusion"])) == 6
    assert result["unreadable"] == 1 and result["model"] == "mini_xception_fer"
    warnings = [line for line in err.splitlines() if line.startswith("edge-fer eval:")]
    assert any("joy: skipping folder" in line for line in warnings)
    assert any("broken.png: truncated PNG" in line for line in warnings)
    assert warnings[-1] == "edge-fer eval: 1 of 7 images could not be read and were not counted"
    assert "Traceback" not in err


def test_table_report_and_flip(dataset, tmp_path, capsys):
    report = tmp_path / "report"
    args = ["eval", str(dataset), "--report", str(report), "--flip", "--batch-size", "2", "--model", "mini_xception"]
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert "mini_xception_fer" in out and "with flip" in out
    assert any(line.split()[:2] == ["accuracy", "0.6667"] for line in out.splitlines())
    assert "precision" in out and "macro avg" in out
    assert "eval: 7/7 images (100%" in err  # stderr is not a terminal here: plain progress lines
    assert cv2.imread(str(report / "confusion_matrix.png")) is not None
    saved = json.loads((report / "report.json").read_text())
    assert saved["flip"] is True and saved["n"] == 6
    # the reliability diagram of the same predictions, and its calibration error in the report and the table
    assert cv2.imread(str(report / "reliability.png")) is not None
    assert 0.0 <= saved["ece"] <= 1.0
    assert f"ECE {saved['ece']:.4f}" in out


def test_default_is_the_shipped_pair_without_flip(dataset, capsys):
    assert main(["eval", str(dataset), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "compact_fer+mini_xception_fer" and result["flip"] is False and result["n"] == 6


def test_limit_and_an_ensemble_of_the_same_model(dataset, capsys):
    from edge_fer.vision.onnx_session import bundled_model

    model = str(bundled_model("emotion_mini_xception.onnx"))
    assert main(["eval", str(dataset), "--json", "--limit", "3", "--model", model, "--model", model]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 2  # three picked, one of them the broken file

    assert result["model"] == "mini_xception_fer+mini_xception_fer"


def test_user_errors_are_one_line_without_traceback(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "joy").mkdir()
    bad_model = tmp_path / "model.onnx"
    bad_model.write_bytes(b"not a model")
    cases = [
        ([str(tmp_path / "absent")], 2, "absent: not a directory"),
        ([str(empty)], 1, "no images found"),
        ([str(empty), "--model", str(bad_model)], 69, "model.onnx: not a usable ONNX model"),
    ]
    for args, code, message in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "edge_fer", "eval", *args], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == code, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr


def test_progress_redraws_one_line_on_a_terminal():
    import io

    from edge_fer.commands.eval import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    progress = Progress(stream)
    for done in (64, 128, 150):
        progress(done, 150)
    text = stream.getvalue()
    assert text.count("\r[") == 3 and text.endswith("\n") and text.count("\n") == 1
    assert "150/150 100%" in text and "#" * 30 in text


def test_readable_dataset_exits_0_and_names_the_model_as_events_do(dataset, capsys):
    from edge_fer.vision.emotion import EmotionClassifier

    (dataset / "sad" / "broken.png").unlink()
    assert main(["eval", str(dataset), "--json"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["unreadable"] == 0 and "could not be read" not in err
    # one identity: the 12 digits events carry for this pair, not one hash per member
    assert result["model_sha256"] == EmotionClassifier().sha256_id
    assert len(result["model_sha256"]) == 12 and "+" not in result["model_sha256"]

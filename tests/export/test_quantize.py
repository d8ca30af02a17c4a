"""Int8 emotion models and the squeeze-excite rewrite: exact where promised, checked where not."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_fer.bundled import bundled_model
from edge_fer.vision.emotion import EmotionModel
from edge_fer.vision.onnx_session import metadata, open_session

onnx = pytest.importorskip("onnx", reason="needs the export extra: pip install -e '.[export]'")
pytest.importorskip("onnxruntime.quantization")

from export.emotion_graph import squeeze_excite_to_conv  # noqa: E402
from export.onnx_tools import ParityError  # noqa: E402
from export.quantize import compare, quantize_emotion, training_faces  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def faces(first: int, count: int) -> list[np.ndarray]:
    """Real face crops: LFW faces ``first .. first + count - 1`` (scikit-image's lfw_subset), in grey."""
    from tests.photos import source_rgb

    return [
        np.ascontiguousarray(source_rgb(f"lfw:{i}").mean(axis=2).astype(np.uint8)) for i in range(first, first + count)
    ]


def test_squeeze_excite_rewrite_is_exact_and_removes_the_transposes():
    model = onnx.load(str(bundled_model("emotion_compact.onnx")))
    before = [n.op_type for n in model.graph.node]
    assert squeeze_excite_to_conv(model) == 3
    after = [n.op_type for n in model.graph.node]
    assert before.count("Transpose") == 6 and "Transpose" not in after
    assert {"Shape", "Gather", "Concat", "Cast"}.isdisjoint(after)
    onnx.checker.check_model(model)

    import onnxruntime as ort

    old = open_session(bundled_model("emotion_compact.onnx"))
    new = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-1, 1, (5, 48, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(new.run(None, {"input": x})[0], old.run(None, {"input": x})[0], atol=1e-6)


def test_squeeze_excite_rewrite_leaves_other_graphs_alone():
    model = onnx.load(str(bundled_model("emotion_mini_xception.onnx")))
    nodes = len(model.graph.node)
    assert squeeze_excite_to_conv(model) == 0
    assert len(model.graph.node) == nodes


def test_quantized_model_is_int8_keeps_the_contract_and_agrees(tmp_path):
    out = tmp_path / "compact_int8.onnx"
    result = quantize_emotion(
        bundled_model("emotion_compact.onnx"), out, faces(0, 50), faces(50, 50), "compact_int8_test", {"seed": 1}
    )
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    meta = metadata(open_session(out))
    assert meta["edge_fer.name"] == "compact_int8_test"
    assert json.loads(meta["edge_fer.labels"]) == list(LABELS)
    assert json.loads(meta["edge_fer.quantization"])["seed"] == 1
    assert result.calibration_images == 50 and result.check_images == 50
    assert result.top1_agreement >= 0.97
    # Its probabilities are probabilities, in the runtime's canonical order, close to the float model's.
    probs = EmotionModel(out).predict(faces(50, 8))
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert (
        compare(EmotionModel(bundled_model("emotion_compact.onnx")), EmotionModel(out), faces(60, 30), 0).mean_abs_diff
        < 0.05
    )


def test_a_quantization_that_fails_its_check_leaves_no_file(tmp_path):
    out = tmp_path / "bad.onnx"
    with pytest.raises(ParityError, match="do not ship it"):
        quantize_emotion(
            bundled_model("emotion_compact.onnx"), out, faces(0, 16), faces(16, 16), "x", {}, min_agreement=1.01
        )
    assert list(tmp_path.iterdir()) == []


def test_training_faces_are_two_disjoint_seeded_draws(tmp_path):
    import cv2

    for label in ("happy", "sad"):
        (tmp_path / "train" / label).mkdir(parents=True)
        for i in range(10):
            cv2.imwrite(str(tmp_path / "train" / label / f"{i}.png"), np.full((48, 48), i * 20, np.uint8))
    a, b = training_faces(tmp_path, 8, seed=5)
    assert len(a) == len(b) == 8 and not set(a) & set(b)
    assert training_faces(tmp_path, 8, seed=5) == (a, b)
    assert training_faces(tmp_path, 8, seed=6) != (a, b)
    with pytest.raises(ValueError, match="20 images, 22 needed"):
        training_faces(tmp_path, 11, seed=0)


def quantize_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "export", "quantize", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compcat", "--data", "."], "'compcat' is not a bundled model; did you mean 'compact'?"),
        (["compact", "--data", "/nonexistent"], "/nonexistent: no such folder"),
        (["compact", "--data", "{data}", "--out", "/nonexistent/x.onnx"], "/nonexistent: no such folder"),
        (["mtcnn_pnet.onnx", "--data", "{data}"], "not an edge-fer emotion model"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, args, message):
    import cv2

    for label in ("happy", "sad"):
        (tmp_path / "train" / label).mkdir(parents=True)
        for i in range(4):
            cv2.imwrite(str(tmp_path / "train" / label / f"{i}.png"), np.full((48, 48), 99, np.uint8))
    args = [a.replace("{data}", str(tmp_path)) for a in args]
    if args[0] == "mtcnn_pnet.onnx":
        args[0] = str(bundled_model("mtcnn_pnet.onnx"))
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out.onnx")]
    args += ["--images", "2"]
    result = quantize_cli(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "out.onnx").exists()

"""Emotion models that load as ONNX but cannot serve: the daemon refuses them at start with one line naming
the file and exit 69, before any camera opens. (Missing and corrupt files: tests/commands/test_run.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_fer.cli import main
from tests.reliability.harness import ROOT, write_config

SHIPPED = ROOT / "edge_fer/models"
LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
METADATA = {
    "edge_fer.role": "emotion",
    "edge_fer.name": "test_model",
    "edge_fer.labels": json.dumps(LABELS),
    "edge_fer.input_size": "[64, 64]",
    "edge_fer.color": "gray",
    "edge_fer.normalization": '{"mean": 127.5, "std": 127.5}',
    "edge_fer.layout": "NHWC",
}


def build_model(path: Path, *, input_shape, outputs: int = 7, metadata=None, op: str = "MatMul") -> Path:
    """A real, valid ONNX graph (flatten -> dense -> softmax) with the given input shape and metadata."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    features = int(np.prod(input_shape[1:]))
    weights = np.random.default_rng(0).normal(size=(features, outputs)).astype(np.float32)
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], axis=1),
        helper.make_node(op, ["flat", "w"], ["logits"], **({"domain": "test.nowhere"} if op != "MatMul" else {})),
        helper.make_node("Softmax", ["logits"], ["scores"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "test_emotion",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *input_shape[1:]])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", outputs])],
        initializer=[numpy_helper.from_array(weights, "w")],
    )
    opsets = [helper.make_opsetid("", 13)] + ([helper.make_opsetid("test.nowhere", 1)] if op != "MatMul" else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 7
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    if op == "MatMul":
        onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


CASES = {
    "no_metadata": (lambda p: build_model(p, input_shape=[1, 64, 64, 1]), "edge_fer.labels is missing"),
    "nchw_input": (
        lambda p: build_model(p, input_shape=[1, 3, 224, 224], metadata=METADATA),
        "does not match the metadata",
    ),
    "five_outputs": (
        lambda p: build_model(p, input_shape=[1, 64, 64, 1], outputs=5, metadata=METADATA),
        "has 5 outputs but edge_fer.labels names 7",
    ),
    "unknown_operator": (
        lambda p: build_model(p, input_shape=[1, 64, 64, 1], metadata=METADATA, op="NoSuchOp"),
        "not a usable ONNX model",
    ),
}


def start_with_model(tmp_path: Path, model: Path) -> list[str]:
    config = write_config(tmp_path / "edge-fer.yaml", {"classifier": {"models": [str(model)]}})
    return ["--config", str(config), "--max-frames", "1"]


@pytest.mark.parametrize("case", list(CASES))
def test_an_incompatible_model_is_one_line_naming_the_file_and_exit_69(tmp_path, capsys, case):
    build, words = CASES[case]
    model = build(tmp_path / f"{case}.onnx")
    assert main(start_with_model(tmp_path, model)) == 69
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("edge-fer:")]
    assert len(errors) == 1, err
    assert str(model) in errors[0] and words in errors[0], errors[0]
    assert out == "" and "Traceback" not in err
    assert "connecting" not in err, "no camera was opened"


def test_the_detectors_pnet_offered_as_the_emotion_model_is_refused_by_the_real_process(tmp_path):
    pnet = SHIPPED / "mtcnn_pnet.onnx"
    proc = subprocess.run(
        [sys.executable, "-m", "edge_fer", *start_with_model(tmp_path, pnet)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 69, proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("edge-fer:")]
    assert str(pnet) in line and "not an edge-fer emotion model" in line and "python -m export emotion" in line

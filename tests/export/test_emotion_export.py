"""Exporting a user's Keras emotion model: metadata, parity, and loud failures."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_fer.vision.onnx_session import metadata, open_session

pytestmark = pytest.mark.export
ROOT = Path(__file__).resolve().parents[2]
ORDER = ["happy", "sad", "angry", "neutral", "surprise", "fear", "disgust"]


@pytest.fixture(scope="module")
def tiny_keras_model(tf, tmp_path_factory):
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((48, 48, 3)),
            keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(7, activation="softmax"),
        ]
    )
    path = tmp_path_factory.mktemp("keras") / "tiny.keras"
    model.save(path)
    return path


def export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "export", "emotion", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_export_embeds_metadata_and_passes_parity(tiny_keras_model, tmp_path):
    out = tmp_path / "tiny.onnx"
    result = export(
        str(tiny_keras_model),
        "--out",
        str(out),
        "--labels",
        ",".join(ORDER),
        "--color",
        "rgb",
        "--mean",
        "0",
        "--std",
        "255",
        "--name",
        "tiny",
    )
    assert result.returncode == 0, result.stderr
    assert "parity max |diff|" in result.stdout
    session = open_session(out)
    meta = metadata(session)
    assert json.loads(meta["edge_fer.labels"]) == ORDER
    assert json.loads(meta["edge_fer.input_size"]) == [48, 48]
    assert meta["edge_fer.color"] == "rgb"
    assert json.loads(meta["edge_fer.normalization"]) == {"mean": 0.0, "std": 255.0}
    assert meta["edge_fer.name"] == "tiny"
    assert session.run(None, {"input": np.zeros((2, 48, 48, 3), np.float32)})[0].shape == (2, 7)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--labels", "happy,sad", "--color", "rgb"], "7 outputs but 2 labels"),
        (["--labels", ",".join(ORDER), "--color", "gray"], "3 channels but color='gray'"),
        (["--labels", "happy,sad,angry,neutral,surprise,fear,bored", "--color", "rgb"], "unknown labels ['bored']"),
    ],
)
def test_bad_export_arguments_fail_with_a_clear_message(tiny_keras_model, tmp_path, args, message):
    result = export(str(tiny_keras_model), "--out", str(tmp_path / "x.onnx"), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_parity_failure_raises(tiny_keras_model, tmp_path):
    from export.emotion import EmotionMeta, export_keras, load_keras_model
    from export.onnx_tools import ParityError, check_parity

    out = tmp_path / "tiny.onnx"
    export_keras(tiny_keras_model, out, EmotionMeta(name="t", labels=tuple(ORDER), color="rgb"))
    model = load_keras_model(tiny_keras_model)
    x = [np.random.default_rng(0).uniform(-1, 1, (2, 48, 48, 3)).astype(np.float32)]
    with pytest.raises(ParityError, match="do not ship it"):
        check_parity(lambda v: [np.asarray(model(v)) + 1e-3], out, x)

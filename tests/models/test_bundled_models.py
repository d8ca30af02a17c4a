"""The ONNX files shipped in ``edge_fer/models`` are the ones recorded in the manifest."""

import json
from pathlib import Path

import numpy as np
import pytest

from edge_fer.vision.onnx_session import BUNDLED, ModelError, bundled_model, manifest, metadata, open_session

MODELS_DIR = Path(bundled_model(BUNDLED[0])).parent


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("filename", BUNDLED)
def test_shipped_file_matches_recorded_sha256(filename):
    entry = manifest()[filename]
    assert sha256(bundled_model(filename)) == entry["sha256"]
    for key in ("source", "license", "command", "parity"):
        assert entry[key], f"{filename}: manifest lacks {key}"
    parity = entry["parity"]
    if "top1_agreement" in parity:
        # An int8 model is not the float maths: its check is agreement with its float source on faces
        # it was not calibrated on (python -m export quantize).
        assert parity["check_images"] >= 512 and parity["calibration_images"] >= 512
        assert parity["top1_agreement"] >= 0.97
        assert manifest()[filename.replace("_int8", "")]["sha256"] in entry["source"]
    else:
        assert parity["samples"] >= 32
        assert parity["max_abs_diff"] <= 1e-4


@pytest.mark.parametrize("filename", BUNDLED)
def test_models_md_records_each_file_and_hash(filename):
    text = (MODELS_DIR / "MODELS.md").read_text()
    assert filename in text
    assert manifest()[filename]["sha256"] in text


def test_manifest_lists_only_shipped_files():
    assert sorted(manifest()) == sorted(p.name for p in MODELS_DIR.glob("*.onnx"))


@pytest.mark.parametrize(
    ("filename", "shape", "outputs"),
    [
        ("mtcnn_pnet.onnx", (1, 37, 53, 3), {"bbox_reg": (1, 14, 22, 4), "prob": (1, 14, 22, 2)}),
        ("mtcnn_rnet.onnx", (5, 24, 24, 3), {"bbox_reg": (5, 4), "prob": (5, 2)}),
        ("mtcnn_onet.onnx", (3, 48, 48, 3), {"bbox_reg": (3, 4), "landmarks": (3, 10), "prob": (3, 2)}),
        ("emotion_mini_xception.onnx", (4, 64, 64, 1), {"scores": (4, 7)}),
        ("emotion_compact.onnx", (3, 48, 48, 1), {"scores": (3, 7)}),
        ("emotion_compact_int8.onnx", (3, 48, 48, 1), {"scores": (3, 7)}),
    ],
)
def test_model_runs_with_expected_io(filename, shape, outputs):
    session = open_session(bundled_model(filename))
    x = np.random.default_rng(0).uniform(-1, 1, size=shape).astype(np.float32)
    got = session.run(None, {"input": x})
    names = [o.name for o in session.get_outputs()]
    assert dict(zip(names, (g.shape for g in got))) == outputs
    probs = got[names.index("prob" if "prob" in names else "scores")]
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("filename", "name", "labels", "size"),
    [
        (
            "emotion_mini_xception.onnx",
            "mini_xception_fer",
            ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
            [64, 64],
        ),
        (
            "emotion_compact.onnx",
            "compact_fer",
            ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"],
            [48, 48],
        ),
        (
            "emotion_compact_int8.onnx",
            "compact_int8_fer",
            ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"],
            [48, 48],
        ),
    ],
)
def test_emotion_metadata_describes_preprocessing(filename, name, labels, size):
    meta = metadata(open_session(bundled_model(filename)))
    assert meta["edge_fer.name"] == name
    assert json.loads(meta["edge_fer.labels"]) == labels
    assert json.loads(meta["edge_fer.input_size"]) == size
    assert meta["edge_fer.color"] == "gray"
    assert json.loads(meta["edge_fer.normalization"]) == {"mean": 127.5, "std": 127.5}


def test_trained_model_records_its_training():
    facts = json.loads(metadata(open_session(bundled_model("emotion_compact.onnx")))["edge_fer.training"])
    assert facts == {"arch": "compact", "best_epoch": 33, "val_accuracy": 0.6734}
    assert "python -m export train" in manifest()["emotion_compact.onnx"]["command"]


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        open_session(tmp_path / "nope.onnx")


@pytest.mark.parametrize(
    "content", [b"", b"not an onnx file at all", b"\x08\x07" * 1000], ids=["empty", "text", "garbage"]
)
def test_corrupt_model_is_a_clear_error(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=r"bad\.onnx: not a usable ONNX model"):
        open_session(path)


def test_int8_model_names_its_float_source_and_calibration():
    meta = metadata(open_session(bundled_model("emotion_compact_int8.onnx")))
    facts = json.loads(meta["edge_fer.quantization"])
    assert facts["source_sha256"] == manifest()["emotion_compact.onnx"]["sha256"]
    assert "512 faces" in facts["calibration"] and "/train" in facts["calibration"]
    assert json.loads(meta["edge_fer.training"]) == json.loads(
        metadata(open_session(bundled_model("emotion_compact.onnx")))["edge_fer.training"]
    )
    assert manifest()["emotion_compact_int8.onnx"]["command"].startswith("python -m export quantize compact ")

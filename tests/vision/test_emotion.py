"""The metadata-driven classifier, run on the shipped mini-Xception and on copies with edited metadata.

Metadata is rewritten with a few lines of protobuf handling (``with_metadata``) so that these tests need
only the runtime; the tests that change the graph itself need ``onnx`` (the export extra).
"""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_fer.vision.emotion import EmotionClassifier, EmotionModel, model_identity
from edge_fer.vision.onnx_session import (
    DEFAULT_EMOTION_MODELS,
    DEFAULT_FLIP,
    EMOTION_MODELS,
    ModelError,
    bundled_model,
    manifest,
    metadata,
    open_session,
)
from edge_fer.vision.types import EMOTIONS

MODEL = bundled_model("emotion_mini_xception.onnx")
ASTRONAUT = Path(__file__).resolve().parents[2] / "edge_fer" / "assets" / "astronaut.jpg"
MODEL_ORDER = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def with_metadata(model: bytes, props: dict[str, str]) -> bytes:
    """The same ModelProto with its metadata_props (field 14) replaced by ``props``."""
    out, pos = bytearray(), 0
    while pos < len(model):
        tag, body = _read_varint(model, pos)
        wire = tag & 7
        if wire == 0:
            end = _read_varint(model, body)[1]
        elif wire == 2:
            length, start = _read_varint(model, body)
            end = start + length
        else:
            end = body + (8 if wire == 1 else 4)
        if tag >> 3 != 14:
            out += model[pos:end]
        pos = end
    for key, value in props.items():
        entry = b"\x0a" + _varint(len(key.encode())) + key.encode() + b"\x12" + _varint(len(value.encode()))
        entry += value.encode()
        out += b"\x72" + _varint(len(entry)) + entry  # field 14, length-delimited
    return bytes(out)


@pytest.fixture(scope="module")
def shipped_meta() -> dict[str, str]:
    return metadata(open_session(MODEL))


def write_model(tmp_path: Path, meta: dict[str, str], name: str = "edited.onnx", source: Path = MODEL) -> Path:
    path = tmp_path / name
    path.write_bytes(with_metadata(source.read_bytes(), meta))
    return path


@pytest.fixture(scope="module")
def crops() -> list[np.ndarray]:
    """Real face crops of several sizes (shrunk and enlarged on the way in) plus one non-face patch."""
    image = cv2.imread(str(ASTRONAUT))
    return [
        np.ascontiguousarray(image[55:175, 160:280]),
        np.ascontiguousarray(image[40:190, 150:290]),
        cv2.resize(image[55:175, 160:280], (48, 48), interpolation=cv2.INTER_AREA),
        np.ascontiguousarray(image[70:160, 175:265]),
        np.ascontiguousarray(image[300:500, 300:500]),
    ]


def raw_scores(crops: list[np.ndarray]) -> np.ndarray:
    """The shipped model's output computed by hand from its documented preprocessing."""
    batch = []
    for crop in crops:
        gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        shrink = gray.shape[0] >= 64 and gray.shape[1] >= 64
        gray = cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        batch.append((gray.astype(np.float32) - 127.5) / 127.5)
    session = open_session(MODEL)
    return session.run(None, {"input": np.stack(batch)[..., None]})[0]


def classifier(models=MODEL, flip: bool = False) -> EmotionClassifier:
    """One model whose scores are its ONNX output as it is: no flip averaging unless asked, and no relighting
    of dark crops (tested on its own below; one of the crops is a dark patch)."""
    return EmotionClassifier(models, flip=flip, relight=False)


def test_default_model_identity():
    clf = EmotionClassifier()
    files = [EMOTION_MODELS[n] for n in DEFAULT_EMOTION_MODELS]
    assert clf.sha256_id == model_identity([manifest()[f]["sha256"] for f in files])
    assert len(clf.sha256_id) == 12
    assert clf.name == "+".join(metadata(open_session(bundled_model(f)))["edge_fer.name"] for f in files)
    assert clf.flip is DEFAULT_FLIP
    assert clf.labels == EMOTIONS
    assert clf.input_size == (64, 64)  # the largest member's input: mini-Xception's


def test_bundled_models_by_short_name():
    for name, filename in EMOTION_MODELS.items():
        clf = EmotionClassifier(name)
        assert clf.models[0].path == bundled_model(filename)
        assert clf.sha256_id == manifest()[filename]["sha256"][:12]
    default = EmotionClassifier()
    assert [m.path for m in default.models] == [bundled_model(EMOTION_MODELS[n]) for n in DEFAULT_EMOTION_MODELS]


def test_astronaut_smiles(crops):
    emotion = classifier().classify(crops[:1])[0]
    assert emotion.label == "happy" and emotion.confidence > 0.9
    assert list(emotion.scores) == list(EMOTIONS)
    assert sum(emotion.scores.values()) == pytest.approx(1.0, abs=1e-4)


def test_scores_are_the_model_output_in_canonical_order(crops):
    raw = raw_scores(crops)
    got = classifier().predict(crops)
    expected = raw[:, [MODEL_ORDER.index(label) for label in EMOTIONS]]
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_one_batch_equals_one_crop_at_a_time(crops):
    clf = classifier()
    together = clf.predict(crops)
    alone = np.concatenate([clf.predict([c]) for c in crops])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert clf.predict([]).shape == (0, 7)
    assert clf.classify([]) == []


def test_permuted_label_metadata_moves_the_scores(tmp_path, shipped_meta, crops):
    permuted = ["neutral", "surprise", "happy", "angry", "disgust", "fear", "sad"]
    path = write_model(tmp_path, {**shipped_meta, "edge_fer.labels": json.dumps(permuted)})
    raw = raw_scores(crops)
    got = classifier(path).predict(crops)
    for column, label in enumerate(EMOTIONS):
        np.testing.assert_allclose(got[:, column], raw[:, permuted.index(label)], atol=1e-5)
    assert classifier(path).classify(crops[:1])[0].label == "angry"  # column 3 (the smile) now says angry


def test_label_names_match_case_insensitively(tmp_path, shipped_meta, crops):
    upper = json.dumps([label.upper() for label in MODEL_ORDER])
    path = write_model(tmp_path, {**shipped_meta, "edge_fer.labels": upper})
    np.testing.assert_allclose(classifier(path).predict(crops), classifier().predict(crops), atol=1e-6)


def test_logits_output_gets_a_softmax(tmp_path, shipped_meta, crops):
    path = write_model(tmp_path, {**shipped_meta, "edge_fer.output": "logits"})
    probs = classifier().predict(crops)
    e = np.exp(probs - probs.max(axis=1, keepdims=True))
    np.testing.assert_allclose(classifier(path).predict(crops), e / e.sum(axis=1, keepdims=True), atol=1e-5)


def test_flip_averages_with_the_mirror(crops):
    plain = classifier().predict(crops)
    mirrored = classifier().predict([np.ascontiguousarray(c[:, ::-1]) for c in crops])
    flipped = classifier(flip=True).predict(crops)
    np.testing.assert_allclose(flipped, (plain + mirrored) / 2, atol=1e-5)
    assert not np.allclose(plain, mirrored, atol=1e-3)


def test_ensemble_averages_models(tmp_path, shipped_meta, crops):
    permuted = ["neutral", "surprise", "angry", "happy", "disgust", "fear", "sad"]
    other = write_model(
        tmp_path, {**shipped_meta, "edge_fer.labels": json.dumps(permuted), "edge_fer.name": "shuffled"}
    )
    ensemble = classifier([MODEL, other])
    assert ensemble.name == "mini_xception_fer+shuffled"
    assert ensemble.sha256_id == model_identity([m.sha256 for m in ensemble.models])
    # events carry one identity that changes with any member and with their order
    reordered = classifier([other, MODEL])
    identities = {classifier(MODEL).sha256_id, ensemble.sha256_id, reordered.sha256_id}
    assert len(identities) == 3 and all(len(i) == 12 and int(i, 16) >= 0 for i in identities)
    expected = (classifier(MODEL).predict(crops) + classifier(other).predict(crops)) / 2
    np.testing.assert_allclose(ensemble.predict(crops), expected, atol=1e-6)


def test_gray_and_single_channel_crops_equal_bgr(crops):
    clf = classifier()
    gray = [cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in crops]
    np.testing.assert_allclose(clf.predict(gray), clf.predict(crops), atol=1e-5)
    np.testing.assert_allclose(clf.predict([g[..., None] for g in gray]), clf.predict(crops), atol=1e-5)


@pytest.mark.parametrize(
    "crop", [np.zeros((10, 10, 3), np.float32), np.zeros((0, 10, 3), np.uint8), np.zeros((10, 10, 4), np.uint8)]
)
def test_bad_crops_are_refused(crop):
    with pytest.raises(ValueError, match="crop 0"):
        classifier().predict([crop])


BAD_METADATA = {
    "no labels": ({"edge_fer.labels": None}, "edge_fer.labels is missing"),
    "labels not json": ({"edge_fer.labels": "angry,happy"}, "edge_fer.labels is not valid JSON"),
    "unknown label": ({"edge_fer.labels": json.dumps([*MODEL_ORDER[:6], "joy"])}, r"\['joy'\] are not among"),
    "repeated label": ({"edge_fer.labels": json.dumps([*MODEL_ORDER[:6], "angry"])}, "labels repeat"),
    "too few labels": ({"edge_fer.labels": json.dumps(MODEL_ORDER[:6])}, "7 outputs but edge_fer.labels names 6"),
    "size mismatch": ({"edge_fer.input_size": "[48, 48]"}, r"input shape .* does not match the metadata"),
    "size not pair": ({"edge_fer.input_size": "[64]"}, "input_size must be a JSON list"),
    "colour": ({"edge_fer.color": "hsv"}, "color must be one of"),
    "rgb on a gray net": ({"edge_fer.color": "rgb"}, r"does not match the metadata \(N, 64, 64, 3\)"),
    "no colour": ({"edge_fer.color": None}, "edge_fer.color is missing"),
    "std zero": ({"edge_fer.normalization": '{"mean": 0, "std": 0}'}, "std must not be zero"),
    "no std": ({"edge_fer.normalization": '{"mean": 0}'}, "normalization must be a JSON object"),
    "mean text": ({"edge_fer.normalization": '{"mean": "x", "std": 1}'}, "mean must be a number"),
    "layout": ({"edge_fer.layout": "NCHW"}, "only NHWC"),
    "output": ({"edge_fer.output": "softmax"}, "output must be one of"),
    "role": ({"edge_fer.role": "mtcnn-pnet"}, "edge_fer.role is 'mtcnn-pnet'"),
}


@pytest.mark.parametrize("case", list(BAD_METADATA), ids=list(BAD_METADATA))
def test_bad_metadata_is_a_clear_model_error(tmp_path, shipped_meta, case):
    change, message = BAD_METADATA[case]
    meta = {k: v for k, v in {**shipped_meta, **change}.items() if v is not None}
    path = write_model(tmp_path, meta, name="custom_model.onnx")
    with pytest.raises(ModelError, match=r"custom_model\.onnx: .*" + message) as info:
        classifier(path)
    assert "\n" not in str(info.value)


def test_detector_network_is_not_an_emotion_model():
    with pytest.raises(ModelError, match=r"mtcnn_onet\.onnx: not an edge-fer emotion model"):
        EmotionModel(bundled_model("mtcnn_onet.onnx"))


def test_missing_file_and_mixed_label_sets(tmp_path, shipped_meta):
    with pytest.raises(ModelError, match="not found"):
        EmotionClassifier(tmp_path / "absent.onnx")
    onnx = pytest.importorskip("onnx")
    subset = write_gathered(onnx, tmp_path, shipped_meta, ["happy", "sad", "neutral"])
    with pytest.raises(ModelError, match="an ensemble needs models with the same labels"):
        EmotionClassifier([MODEL, subset])


def write_gathered(onnx, tmp_path: Path, meta: dict[str, str], labels: list[str]) -> Path:
    """A copy of the shipped graph whose output keeps only ``labels``' columns, in that order."""
    from onnx import helper, numpy_helper

    model = onnx.load(str(MODEL))
    graph = model.graph
    for node in graph.node:
        node.output[:] = ["raw" if name == "scores" else name for name in node.output]
    columns = np.array([MODEL_ORDER.index(label) for label in labels], dtype=np.int64)
    graph.initializer.append(numpy_helper.from_array(columns, name="columns"))
    graph.node.append(helper.make_node("Gather", ["raw", "columns"], ["scores"], axis=1))
    graph.output[0].type.tensor_type.shape.dim[1].dim_value = len(labels)
    del model.metadata_props[:]
    for key, value in {**meta, "edge_fer.labels": json.dumps(labels)}.items():
        model.metadata_props.add(key=key, value=value)
    path = tmp_path / f"gathered_{len(labels)}.onnx"
    onnx.save(model, str(path))
    return path


def test_really_permuted_outputs_give_the_same_canonical_scores(tmp_path, shipped_meta, crops):
    onnx = pytest.importorskip("onnx")
    order = ["surprise", "neutral", "sad", "happy", "angry", "fear", "disgust"]
    path = write_gathered(onnx, tmp_path, shipped_meta, order)
    np.testing.assert_allclose(classifier(path).predict(crops), classifier().predict(crops), atol=1e-6)


def test_subset_model_reports_its_own_labels_in_canonical_order(tmp_path, shipped_meta, crops):
    onnx = pytest.importorskip("onnx")
    path = write_gathered(onnx, tmp_path, shipped_meta, ["sad", "happy", "angry"])
    clf = classifier(path)
    assert clf.labels == ("angry", "happy", "sad")
    full = classifier().predict(crops)
    got = clf.predict(crops)
    np.testing.assert_allclose(got, full[:, [0, 3, 5]], atol=1e-6)  # the model's raw, unrenormalised outputs
    emotion = clf.classify(crops[:1])[0]
    assert list(emotion.scores) == ["angry", "happy", "sad"] and emotion.label == "happy"


def test_colour_order_reaches_a_three_channel_model(tmp_path):
    """A tiny hand-built net whose logits are the per-channel means: rgb and bgr must swap them."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    node = helper.make_node("ReduceMean", ["input"], ["scores"], axes=[1, 2], keepdims=0)
    graph = helper.make_graph(
        [node],
        "channel_means",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 16, 16, 3])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    crop = np.zeros((40, 30, 3), np.uint8)
    crop[..., 0], crop[..., 1], crop[..., 2] = 200, 100, 0  # blue, green, red
    results = {}
    for color in ("rgb", "bgr"):
        meta = {
            "edge_fer.role": "emotion",
            "edge_fer.name": f"means_{color}",
            "edge_fer.labels": json.dumps(["angry", "happy", "sad"]),
            "edge_fer.input_size": "[16, 16]",
            "edge_fer.color": color,
            "edge_fer.normalization": '{"mean": 0, "std": 100}',
            "edge_fer.layout": "NHWC",
            "edge_fer.output": "logits",
        }
        del model.metadata_props[:]
        for key, value in meta.items():
            model.metadata_props.add(key=key, value=value)
        path = tmp_path / f"means_{color}.onnx"
        onnx.save(model, str(path))
        results[color] = classifier(path).classify([crop])[0]
    # rgb feeds (0, 1, 2) so the third logit (sad) wins; bgr feeds (2, 1, 0) so the first (angry) wins.
    assert results["rgb"].label == "sad" and results["bgr"].label == "angry"
    logits = np.array([0.0, 1.0, 2.0])
    expected = np.exp(logits) / np.exp(logits).sum()
    assert results["rgb"].scores["sad"] == pytest.approx(expected[2], abs=1e-5)


def test_relight_leaves_lit_crops_alone_and_stretches_dark_ones():
    from edge_fer.vision.emotion import DARK_MEAN, LIT_MEAN, LIT_STD, relight_dark

    lit = np.full((48, 48), int(DARK_MEAN) + 1, np.uint8)
    assert relight_dark(lit) is lit
    rng = np.random.default_rng(0)
    dark = np.clip(rng.normal(30, 10, (48, 48)), 0, 255).astype(np.uint8)
    out = relight_dark(dark)
    assert out.dtype == np.uint8 and out.shape == dark.shape
    assert abs(out.mean() - LIT_MEAN) < 3 and abs(out.std() - LIT_STD) < 3
    assert np.corrcoef(out.ravel(), dark.ravel())[0, 1] > 0.99  # same picture, other light
    flat = np.full((48, 48), 10, np.uint8)  # no contrast to stretch: a mid-grey patch, no division by zero
    assert relight_dark(flat).std() == 0


def test_a_smile_in_the_dark_is_still_a_smile(crops):
    """The astronaut's face at a fifth of its light: relighting gives the model back the lit face."""
    dark = (crops[0].astype(np.float32) * 0.2).astype(np.uint8)
    assert cv2.cvtColor(dark, cv2.COLOR_BGR2GRAY).mean() < 60
    lit_probs = EmotionClassifier().predict(crops[:1])[0]
    relit = EmotionClassifier(relight=True).predict([dark])[0]
    plain = EmotionClassifier(relight=False).predict([dark])[0]
    happy = EMOTIONS.index("happy")
    assert relit.argmax() == happy
    assert np.abs(relit - lit_probs).sum() < np.abs(plain - lit_probs).sum()
    assert np.allclose(EmotionClassifier(relight=False).predict(crops[:1]), lit_probs[None], atol=1e-6)

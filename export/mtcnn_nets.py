"""Convert the three MTCNN networks of the ``mtcnn`` package (1.0.0) to ONNX.

The cascade itself (pyramid, NMS, box regression) is re-implemented in NumPy inside
``edge_fer.vision.mtcnn``; only the networks travel, so the runtime needs no TensorFlow. After conversion
the graphs are rewritten for ONNX Runtime's blocked-layout CPU kernels (``export.mtcnn_graph``: same maths,
a quarter to two fifths faster); the parity check runs on the rewritten file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.mtcnn_graph import optimise_for_onnxruntime
from export.onnx_tools import (
    PARITY_SAMPLES,
    ParityResult,
    check_parity,
    rename_input,
    rename_outputs,
    set_metadata,
)

log = logging.getLogger("edge_fer.export.mtcnn")

MTCNN_VERSION = "1.0.0"
OPSET = 13


@dataclass(frozen=True)
class NetSpec:
    name: str
    input_shape: tuple[int | None, ...]
    outputs: tuple[str, ...]
    weights: str


NETS: dict[str, NetSpec] = {
    "pnet": NetSpec("pnet", (None, None, None, 3), ("bbox_reg", "prob"), "pnet.lz4"),
    "rnet": NetSpec("rnet", (None, 24, 24, 3), ("bbox_reg", "prob"), "rnet.lz4"),
    "onet": NetSpec("onet", (None, 48, 48, 3), ("bbox_reg", "landmarks", "prob"), "onet.lz4"),
}


def load_keras_net(name: str):
    """Build one network with the package's own layer definitions and weights."""
    from importlib.metadata import version

    from mtcnn.network.onet import ONet
    from mtcnn.network.pnet import PNet
    from mtcnn.network.rnet import RNet
    from mtcnn.utils.tensorflow import load_weights

    installed = version("mtcnn")
    if installed != MTCNN_VERSION:
        raise RuntimeError(
            f"mtcnn {installed} is installed; the shipped models come from {MTCNN_VERSION}: "
            f"pip install mtcnn=={MTCNN_VERSION}"
        )
    model = {"pnet": PNet, "rnet": RNet, "onet": ONet}[name]()
    model.build()
    model.set_weights(load_weights(NETS[name].weights))
    return model


def parity_inputs(name: str, count: int = PARITY_SAMPLES, seed: int = 0) -> list[np.ndarray]:
    """Inputs in the networks' normalised range; P-Net gets varied sizes to test dynamic shapes."""
    rng = np.random.default_rng(seed)
    inputs = []
    for _ in range(count):
        if name == "pnet":
            h, w = (int(v) for v in rng.integers(12, 160, size=2))
            shape: tuple[int, ...] = (1, h, w, 3)
        else:
            side = NETS[name].input_shape[1]
            shape = (int(rng.integers(1, 9)), side, side, 3)
        inputs.append(rng.uniform(-1.0, 1.0, size=shape).astype(np.float32))
    return inputs


def export_net(name: str, out_dir: Path) -> tuple[Path, ParityResult]:
    import onnx
    import tensorflow as tf
    import tf2onnx

    spec = NETS[name]
    model = load_keras_net(name)
    signature = [tf.TensorSpec(spec.input_shape, tf.float32, name="input")]

    @tf.function(input_signature=signature)
    def forward(x):
        return model(x)

    proto, _ = tf2onnx.convert.from_function(forward, input_signature=signature, opset=OPSET)
    rename_input(proto, "input")
    rename_outputs(proto, spec.outputs)
    log.info("%s: rewritten for onnxruntime: %s", name, optimise_for_onnxruntime(proto))
    set_metadata(
        proto,
        {
            "edge_fer.role": f"mtcnn-{name}",
            "edge_fer.source": f"mtcnn=={MTCNN_VERSION} mtcnn/assets/weights/{spec.weights}",
            "edge_fer.normalization": '{"mean": 127.5, "std": 128.0}',
            "edge_fer.layout": "NHWC",
            "edge_fer.color": "rgb",
        },
    )
    proto.producer_name = "edge-fer export"
    onnx.checker.check_model(proto)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"mtcnn_{name}.onnx"
    onnx.save(proto, str(path))

    def reference(x: np.ndarray):
        return [np.asarray(o) for o in model(x)]

    parity = check_parity(reference, path, parity_inputs(name))
    return path, parity

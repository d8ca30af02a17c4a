"""The MTCNN graph rewrite keeps the maths and removes what kept ONNX Runtime out of its blocked layout."""

import numpy as np
import pytest

from edge_fer.vision.onnx_session import bundled_model

pytestmark = pytest.mark.export
onnx = pytest.importorskip("onnx", reason="needs the export extra: pip install -e '.[export]'")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from export.mtcnn_graph import optimise_for_onnxruntime  # noqa: E402


def tf2onnx_prelu(nodes, inits, x: str, channels: int, tag: str, rng) -> str:
    """tf2onnx's spelling of a per-channel PReLU: Relu(x) + Relu(-x) * (-alpha)."""
    alpha = rng.uniform(-1.2, 1.2, size=(1, channels, 1, 1)).astype(np.float32)
    inits.append(numpy_helper.from_array(-alpha, f"{tag}/neg_alpha"))
    nodes += [
        helper.make_node("Relu", [x], [f"{tag}/pos"]),
        helper.make_node("Neg", [x], [f"{tag}/negx"]),
        helper.make_node("Relu", [f"{tag}/negx"], [f"{tag}/relu_neg"]),
        helper.make_node("Mul", [f"{tag}/relu_neg", f"{tag}/neg_alpha"], [f"{tag}/mul"]),
        helper.make_node("Add", [f"{tag}/pos", f"{tag}/mul"], [f"{tag}/out"]),
    ]
    return f"{tag}/out"


def conv(nodes, inits, x: str, cin: int, cout: int, k: int, tag: str, rng) -> str:
    inits.append(numpy_helper.from_array(rng.normal(0, 0.4, (cout, cin, k, k)).astype(np.float32), f"{tag}/w"))
    inits.append(numpy_helper.from_array(rng.normal(0, 0.1, (cout,)).astype(np.float32), f"{tag}/b"))
    nodes.append(helper.make_node("Conv", [x, f"{tag}/w", f"{tag}/b"], [f"{tag}/y"], kernel_shape=[k, k]))
    return f"{tag}/y"


def pnet_like():
    """A P-Net-shaped graph as tf2onnx writes it: 10-channel conv, PReLU, pool, conv, PReLU, two heads,
    one of them a two-class softmax over channels; plus a flattening branch that must not be padded."""
    rng = np.random.default_rng(7)
    nodes, inits = [], []
    nodes.append(helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]))
    y = tf2onnx_prelu(nodes, inits, conv(nodes, inits, "nchw", 3, 10, 3, "c1", rng), 10, "p1", rng)
    nodes.append(helper.make_node("MaxPool", [y], ["pool"], kernel_shape=[2, 2], strides=[2, 2]))
    y = tf2onnx_prelu(nodes, inits, conv(nodes, inits, "pool", 10, 16, 3, "c2", rng), 16, "p2", rng)
    logits = conv(nodes, inits, y, 16, 2, 1, "head", rng)
    nodes.append(helper.make_node("Softmax", [logits], ["soft"], axis=1))
    nodes.append(helper.make_node("Transpose", ["soft"], ["prob"], perm=[0, 2, 3, 1]))
    box = conv(nodes, inits, y, 16, 4, 1, "box", rng)
    nodes.append(helper.make_node("Transpose", [box], ["bbox_reg"], perm=[0, 2, 3, 1]))
    side = conv(nodes, inits, "pool", 10, 6, 1, "side", rng)  # 6 channels, but it feeds a graph output
    nodes.append(helper.make_node("Transpose", [side], ["side_out"], perm=[0, 2, 3, 1]))
    outputs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, None, None, c])
        for n, c in (("bbox_reg", 4), ("prob", 2), ("side_out", 6))
    ]
    graph = helper.make_graph(
        nodes, "pnet_like", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, None, None, 3])], outputs
    )
    graph.initializer.extend(inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def run(model, x):
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})


def test_rewrite_keeps_outputs_and_removes_slow_ops():
    original = pnet_like()
    rewritten = pnet_like()
    counts = optimise_for_onnxruntime(rewritten)
    onnx.checker.check_model(rewritten)
    assert counts == {"padded_convs": 1, "prelus": 2, "sigmoid_heads": 1}
    ops = [n.op_type for n in rewritten.graph.node]
    assert "Neg" not in ops and "Mul" not in ops and "Softmax" not in ops
    x = np.random.default_rng(1).uniform(-1, 1, size=(1, 37, 53, 3)).astype(np.float32)
    want, got = run(original, x), run(rewritten, x)
    for w, g in zip(want, got):
        assert w.shape == g.shape
        np.testing.assert_allclose(g, w, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(got[1].sum(axis=-1), 1.0, atol=1e-6)
    weights = {i.name: numpy_helper.to_array(i) for i in rewritten.graph.initializer}
    assert weights["c1/w"].shape[0] == 16 and weights["c2/w"].shape[1] == 16  # padded to the NCHWc block
    assert weights["side/w"].shape[1] == 16  # a consumer of the padded tensor gets zero weights for it
    assert not weights["side/w"][:, 10:].any()


def test_shared_alpha_prelu_is_left_alone():
    model = pnet_like()
    inits = {i.name: i for i in model.graph.initializer}
    inits["p2/neg_alpha"].CopyFrom(numpy_helper.from_array(np.full((1, 1, 1, 1), -0.25, np.float32), "p2/neg_alpha"))
    x = np.random.default_rng(2).uniform(-1, 1, size=(1, 24, 30, 3)).astype(np.float32)
    want = run(model, x)
    assert optimise_for_onnxruntime(model)["prelus"] == 1  # only the per-channel one
    for w, g in zip(want, run(model, x)):
        np.testing.assert_allclose(g, w, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["mtcnn_pnet.onnx", "mtcnn_rnet.onnx", "mtcnn_onet.onnx"])
def test_shipped_mtcnn_models_are_rewritten(name):
    model = onnx.load(str(bundled_model(name)))
    ops = [n.op_type for n in model.graph.node]
    assert "Neg" not in ops[: ops.index("Transpose", 1)], f"{name}: PReLU in the conv trunk is tf2onnx's spelling"
    assert optimise_for_onnxruntime(model) == {"padded_convs": 0, "prelus": 0, "sigmoid_heads": 0}

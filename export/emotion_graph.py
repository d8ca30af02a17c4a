"""Rewrite tf2onnx's squeeze-and-excitation blocks so the compact nets stay in one layout.

Keras applies ``Dense`` to the pooled ``(N, 1, 1, C)`` tensor as a Tensordot, and tf2onnx spells that as
Reshape -> MatMul -> Reshape plus a Shape/Gather/Concat chain to rebuild the shape, then multiplies the
channel gates into the block's output in NHWC: a Transpose out of NCHW before the ``Mul`` and one back
after it, per block. The same maths in NCHW is two 1x1 convolutions on the ``(N, C, 1, 1)`` pool and a
broadcast ``Mul``, which ONNX Runtime runs without the transposes and fuses with the activations.

The rewrite is exact up to float rounding (measured 1e-10 on the shipped compact model); exports run
their parity check against Keras after it, and ``export quantize`` applies it before calibrating.
"""

from __future__ import annotations

import numpy as np

_NHWC = [0, 2, 3, 1]
_NCHW = [0, 3, 1, 2]


def squeeze_excite_to_conv(model) -> int:
    """Rewrite every matched squeeze-and-excitation block in place; returns how many were rewritten."""
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    replace: dict[int, list] = {}
    count = 0
    for mul in list(graph.node):
        block = _match(mul, producer, consumers, inits)
        if block is None:
            continue
        x, pooled, w1, b1, w2, b2, out = block
        p = f"se_conv_{count}"
        for name, value in (
            (f"{p}_reduce_w", w1.T[:, :, None, None]),
            (f"{p}_reduce_b", b1.reshape(-1)),
            (f"{p}_expand_w", w2.T[:, :, None, None]),
            (f"{p}_expand_b", b2.reshape(-1)),
        ):
            graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), name))
        after = consumers[mul.output[0]][0]
        replace[id(after)] = [
            helper.make_node("Conv", [pooled, f"{p}_reduce_w", f"{p}_reduce_b"], [f"{p}_reduce"], name=f"{p}_r"),
            helper.make_node("Relu", [f"{p}_reduce"], [f"{p}_relu"], name=f"{p}_relu"),
            helper.make_node("Conv", [f"{p}_relu", f"{p}_expand_w", f"{p}_expand_b"], [f"{p}_expand"], name=f"{p}_e"),
            helper.make_node("Sigmoid", [f"{p}_expand"], [f"{p}_gate"], name=f"{p}_sigmoid"),
            helper.make_node("Mul", [x, f"{p}_gate"], [out], name=f"{p}_scale"),
        ]
        replace[id(mul)] = []
        count += 1
    if not count:
        return 0
    nodes = []
    for node in graph.node:
        nodes.extend(replace.get(id(node), [node]))
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_dead(model)
    return count


def _match(mul, producer, consumers, inits):
    """``Transpose(NHWC) * gates -> Transpose(NCHW)`` with the gates computed from ``GAP`` of the same tensor."""
    from onnx import numpy_helper

    if mul.op_type != "Mul" or len(mul.input) != 2:
        return None
    to_nhwc = producer.get(mul.input[0])
    users = consumers.get(mul.output[0], [])
    if (
        to_nhwc is None
        or to_nhwc.op_type != "Transpose"
        or _perm(to_nhwc) != _NHWC
        or len(users) != 1
        or users[0].op_type != "Transpose"
        or _perm(users[0]) != _NCHW
    ):
        return None
    x = to_nhwc.input[0]

    def weight(name):
        return numpy_helper.to_array(inits[name]) if name in inits else None

    chain = ["Sigmoid", "Add", "Reshape", "MatMul", "Reshape", "Relu", "Add", "Reshape", "MatMul", "Reshape"]
    node = producer.get(mul.input[1])
    found = []
    for op in chain:
        if node is None or node.op_type != op:
            return None
        found.append(node)
        node = producer.get(node.input[0])
    if node is None or node.op_type != "GlobalAveragePool" or node.input[0] != x:
        return None
    _, add2, _, mm2, _, _, add1, _, mm1, _ = found
    w1, b1, w2, b2 = weight(mm1.input[1]), weight(add1.input[1]), weight(mm2.input[1]), weight(add2.input[1])
    if any(v is None for v in (w1, b1, w2, b2)) or w1.ndim != 2 or w2.ndim != 2:
        return None
    if w1.shape[1] != b1.size or w2.shape[0] != w1.shape[1] or w2.shape[1] != b2.size:
        return None
    return x, node.output[0], w1, b1, w2, b2, users[0].output[0]


def _perm(node) -> list[int] | None:
    for attr in node.attribute:
        if attr.name == "perm":
            return list(attr.ints)
    return None


def _drop_dead(model) -> None:
    """Remove nodes nothing reads (the orphaned shape arithmetic) and the initializers they held."""
    graph = model.graph
    needed = {out.name for out in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(name in needed for name in node.output):
            keep.append(node)
            needed.update(node.input)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    used = {name for node in graph.node for name in node.input}
    inits = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)

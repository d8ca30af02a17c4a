"""Helpers shared by every export: parity checks, output naming, metadata, hashes."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("edge_fer.export")

PARITY_TOLERANCE = 1e-4
PARITY_SAMPLES = 32


class ParityError(RuntimeError):
    """ONNX and Keras disagree beyond the tolerance: the exported file must not be used."""


@dataclass(frozen=True)
class ParityResult:
    samples: int
    max_abs_diff: float

    def as_dict(self) -> dict[str, float | int]:
        return {"samples": self.samples, "max_abs_diff": self.max_abs_diff}


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def rename_outputs(model, names: Sequence[str]) -> None:
    """Give graph outputs stable names; tf2onnx names them after TF tensors (``Identity_1:0``)."""
    graph = model.graph
    if len(graph.output) != len(names):
        raise ValueError(f"model has {len(graph.output)} outputs, {len(names)} names given")
    for out, new in zip(list(graph.output), names):
        old = out.name
        if old == new:
            continue
        for node in graph.node:
            for i, name in enumerate(node.output):
                if name == old:
                    node.output[i] = new
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new
        out.name = new


def rename_input(model, new: str) -> None:
    graph = model.graph
    if len(graph.input) != 1:
        raise ValueError("expected a single graph input")
    old = graph.input[0].name
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
    graph.input[0].name = new


def set_metadata(model, props: Mapping[str, str]) -> None:
    existing = {p.key: p for p in model.metadata_props}
    for key, value in props.items():
        if key in existing:
            existing[key].value = value
        else:
            entry = model.metadata_props.add()
            entry.key = key
            entry.value = value


def check_parity(
    reference: Callable[[np.ndarray], Sequence[np.ndarray]],
    onnx_path: str | Path,
    inputs: Sequence[np.ndarray],
    tolerance: float = PARITY_TOLERANCE,
) -> ParityResult:
    """Run both models on the same inputs and raise :class:`ParityError` past the tolerance."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    input_name = sess.get_inputs()[0].name
    worst = 0.0
    for x in inputs:
        expected = [np.asarray(e, dtype=np.float32) for e in reference(x)]
        got = sess.run(None, {input_name: x.astype(np.float32)})
        if len(expected) != len(got):
            raise ParityError(f"{onnx_path}: {len(got)} outputs, reference has {len(expected)}")
        for e, g in zip(expected, got):
            if e.shape != g.shape:
                raise ParityError(f"{onnx_path}: output shape {g.shape} != reference {e.shape}")
            worst = max(worst, float(np.max(np.abs(e - g))) if e.size else 0.0)
    result = ParityResult(samples=len(inputs), max_abs_diff=worst)
    if not worst <= tolerance:
        raise ParityError(
            f"{onnx_path}: ONNX differs from the reference by {worst:.3g} (tolerance {tolerance:g}) "
            f"over {len(inputs)} inputs; the export is wrong, do not ship it"
        )
    log.info("parity %s: %d inputs, max |diff| %.3g", Path(onnx_path).name, len(inputs), worst)
    return result


def update_manifest(manifest_path: Path, filename: str, entry: Mapping[str, object]) -> None:
    """Record provenance for one file; other entries are kept so exports can run one at a time."""
    data: dict[str, object] = {}
    if manifest_path.exists():
        data = json.loads(manifest_path.read_text())
    data[filename] = dict(entry)
    manifest_path.write_text(json.dumps(dict(sorted(data.items())), indent=2) + "\n")

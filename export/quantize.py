"""Int8 emotion models: ONNX Runtime's static quantization, calibrated on training faces.

An int8 convolution runs on the CPU's integer dot-product instructions (AVX-512 VNNI or AVX2 on x86,
the dot-product extension on arm64 boards), which is where a 2-core machine gets the time to average each
face with its mirror. Static quantization needs the range of every activation, measured here on FER2013
*training* faces run through the runtime's own preprocessing (``EmotionModel.preprocess``), so the ranges
are those the daemon will feed; validation and development-set faces are never used. Weights are int8
per output channel, activations uint8 per tensor, in QDQ form (what ONNX Runtime fuses into its
``QLinearConv`` kernels).

Quantization changes the answers a little, so the parity check of the float exports does not apply. The
check here compares the int8 model with the float one on other training faces than those calibrated on:
the share of faces whose top emotion agrees must reach :data:`MIN_AGREEMENT`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.onnx_tools import ParityError, set_metadata

log = logging.getLogger("edge_fer.export")

MIN_AGREEMENT = 0.97
BATCH = 32


@dataclass(frozen=True)
class QuantizeResult:
    """What the check measured: int8 against float on faces that were not calibrated on."""

    calibration_images: int
    check_images: int
    top1_agreement: float
    max_abs_diff: float
    mean_abs_diff: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "calibration_images": self.calibration_images,
            "check_images": self.check_images,
            "top1_agreement": round(self.top1_agreement, 4),
            "max_abs_diff": round(self.max_abs_diff, 4),
            "mean_abs_diff": round(self.mean_abs_diff, 5),
        }


def training_faces(root: Path, count: int, seed: int) -> tuple[list[Path], list[Path]]:
    """Two disjoint random draws of ``count`` face files from ``ROOT/train/<label>/`` (or ``ROOT/<label>/``)."""
    from export.data import IMAGE_SUFFIXES, _label_folders

    root = Path(root)
    split = root / "train" if (root / "train").is_dir() else root
    if not split.is_dir():
        raise ValueError(f"{root}: no such folder; give the FER2013 root holding train/<label>/*.jpg")
    files = sorted(
        p for folder in _label_folders(split).values() for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
    )
    if len(files) < 2 * count:
        raise ValueError(f"{split}: {len(files)} images, {2 * count} needed (--images {count} for each of two sets)")
    pick = np.random.default_rng(seed).permutation(len(files))[: 2 * count]
    chosen = [files[i] for i in pick]
    return chosen[:count], chosen[count:]


def read_faces(files: Sequence[Path]) -> list[np.ndarray]:
    import cv2

    faces = []
    for path in files:
        image = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ValueError(f"{path}: not a readable image; delete it or replace it")
        faces.append(image)
    return faces


def quantize_emotion(
    src: str | Path,
    dst: str | Path,
    calibration: Sequence[np.ndarray],
    check: Sequence[np.ndarray],
    name: str,
    provenance: dict[str, object],
    min_agreement: float = MIN_AGREEMENT,
) -> QuantizeResult:
    """Write the int8 form of emotion model ``src`` to ``dst`` and check it against ``src``.

    ``calibration`` and ``check`` are uint8 face crops (any size); half of each set is mirrored, since
    the runtime feeds mirrored faces when ``classifier.flip`` is on. ``dst`` is written only once the
    check has passed, so a failed quantization never leaves a file a config could pick up.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from edge_fer.vision.emotion import EmotionModel
    from export.emotion_graph import squeeze_excite_to_conv

    reference = EmotionModel(src)
    calib = reference.preprocess(_half_mirrored(calibration))
    input_name = reference.session.get_inputs()[0].name

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._next = 0

        def get_next(self):
            if self._next >= len(calib):
                return None
            batch = calib[self._next : self._next + BATCH]
            self._next += BATCH
            return {input_name: batch}

    dst = Path(dst)
    if not dst.parent.is_dir():
        raise ValueError(f"{dst.parent}: no such folder; create it first")
    with tempfile.TemporaryDirectory(prefix="edge-fer-quantize-") as tmp:
        model = onnx.load(str(src))
        rewritten = squeeze_excite_to_conv(model)
        log.info("%s: %d squeeze-excite blocks rewritten as 1x1 convolutions", src, rewritten)
        plain = Path(tmp) / "float.onnx"
        onnx.save(model, str(plain))
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(plain), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(Path(tmp) / "int8.onnx"),
            _Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            # Probabilities stay float: quantized to 8 bits they would no longer sum to one.
            nodes_to_exclude=[n.name for n in onnx.load(str(prepared)).graph.node if n.op_type == "Softmax"],
        )
        quantized = onnx.load(str(Path(tmp) / "int8.onnx"))
        kept = {p.key: p.value for p in model.metadata_props if p.key.startswith("edge_fer.")}
        kept["edge_fer.name"] = name
        kept["edge_fer.quantization"] = json.dumps(
            {"scheme": "static int8 QDQ, weights per channel, activations uint8, MinMax", **provenance}
        )
        del quantized.metadata_props[:]
        set_metadata(quantized, kept)
        quantized.producer_name = "edge-fer export quantize"
        onnx.checker.check_model(quantized)
        candidate = Path(tmp) / dst.name
        onnx.save(quantized, str(candidate))
        result = compare(reference, EmotionModel(candidate), check, calibration_images=len(calib))
        if result.top1_agreement < min_agreement:
            raise ParityError(
                f"{dst}: the int8 model agrees with the float one on {result.top1_agreement:.1%} of "
                f"{result.check_images} faces (at least {min_agreement:.0%} needed); do not ship it"
            )
        partial = dst.with_name(dst.name + ".partial")
        shutil.copyfile(candidate, partial)
        os.replace(partial, dst)  # whole or absent, even if this process dies mid-copy
    return result


def compare(reference, candidate, faces: Sequence[np.ndarray], calibration_images: int) -> QuantizeResult:
    faces = _half_mirrored(faces)
    a = np.concatenate([reference.predict(faces[i : i + BATCH]) for i in range(0, len(faces), BATCH)])
    b = np.concatenate([candidate.predict(faces[i : i + BATCH]) for i in range(0, len(faces), BATCH)])
    diff = np.abs(a - b)
    return QuantizeResult(
        calibration_images=calibration_images,
        check_images=len(faces),
        top1_agreement=float(np.mean(a.argmax(1) == b.argmax(1))),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
    )


def _half_mirrored(faces: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.ascontiguousarray(f[:, ::-1]) if i % 2 else f for i, f in enumerate(faces)]

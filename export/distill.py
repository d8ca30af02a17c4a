"""Soft targets from a teacher ensemble, so one small student can learn what several models agree on.

The teacher is any set of emotion models the runtime can load (bundled names or ONNX files), run
through :class:`~edge_fer.vision.emotion.EmotionClassifier` exactly as ``edge-fer eval`` runs them,
flip-averaged by default: that is the ensemble whose accuracy the student should approach at a
fraction of its cost per face. Targets are computed once per run on the un-augmented training images
(offline distillation: the ensemble costs seconds per epoch of images, not a second network inside
the training graph) and cached in the run folder, keyed by the teacher files' sha256, so a resumed
run trains on the same targets without recomputing them.

Teachers trained on the same images are over-confident on them; a temperature above 1 flattens their
probabilities (``p ** (1 / T)``, renormalised), which keeps their ranking of the wrong classes (the
part one-hot labels lack) and never changes their top label.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import numpy as np

from export.checkpoint import atomic_write_bytes
from export.data import Split

log = logging.getLogger("edge_fer.export.distill")
TARGETS = "teacher.npz"
BATCH = 256


def soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Rows of probabilities flattened (T > 1) or sharpened (T < 1); the argmax of each row is kept."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, not {temperature}")
    logp = np.log(np.clip(probs.astype(np.float64), 1e-12, None)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    out = np.exp(logp)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def mixed_targets(labels: np.ndarray, soft: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * one_hot(labels) + weight * soft``: the loss is then that mix of the two losses."""
    if soft.shape[0] != len(labels):
        raise ValueError(f"{soft.shape[0]} teacher rows for {len(labels)} images")
    if not 0 <= weight <= 1:
        raise ValueError(f"teacher weight must be in [0, 1], not {weight}")
    onehot = np.eye(soft.shape[1], dtype=np.float32)[labels]
    return ((1 - weight) * onehot + weight * soft).astype(np.float32)


def _identity(models: tuple[str, ...], flip: bool, split: Split, labels: tuple[str, ...]) -> str:
    from edge_fer.bundled import emotion_model_path
    from edge_fer.vision.emotion import file_sha256

    shas = [file_sha256(emotion_model_path(m)) for m in models]
    data = hashlib.sha256(split.images.tobytes())
    data.update(split.labels.astype(np.int64).tobytes())
    return json.dumps({"models": shas, "flip": flip, "labels": list(labels), "data": data.hexdigest()}, sort_keys=True)


def teacher_probabilities(models: tuple[str, ...], split: Split, labels: tuple[str, ...], flip: bool) -> np.ndarray:
    """The ensemble's probabilities ``(N, len(labels))`` for every image of ``split``, columns in ``labels``."""
    from edge_fer.vision.emotion import EmotionClassifier

    classifier = EmotionClassifier(list(models), flip=flip)
    missing = [name for name in labels if name not in classifier.labels]
    if missing:
        raise ValueError(f"teacher {classifier.name} has no {', '.join(missing)} label; its labels: "
                         f"{', '.join(classifier.labels)}")  # fmt: skip
    columns = [classifier.labels.index(name) for name in labels]
    images = split.images[..., 0] if split.images.shape[-1] == 1 else split.images[..., ::-1]  # gray, or RGB->BGR
    out = np.empty((len(split), len(labels)), np.float32)
    for start in range(0, len(split), BATCH):
        probs = classifier.predict(list(images[start : start + BATCH]))[:, columns]
        out[start : start + BATCH] = probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)
    return out


def cached_teacher_probabilities(
    run_dir: Path, models: tuple[str, ...], split: Split, labels: tuple[str, ...], flip: bool
) -> np.ndarray:
    """:func:`teacher_probabilities`, computed once per run and read back from ``run_dir`` after that."""
    identity = _identity(models, flip, split, labels)
    path = run_dir / TARGETS
    if path.exists():
        with np.load(path) as saved:
            if str(saved["identity"]) == identity:
                return saved["probs"]
        log.warning("%s: made for other teacher models or data; computing the targets again", path)
    probs = teacher_probabilities(models, split, labels, flip)
    top = probs.argmax(axis=1)
    print(f"teacher {'+'.join(models)}{' (flip)' if flip else ''}: agrees with {np.mean(top == split.labels):.4f} "
          f"of the {len(split)} training labels", flush=True)  # fmt: skip
    buffer = io.BytesIO()
    np.savez(buffer, probs=probs, identity=np.array(identity))
    atomic_write_bytes(path, buffer.getvalue())
    return probs

"""Evaluate a run's best weights on validation, write its reports, and optionally ship it as ONNX.

Used at the end of every ``train`` invocation (finished, stopped early or paused by a limit) and by
``python -m export report RUN_DIR``, which rebuilds everything from ``checkpoint.npz`` alone.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edge_fer.offline.evaluate import Metrics
from export.architectures import get_architecture
from export.augment import Augmentation, eval_dataset
from export.camera_augment import CameraAugmentation
from export.checkpoint import Checkpoint
from export.data import DataSet, Split, load_dataset
from export.reports import write_reports


def best_model(config, classes: int, best: list[np.ndarray]):
    """The network with the best epoch's weights, uncompiled (what gets saved and exported)."""
    from export.architectures import build_model
    from export.checkpoint import assign_values

    model = build_model(config.arch, config.size, classes)
    assign_values(model.variables, best, "best weights")
    return model


def predict(model, split: Split, config, classes: int, flip: bool = False) -> np.ndarray:
    arch = get_architecture(config.arch)
    ds = eval_dataset(split, classes, batch_size=256, out_size=config.size, mean=arch.mean, std=arch.std, flip=flip)
    return np.asarray(model.predict(ds, verbose=0), np.float64)


def export_run(run_dir: Path, model, config, labels: tuple[str, ...], facts: dict, name: str = "") -> dict:
    """``model.keras`` and ``model.onnx`` (metadata from the architecture, parity-checked), atomically."""
    from export.emotion import EmotionMeta, export_keras

    arch = get_architecture(config.arch)
    keras_tmp = run_dir / ".model.tmp.keras"
    model.save(keras_tmp)
    os.replace(keras_tmp, run_dir / "model.keras")
    meta = EmotionMeta(
        name=name or f"{config.arch}-{run_dir.resolve().name}",
        labels=labels,
        color=arch.color,
        mean=arch.mean,
        std=arch.std,
        output="probabilities",
        extra={"edge_fer.training": json.dumps(facts, sort_keys=True)},
    )
    onnx_tmp = run_dir / ".model.tmp.onnx"
    parity = export_keras(run_dir / "model.keras", onnx_tmp, meta)
    os.replace(onnx_tmp, run_dir / "model.onnx")
    print(f"{run_dir / 'model.onnx'}: parity max |diff| {parity.max_abs_diff:.3g} over {parity.samples} inputs")
    return {"path": "model.onnx", "name": meta.name, **parity.as_dict()}


def _versions() -> dict[str, str]:
    import platform

    import keras
    import tensorflow as tf

    return {"python": platform.python_version(), "numpy": np.__version__, "tensorflow": tf.__version__,
            "keras": keras.__version__}  # fmt: skip


def finish_run(run_dir: Path, config, state, data: DataSet, best: list[np.ndarray], invocation) -> dict:
    t0 = time.monotonic()
    classes = len(data.labels)
    model = best_model(config, classes, best)
    probs = predict(model, data.val, config, classes)
    flipped = predict(model, data.val, config, classes, flip=True)
    metrics = Metrics.from_predictions(data.labels, data.val.labels, probs.argmax(axis=1))
    flip_acc = float(np.mean((probs + flipped).argmax(axis=1) == data.val.labels))
    arch = get_architecture(config.arch)
    seconds = [row["seconds"] for row in state.history]
    summary = {
        "arch": config.arch,
        "architecture": arch.summary,
        "params": int(model.count_params()),
        "input": {"size": config.size, "color": arch.color, "mean": arch.mean, "std": arch.std},
        "labels": list(data.labels),
        "status": state.status if state.status != "running" else "paused",
        "epochs_planned": config.epochs,
        "epochs_run": state.epoch,
        "best_epoch": state.best_epoch,
        "val_accuracy": metrics.accuracy,
        "val_accuracy_flip": flip_acc,
        "macro_f1": metrics.macro_f1,
        "per_class": metrics.to_json()["per_class"],
        "training_seconds": round(state.train_seconds, 1),
        "seconds_per_epoch": round(float(np.median(seconds)), 1) if seconds else None,
        "seed": config.seed,
        "config": asdict(config),
        "augmentation": asdict(Augmentation()),
        "camera_augmentation": {"share": config.camera_aug, **asdict(CameraAugmentation())},
        "data": data.describe(),
        "versions": _versions(),
        "command": invocation.command,
    }
    if invocation.export:
        facts = {"arch": config.arch, "best_epoch": state.best_epoch, "val_accuracy": round(metrics.accuracy, 4),
                 "camera_aug": config.camera_aug}  # fmt: skip
        summary["onnx"] = export_run(run_dir, model, config, data.labels, facts, invocation.name)
    title = (
        f"{config.arch}, best epoch {state.best_epoch} of {state.epoch}: val acc {metrics.accuracy:.4f} "
        f"(flip-averaged {flip_acc:.4f}), macro-F1 {metrics.macro_f1:.4f}"
    )
    write_reports(run_dir, metrics, state.history, state.best_epoch, title, summary)
    print(f"{title}; reports in {run_dir} ({time.monotonic() - t0:.1f}s)", flush=True)
    return summary


def report_run(run_dir: Path, export: bool, command: str = "", name: str = "") -> dict:
    """Regenerate every report (and optionally the ONNX export) from the checkpoint, mid-run or after."""
    from export.train import Invocation, RunState, TrainConfig

    ckpt = Checkpoint.load(run_dir)
    config = TrainConfig.from_dict(ckpt.state["config"])
    state = RunState(**ckpt.state["progress"])
    arch = get_architecture(config.arch)
    data = load_dataset(
        config.data,
        arch.color,
        config.size,
        limit_per_class=config.limit_per_class or None,
        val_fraction=config.val_fraction,
        seed=config.seed,
    )
    if list(data.labels) != ckpt.state["labels"]:
        raise ValueError(f"{config.data}: labels {list(data.labels)} differ from the run's {ckpt.state['labels']}")
    return finish_run(run_dir, config, state, data, ckpt.best, Invocation(export=export, command=command, name=name))

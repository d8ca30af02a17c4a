"""Train an emotion classifier into a run folder that survives being killed at any moment.

The loop is a plain Python loop over epochs around ``model.fit`` for one epoch, so everything
that must persist between epochs (best weights, early-stopping counter, history) lives in one
state object saved with the weights in ``checkpoint.npz`` after every epoch. Resuming rebuilds the
network with the same builder, restores the arrays, and continues with the next epoch's data
order and augmentation, which depend only on (seed, epoch, step).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from export.architectures import get_architecture
from export.augment import Augmentation, steps_per_epoch
from export.camera_augment import CameraAugmentation
from export.checkpoint import CHECKPOINT, Checkpoint, atomic_write_text
from export.data import CLASS_WEIGHT_MODES, class_weights, load_dataset

log = logging.getLogger("edge_fer.export.train")
HISTORY_KEYS = ("epoch", "loss", "acc", "val_loss", "val_acc", "lr", "seconds")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a run computes; saved in the checkpoint and fixed for its life."""

    data: str
    arch: str = "compact"
    epochs: int = 60
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    label_smoothing: float = 0.1
    class_weights: str = "none"
    patience: int = 20
    input_size: int = 0  # 0: the architecture's own
    limit_per_class: int = 0  # 0: no limit
    val_fraction: float = 0.1
    warmup_epochs: int = 2
    weight_decay: float = 0.0
    deterministic: bool = True
    camera_aug: float = 0.0  # share of each batch given the camera recipe; 0: the plain recipe only
    teacher: tuple[str, ...] = ()  # emotion models whose flip-averaged mean is distilled; (): labels only
    teacher_weight: float = 0.7  # share of the teacher's probabilities in each target
    teacher_temperature: float = 2.0  # > 1 flattens the teacher's probabilities (export.distill.soften)

    def __post_init__(self) -> None:
        get_architecture(self.arch)
        object.__setattr__(self, "teacher", tuple(self.teacher))  # a list when read back from JSON
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr}
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, not {value}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"--label-smoothing must be in [0, 1), not {self.label_smoothing}")
        if self.class_weights not in CLASS_WEIGHT_MODES:
            raise ValueError(f"--class-weights must be one of {', '.join(CLASS_WEIGHT_MODES)}")
        for name in ("patience", "limit_per_class", "warmup_epochs", "weight_decay", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must not be negative")
        if not 0 <= self.camera_aug <= 1:
            raise ValueError(f"--camera-aug must be a share of each batch in [0, 1], not {self.camera_aug}")
        if self.input_size and self.input_size < 16:
            raise ValueError(f"--input-size {self.input_size} is too small (16 or more)")
        if not 0 <= self.teacher_weight <= 1:
            raise ValueError(f"--teacher-weight must be in [0, 1], not {self.teacher_weight}")
        if not self.teacher_temperature > 0:
            raise ValueError(f"--teacher-temperature must be positive, not {self.teacher_temperature}")
        for model in self.teacher:
            _check_teacher(model)

    @property
    def size(self) -> int:
        return self.input_size or get_architecture(self.arch).input_size

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def _check_teacher(model: str) -> None:
    from edge_fer.bundled import ModelError, emotion_model_path

    try:
        path = emotion_model_path(model)
    except ModelError as exc:
        raise ValueError(f"--teacher {exc}") from None
    if not path.is_file():
        raise ValueError(f"--teacher {model}: no such file; give a bundled model name or an ONNX file")


@dataclass
class RunState:
    """Progress between epochs: what early stopping, checkpoint selection and the reports need."""

    epoch: int = 0  # epochs completed
    best_epoch: int = 0
    best_val_acc: float = -1.0
    best_val_loss: float = math.inf
    wait: int = 0
    status: str = "running"  # running | finished | early_stopping
    train_seconds: float = 0.0
    history: list[dict] | None = None

    def record(self, row: dict, patience: int) -> bool:
        """Add one epoch; returns True when its weights are the new best on validation accuracy."""
        self.history = [*(self.history or []), row]
        self.epoch = row["epoch"]
        self.train_seconds += row["seconds"]
        if row["val_loss"] < self.best_val_loss:
            self.best_val_loss, self.wait = row["val_loss"], 0
        else:
            self.wait += 1
        improved = row["val_acc"] > self.best_val_acc
        if improved:
            self.best_val_acc, self.best_epoch = row["val_acc"], row["epoch"]
        if patience and self.wait >= patience:
            self.status = "early_stopping"
        return improved


def _optimizer(keras, config: TrainConfig, steps: int):
    """Adam, as in the report, under a linear warm-up then cosine decay to 1% of the peak rate."""
    total = config.epochs * steps
    warm = min(config.warmup_epochs * steps, total - 1)
    if warm > 0:
        schedule = keras.optimizers.schedules.CosineDecay(
            config.lr * 0.1, total - warm, alpha=0.01, warmup_target=config.lr, warmup_steps=warm
        )
    else:
        schedule = keras.optimizers.schedules.CosineDecay(config.lr, total, alpha=0.01)
    if not config.weight_decay:
        return keras.optimizers.Adam(schedule)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


def compiled_model(config: TrainConfig, classes: int, steps: int):
    import keras

    from export.architectures import build_model

    keras.utils.set_random_seed(config.seed)
    model = build_model(config.arch, config.size, classes)
    model.compile(
        optimizer=_optimizer(keras, config, steps),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )
    model.optimizer.build(model.trainable_variables)
    return model


def _write_history(run_dir: Path, history: list[dict]) -> None:
    lines = [",".join(HISTORY_KEYS)] + [",".join(f"{row[k]:.6g}" for k in HISTORY_KEYS) for row in history]
    atomic_write_text(run_dir / "history.csv", "\n".join(lines) + "\n")
    atomic_write_text(run_dir / "history.json", json.dumps(history, indent=1) + "\n")


def _progress(row: dict, config: TrainConfig, state: RunState) -> str:
    return (
        f"epoch {row['epoch']}/{config.epochs}  loss {row['loss']:.4f}  acc {row['acc']:.4f}  "
        f"val_loss {row['val_loss']:.4f}  val_acc {row['val_acc']:.4f}  lr {row['lr']:.2e}  "
        f"{row['seconds']:.1f}s  best {state.best_val_acc:.4f}@{state.best_epoch}"
    )


@dataclass(frozen=True)
class Invocation:
    """How long this process may train; none of it changes what the run computes."""

    stop_after: int = 0  # epochs in this invocation, 0: no limit
    time_limit_s: float = 0.0  # 0: no limit
    export: bool = False
    command: str = ""
    name: str = ""  # the exported model's edge_fer.name; empty: "<arch>-<run folder>"


def train(config: TrainConfig, run_dir: Path, ckpt: Checkpoint | None, invocation: Invocation) -> RunState:
    """Train (or continue) the run in ``run_dir``; writes the checkpoint, history and reports."""
    started = time.monotonic()
    if ckpt is None and (run_dir / CHECKPOINT).exists():
        raise ValueError(f"{run_dir} already holds a run; add --resume to continue it or choose a new --out")
    arch = get_architecture(config.arch)
    data = load_dataset(
        config.data, arch.color, config.size, limit_per_class=config.limit_per_class or None,
        val_fraction=config.val_fraction, seed=config.seed,
    )  # fmt: skip
    if ckpt is not None and ckpt.state["labels"] != list(data.labels):
        raise ValueError(f"{config.data}: labels {list(data.labels)} differ from the run's {ckpt.state['labels']}")
    run_dir.mkdir(parents=True, exist_ok=True)

    import tensorflow as tf

    from export.augment import eval_dataset, train_dataset
    from export.checkpoint import assign_values, variable_values
    from export.reports import write_curves
    from export.run_report import finish_run

    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    classes = len(data.labels)
    steps = steps_per_epoch(len(data.train), config.batch_size)
    model = compiled_model(config, classes, steps)
    state = RunState(history=[])
    best = variable_values(model.variables)
    if ckpt is not None:
        assign_values(model.variables, ckpt.model, "model")
        assign_values(model.optimizer.variables, ckpt.optimizer, "optimizer")
        state = RunState(**ckpt.state["progress"])
        best = ckpt.best
        print(f"resuming {run_dir} after epoch {state.epoch} (best val_acc {state.best_val_acc:.4f})", flush=True)
    aug = Augmentation()
    weights = class_weights(data.train.counts(classes), config.class_weights)
    targets = None
    if config.teacher:
        from export.distill import cached_teacher_probabilities, mixed_targets, soften

        probs = cached_teacher_probabilities(run_dir, config.teacher, data.train, data.labels, flip=True)
        targets = mixed_targets(data.train.labels, soften(probs, config.teacher_temperature), config.teacher_weight)
    val_ds = eval_dataset(data.val, classes, batch_size=256, out_size=config.size, mean=arch.mean, std=arch.std)
    params = {"arch": config.arch, "params": int(model.count_params()), "labels": list(data.labels)}
    print(f"{config.arch}: {params['params']:,} parameters; {data.describe()['train_counts']} train, "
          f"{len(data.val)} val ({data.val_source}); {steps} steps/epoch", flush=True)  # fmt: skip
    done_here = 0
    while state.status == "running" and state.epoch < config.epochs:
        if invocation.stop_after and done_here >= invocation.stop_after:
            break
        slowest = max((row["seconds"] for row in state.history[-3:]), default=0.0)
        if invocation.time_limit_s and time.monotonic() - started + 1.1 * slowest > invocation.time_limit_s:
            print(f"time limit: stopping before epoch {state.epoch + 1}; continue with --resume", flush=True)
            break
        epoch = state.epoch
        t0 = time.monotonic()
        train_ds = train_dataset(
            data.train, classes, weights, epoch=epoch, batch_size=config.batch_size, seed=config.seed,
            out_size=config.size, aug=aug, mean=arch.mean, std=arch.std,
            camera=CameraAugmentation(), camera_share=config.camera_aug, targets=targets,
        )  # fmt: skip
        fit = model.fit(
            train_ds, epochs=epoch + 1, initial_epoch=epoch, validation_data=val_ds, shuffle=False, verbose=0
        ).history
        row = {
            "epoch": epoch + 1,
            "loss": float(fit["loss"][-1]),
            "acc": float(fit["accuracy"][-1]),
            "val_loss": float(fit["val_loss"][-1]),
            "val_acc": float(fit["val_accuracy"][-1]),
            "lr": float(np.asarray(model.optimizer.learning_rate)),
            "seconds": time.monotonic() - t0,
        }
        if state.record(row, config.patience):
            best = variable_values(model.variables)
        if state.status == "running" and state.epoch >= config.epochs:
            state.status = "finished"
        done_here += 1
        Checkpoint(
            {"config": asdict(config), "labels": list(data.labels), "progress": asdict(state)},
            variable_values(model.variables),
            variable_values(model.optimizer.variables),
            best,
        ).save(run_dir)
        atomic_write_text(run_dir / "state.json", json.dumps({**params, "progress": asdict(state)}, indent=1))
        _write_history(run_dir, state.history)
        write_curves(run_dir, state.history, state.best_epoch, f"{config.arch} on {Path(config.data).name}")
        print(_progress(row, config, state), flush=True)
        if state.status == "early_stopping":
            print(f"early stopping: val_loss has not improved for {config.patience} epochs", flush=True)
    if state.status != "running" and done_here == 0:
        print(f"{run_dir}: already done ({state.status} after {state.epoch} epochs); regenerating reports", flush=True)
    if state.epoch:
        finish_run(run_dir, config, state, data, best, invocation)
    return state

"""The run directory's checkpoint: one file, replaced atomically, holding everything a resume needs.

Model variables (BatchNorm statistics and dropout seed state included), optimizer variables (Adam
moments and the step counter, which is also the learning-rate schedule's position), the best
epoch's weights and the JSON training state all go into ``checkpoint.npz``, written to a temporary
file, synced and renamed over the old one. A run killed at any instant therefore leaves either the
previous epoch's checkpoint or the new one, never a mix. Data order and augmentation are functions
of (seed, epoch, step), so no random-generator state is needed beyond the dropout seeds.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHECKPOINT = "checkpoint.npz"
FORMAT = 1


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class Checkpoint:
    """What ``checkpoint.npz`` holds, as plain arrays and a JSON-compatible state."""

    state: dict
    model: list[np.ndarray]
    optimizer: list[np.ndarray]
    best: list[np.ndarray]

    def __post_init__(self) -> None:
        if self.best and len(self.best) != len(self.model):
            raise ValueError(f"best weights have {len(self.best)} arrays, model has {len(self.model)}")

    def save(self, run_dir: Path) -> Path:
        arrays: dict[str, np.ndarray] = {
            "state": np.frombuffer(json.dumps({"format": FORMAT, **self.state}).encode(), np.uint8)
        }
        for prefix, values in (("m", self.model), ("o", self.optimizer), ("b", self.best)):
            arrays.update({f"{prefix}{i}": np.asarray(v) for i, v in enumerate(values)})
        path = run_dir / CHECKPOINT
        _save_npz(path, arrays)
        return path

    @classmethod
    def load(cls, run_dir: Path) -> Checkpoint:
        path = run_dir / CHECKPOINT
        if not path.is_file():
            raise ValueError(f"{run_dir}: no {CHECKPOINT}; train into it first (python -m export train --out ...)")
        try:
            with np.load(path) as data:
                state = json.loads(bytes(data["state"]).decode())
                groups = {p: _numbered(data, p) for p in ("m", "o", "b")}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path}: unreadable checkpoint ({exc}); delete the run folder and train again") from None
        if state.pop("format", None) != FORMAT:
            raise ValueError(f"{path}: written by another version of the trainer; train again into a new --out")
        return cls(state, groups["m"], groups["o"], groups["b"])


def _numbered(data, prefix: str) -> list[np.ndarray]:
    out = []
    while f"{prefix}{len(out)}" in data:
        out.append(data[f"{prefix}{len(out)}"])
    return out


def variable_values(variables: Sequence) -> list[np.ndarray]:
    return [np.asarray(v.numpy()) for v in variables]


def assign_values(variables: Sequence, values: Sequence[np.ndarray], what: str) -> None:
    """Restore by position, refusing any mismatch: the model is rebuilt by the same builder."""
    if len(variables) != len(values):
        raise ValueError(f"{what}: checkpoint has {len(values)} arrays, the rebuilt network {len(variables)}")
    for var, value in zip(variables, values):
        if tuple(var.shape) != tuple(value.shape):
            raise ValueError(f"{what}: {var.path} has shape {tuple(var.shape)}, checkpoint {value.shape}")
    for var, value in zip(variables, values):
        var.assign(value)

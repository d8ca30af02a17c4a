"""The report's evaluation, kept for every run: classification report, confusion matrix, curves, summary.

Metrics are computed with NumPy (no scikit-learn in the environment); the text layout follows
scikit-learn's ``classification_report`` so numbers can be compared with the report's tables at a
glance. Figures use matplotlib's object API with the Agg canvas, which leaves pyplot's global state
(and any interactive backend) alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.checkpoint import atomic_write_bytes, atomic_write_text

REPORT_FILES = ("classification_report.txt", "confusion_matrix.png", "curves.png", "summary.json")


@dataclass(frozen=True)
class ClassMetrics:
    """Per-label precision, recall, F1 and support, from one confusion matrix (rows: truth)."""

    labels: tuple[str, ...]
    confusion: np.ndarray

    def __post_init__(self) -> None:
        k = len(self.labels)
        if self.confusion.shape != (k, k):
            raise ValueError(f"confusion matrix is {self.confusion.shape}, expected ({k}, {k})")

    @classmethod
    def from_predictions(cls, labels: Sequence[str], y_true: np.ndarray, y_pred: np.ndarray) -> ClassMetrics:
        k = len(labels)
        y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
        if y_true.shape != y_pred.shape:
            raise ValueError(f"{y_true.shape[0]} true labels but {y_pred.shape[0]} predictions")
        flat = np.bincount(y_true * k + y_pred, minlength=k * k)
        return cls(tuple(labels), flat.reshape(k, k))

    @property
    def support(self) -> np.ndarray:
        return self.confusion.sum(axis=1)

    @property
    def precision(self) -> np.ndarray:
        return _ratio(np.diag(self.confusion), self.confusion.sum(axis=0))

    @property
    def recall(self) -> np.ndarray:
        return _ratio(np.diag(self.confusion), self.support)

    @property
    def f1(self) -> np.ndarray:
        p, r = self.precision, self.recall
        return _ratio(2 * p * r, p + r)

    @property
    def accuracy(self) -> float:
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else 0.0

    @property
    def macro_f1(self) -> float:
        return float(self.f1.mean())

    def per_class(self) -> dict[str, dict[str, float]]:
        return {
            label: {
                "precision": float(self.precision[i]),
                "recall": float(self.recall[i]),
                "f1": float(self.f1[i]),
                "support": int(self.support[i]),
            }
            for i, label in enumerate(self.labels)
        }

    def text(self) -> str:
        width = max(12, *(len(lb) for lb in self.labels))
        head = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
        rows = [head, ""]
        for i, label in enumerate(self.labels):
            rows.append(
                f"{label:>{width}} {self.precision[i]:9.4f} {self.recall[i]:9.4f} {self.f1[i]:9.4f} "
                f"{self.support[i]:9d}"
            )
        n = int(self.support.sum())
        w = self.support / n if n else np.zeros(len(self.labels))
        p, r = self.precision, self.recall
        rows += [
            "",
            f"{'accuracy':>{width}} {'':9} {'':9} {self.accuracy:9.4f} {n:9d}",
            f"{'macro avg':>{width}} {p.mean():9.4f} {r.mean():9.4f} {self.macro_f1:9.4f} {n:9d}",
            f"{'weighted avg':>{width}} {(p * w).sum():9.4f} {(r * w).sum():9.4f} {(self.f1 * w).sum():9.4f} {n:9d}",
        ]
        return "\n".join(rows) + "\n"


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _png(fig) -> bytes:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def confusion_png(metrics: ClassMetrics, title: str) -> bytes:
    """Row-normalised (recall per true label) with the raw counts printed under each share."""
    from matplotlib.figure import Figure

    cm = metrics.confusion
    share = _ratio(cm, cm.sum(axis=1, keepdims=True).repeat(cm.shape[1], axis=1))
    k = len(metrics.labels)
    fig = Figure(figsize=(1.0 + 0.85 * k, 0.6 + 0.8 * k))
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true label")
    ax.set_xticks(range(k), metrics.labels, rotation=45, ha="right")
    ax.set_yticks(range(k), metrics.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    for i in range(k):
        for j in range(k):
            color = "white" if share[i, j] > 0.5 else "black"
            ax.text(j, i, f"{share[i, j]:.2f}\n{cm[i, j]}", ha="center", va="center", fontsize=7, color=color)
    fig.tight_layout()
    return _png(fig)


def curves_png(history: Sequence[dict], best_epoch: int | None, title: str) -> bytes:
    """Loss and accuracy per epoch, training (augmented) against validation, best epoch marked."""
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(10, 4))
    for n, (key, name) in enumerate((("loss", "loss"), ("acc", "accuracy")), start=1):
        ax = fig.add_subplot(1, 2, n)
        ax.plot(epochs, [row[key] for row in history], marker=".", label=f"train {name}")
        ax.plot(epochs, [row[f"val_{key}"] for row in history], marker=".", label=f"validation {name}")
        if best_epoch:
            ax.axvline(best_epoch, color="gray", linestyle="--", linewidth=1, label=f"best epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


def write_curves(run_dir: Path, history: Sequence[dict], best_epoch: int | None, title: str) -> None:
    if history:
        atomic_write_bytes(run_dir / "curves.png", curves_png(history, best_epoch, title))


def write_reports(
    run_dir: Path, metrics: ClassMetrics, history: Sequence[dict], best_epoch: int | None, title: str, summary: dict
) -> None:
    atomic_write_text(run_dir / "classification_report.txt", f"{title}\n\n{metrics.text()}")
    atomic_write_bytes(run_dir / "confusion_matrix.png", confusion_png(metrics, title))
    write_curves(run_dir, history, best_epoch, title)
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")

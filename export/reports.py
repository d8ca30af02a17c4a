"""The report's evaluation, kept for every run: classification report, confusion matrix, curves, summary.

Metrics and the confusion-matrix drawing are the runtime's own (:mod:`edge_fer.offline.evaluate`, what
``edge-fer eval`` prints and draws), so a training report and a later ``edge-fer eval`` of the exported model
say the same thing and look the same. The training curves use matplotlib's object API with the Agg
canvas, which leaves pyplot's global state (and any interactive backend) alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from edge_fer.offline.evaluate import Metrics, draw_confusion
from export.checkpoint import atomic_write_bytes, atomic_write_text

REPORT_FILES = ("classification_report.txt", "confusion_matrix.png", "curves.png", "summary.json")


def _png(fig) -> bytes:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def confusion_png(metrics: Metrics, title: str) -> bytes:
    """The confusion matrix exactly as ``edge-fer eval --report`` draws it (one drawing, two callers), as PNG."""
    import cv2

    ok, data = cv2.imencode(".png", draw_confusion(metrics, title))
    if not ok:
        raise OSError("could not encode the confusion matrix as PNG")
    return data.tobytes()


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
    run_dir: Path, metrics: Metrics, history: Sequence[dict], best_epoch: int | None, title: str, summary: dict
) -> None:
    atomic_write_text(run_dir / "classification_report.txt", f"{title}\n\n{metrics.report(digits=4)}\n")
    atomic_write_bytes(run_dir / "confusion_matrix.png", confusion_png(metrics, title))
    write_curves(run_dir, history, best_epoch, title)
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")

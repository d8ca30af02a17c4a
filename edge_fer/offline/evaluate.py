"""Accuracy of an emotion model on a folder dataset (``root/<label>/*``, each image a face crop).

The metrics are written here with NumPy rather than taken from scikit-learn so that the runtime keeps
its small dependency list; they follow scikit-learn's definitions (a precision or recall with nothing to
divide is 0, macro averages run over the labels that occur in the truth or the predictions).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_fer.imageio import DEFAULT_MAX_PIXELS, ImageError, load_image
from edge_fer.vision.calibration import Reliability, draw_reliability, reliability

log = logging.getLogger("edge_fer.evaluate")


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str


@dataclass(frozen=True)
class FolderDataset:
    """The images under ``root`` whose folder names a known label; unknown folders are kept to report."""

    root: Path
    samples: tuple[Sample, ...]
    unknown_dirs: tuple[Path, ...] = ()

    @classmethod
    def scan(cls, root: str | Path, labels: Sequence[str], limit: int | None = None) -> FolderDataset:
        """Folder names match ``labels`` case-insensitively. ``limit`` keeps an evenly spaced subset,
        so that a quick run keeps the class balance of the full one."""
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: not a directory; expected a dataset laid out as DIR/<label>/<image>")
        known = {label.lower(): label for label in labels}
        samples: list[Sample] = []
        unknown: list[Path] = []
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            label = known.get(folder.name.lower())
            if label is None:
                unknown.append(folder)
                continue
            files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and not p.is_dir())
            samples.extend(Sample(p, label) for p in files)
        if limit is not None and 0 < limit < len(samples):
            picks = np.linspace(0, len(samples) - 1, limit).round().astype(int)
            samples = [samples[i] for i in picks]
        return cls(root, tuple(samples), tuple(unknown))


@dataclass(frozen=True)
class Metrics:
    """Per-label and overall scores from a confusion matrix (rows: true label, columns: predicted)."""

    labels: tuple[str, ...]
    confusion: np.ndarray

    def __post_init__(self) -> None:
        k = len(self.labels)
        if self.confusion.shape != (k, k):
            raise ValueError(f"confusion matrix is {self.confusion.shape}, expected ({k}, {k})")

    @classmethod
    def from_predictions(cls, labels: Sequence[str], y_true: Sequence[int], y_pred: Sequence[int]) -> Metrics:
        k = len(labels)
        confusion = np.zeros((k, k), dtype=np.int64)
        np.add.at(confusion, (np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)), 1)
        return cls(tuple(labels), confusion)

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    @property
    def support(self) -> np.ndarray:
        return self.confusion.sum(axis=1)

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / self.n) if self.n else 0.0

    @property
    def precision(self) -> np.ndarray:
        return _safe_div(np.diag(self.confusion), self.confusion.sum(axis=0))

    @property
    def recall(self) -> np.ndarray:
        return _safe_div(np.diag(self.confusion), self.support)

    @property
    def f1(self) -> np.ndarray:
        p, r = self.precision, self.recall
        return _safe_div(2 * p * r, p + r)

    @property
    def _present(self) -> np.ndarray:
        return (self.support > 0) | (self.confusion.sum(axis=0) > 0)

    @property
    def macro_f1(self) -> float:
        present = self._present
        return float(self.f1[present].mean()) if present.any() else 0.0

    def normalized(self) -> np.ndarray:
        """Each row divided by its support: the fraction of each true label predicted as each label."""
        return _safe_div(self.confusion, self.support[:, None].astype(float))

    def to_json(self) -> dict:
        per_class = {
            label: {
                "precision": round(float(p), 4),
                "recall": round(float(r), 4),
                "f1": round(float(f), 4),
                "support": int(s),
            }
            for label, p, r, f, s in zip(self.labels, self.precision, self.recall, self.f1, self.support)
        }
        return {
            "n": self.n,
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "per_class": per_class,
            "labels": list(self.labels),
            "confusion": self.confusion.tolist(),
        }

    def report(self, digits: int = 2) -> str:
        """A table laid out like scikit-learn's ``classification_report``."""
        width = max(len("weighted avg"), *(len(label) for label in self.labels))
        head = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
        rows = [head, ""]
        for label, p, r, f, s in zip(self.labels, self.precision, self.recall, self.f1, self.support):
            rows.append(f"{label:>{width}} {p:>9.{digits}f} {r:>9.{digits}f} {f:>9.{digits}f} {s:>9d}")
        rows.append("")
        rows.append(f"{'accuracy':>{width}} {'':>9} {'':>9} {self.accuracy:>9.{digits}f} {self.n:>9d}")
        present, weights = self._present, self.support / max(self.n, 1)
        for name, avg in (
            ("macro avg", lambda v: v[present].mean() if present.any() else 0.0),
            ("weighted avg", lambda v: float((v * weights).sum())),
        ):
            p, r, f = avg(self.precision), avg(self.recall), avg(self.f1)
            rows.append(f"{name:>{width}} {p:>9.{digits}f} {r:>9.{digits}f} {f:>9.{digits}f} {self.n:>9d}")
        return "\n".join(rows)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


@dataclass
class EvalResult:
    metrics: Metrics
    failures: list[str] = field(default_factory=list)  # one error line per unreadable image
    seconds: float = 0.0
    reliability: Reliability | None = None  # top-label calibration, 15 bins; None when nothing was classified


# A crop is shrunk as soon as it is decoded, to at most this many times the model's input size in each
# direction, so a batch holds small crops whatever the files' size (64 decoded 12 MP photos are 2.3 GB of pixels).
# The model's own INTER_AREA resize then starts from this copy: crops up to 4x the input (FER2013's
# 48 px, RAF-DB's 100 px for a 64 px model) reach the model exactly as before.
SHRINK_MARGIN = 4


def load_crop(path: Path, max_pixels: int, keep: tuple[int, int]) -> np.ndarray:
    """One image decoded and, when larger than ``keep`` (width, height), shrunk to fit it right away."""
    import cv2

    image = load_image(path, max_pixels)
    h, w = image.shape[:2]
    if w <= keep[0] and h <= keep[1]:
        return image
    return cv2.resize(image, (min(w, keep[0]), min(h, keep[1])), interpolation=cv2.INTER_AREA)


def evaluate(
    dataset: FolderDataset,
    classifier,
    batch_size: int = 64,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Classify every sample (whole image = face crop) in batches; unreadable images are counted, not fatal.

    Images are read one at a time and shrunk before the next is read (:func:`load_crop`), so memory
    depends on neither the image size nor ``batch_size``."""
    labels = tuple(classifier.labels)
    index = {label: i for i, label in enumerate(labels)}
    y_true: list[int] = []
    y_pred: list[int] = []
    rows: list[np.ndarray] = []  # probabilities, kept for the calibration (7 floats per image)
    failures: list[str] = []
    start = time.perf_counter()
    total = len(dataset.samples)
    width, height = getattr(classifier, "input_size", (64, 64))
    keep = (SHRINK_MARGIN * width, SHRINK_MARGIN * height)
    for first in range(0, total, batch_size):
        chunk = dataset.samples[first : first + batch_size]
        crops, truth = [], []
        for sample in chunk:
            try:
                crops.append(load_crop(sample.path, max_pixels, keep))
                truth.append(index[sample.label])
            except ImageError as exc:
                failures.append(str(exc))
        if crops:
            probs = np.asarray(classifier.predict(crops), dtype=np.float32)
            rows.append(probs)
            y_pred.extend(int(i) for i in probs.argmax(axis=1))
            y_true.extend(truth)
        if progress is not None:
            progress(min(first + batch_size, total), total)
    metrics = Metrics.from_predictions(labels, y_true, y_pred)
    calibration = reliability(np.concatenate(rows), np.array(y_true)) if rows else None
    return EvalResult(metrics, failures, time.perf_counter() - start, calibration)


def draw_confusion(metrics: Metrics, title: str = "") -> np.ndarray:
    """A labelled, row-normalised confusion matrix as a BGR image (OpenCV only, no matplotlib)."""
    import cv2

    k, cell_w, cell_h = len(metrics.labels), 84, 56
    left, top, font = 118, 92, cv2.FONT_HERSHEY_SIMPLEX
    image = np.full((top + k * cell_h + 40, left + k * cell_w + 20, 3), 255, np.uint8)
    norm = metrics.normalized()
    colors = cv2.applyColorMap(np.clip(norm * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
    for i in range(k):
        for j in range(k):
            x, y = left + j * cell_w, top + i * cell_h
            color = tuple(int(c) for c in colors[i, j])
            cv2.rectangle(image, (x, y), (x + cell_w - 1, y + cell_h - 1), color, -1)
            ink = (0, 0, 0) if norm[i, j] > 0.55 else (255, 255, 255)
            _text(image, f"{norm[i, j]:.2f}", (x + cell_w // 2, y + cell_h // 2 - 4), 0.5, ink, 1)
            _text(image, f"({metrics.confusion[i, j]})", (x + cell_w // 2, y + cell_h // 2 + 14), 0.36, ink, 1)
    for i, label in enumerate(metrics.labels):
        size = cv2.getTextSize(label, font, 0.5, 1)[0]
        cv2.putText(image, label, (left - 8 - size[0], top + i * cell_h + cell_h // 2 + 5), font, 0.5, (0, 0, 0), 1)
        _text(image, label, (left + i * cell_w + cell_w // 2, top - 12), 0.45, (0, 0, 0), 1)
    _text(image, "predicted", (left + k * cell_w // 2, top - 38), 0.5, (80, 80, 80), 1)
    cv2.putText(image, "true", (8, top - 12), font, 0.5, (80, 80, 80), 1)
    heading = title or f"accuracy {metrics.accuracy:.3f}, macro-F1 {metrics.macro_f1:.3f}, n={metrics.n}"
    cv2.putText(image, heading, (8, 24), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, "rows: true label, normalised to 1", (8, image.shape[0] - 14), font, 0.42, (80, 80, 80), 1)
    return image


def _text(image: np.ndarray, text: str, center: tuple[int, int], scale: float, color, thickness: int) -> None:
    import cv2

    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    origin = (center[0] - w // 2, center[1] + h // 2)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)


def write_report(result: EvalResult, directory: str | Path, extra: dict | None = None) -> list[Path]:
    """``confusion_matrix.png``, ``reliability.png`` (when anything was classified) and ``report.json`` in
    ``directory`` (created if needed)."""
    import cv2

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    png, js = directory / "confusion_matrix.png", directory / "report.json"
    extra = extra or {}
    title = str(extra.get("model", "")) + (" with flip" if extra.get("flip") else "")
    title = f"{title}: " if title else ""
    heading = f"{title}accuracy {result.metrics.accuracy:.3f}, macro-F1 {result.metrics.macro_f1:.3f}"
    if not cv2.imwrite(str(png), draw_confusion(result.metrics, f"{heading}, n={result.metrics.n}")):
        raise OSError(f"{png}: could not write the image")
    written = [png]
    if result.reliability is not None:
        diagram = directory / "reliability.png"
        if not cv2.imwrite(str(diagram), draw_reliability(result.reliability, title.rstrip(": "))):
            raise OSError(f"{diagram}: could not write the image")
        written.append(diagram)
    payload = {**result.metrics.to_json(), **extra, "unreadable": len(result.failures)}
    if result.reliability is not None:
        payload["ece"] = round(result.reliability.ece, 4)
    js.write_text(json.dumps(payload, indent=2) + "\n")
    return [*written, js]

"""Confidence that means what it says: temperature scaling and the calibration error that judges it.

A classifier trained with cross-entropy on noisy labels (FER2013) is often over- or under-confident: a face
said to be "happy 0.6" should be happy six times in ten. Temperature scaling divides the log-probabilities
by one number T fitted on held-out data; it keeps the ranking of the classes (so accuracy is unchanged) and
only moves the confidence. It is the method that holds up best with little data, and one number cannot
over-fit a development set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_EPS = 1e-12


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Rows of probabilities re-scaled as softmax(log(p) / T); T > 1 softens, T < 1 sharpens."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    logp = np.log(np.clip(np.asarray(probs, dtype=np.float64), _EPS, 1.0)) / temperature
    logp -= logp.max(axis=-1, keepdims=True)
    out = np.exp(logp)
    return (out / out.sum(axis=-1, keepdims=True)).astype(np.float32)


def nll(probs: np.ndarray, truth: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes."""
    p = np.asarray(probs, dtype=np.float64)[np.arange(len(truth)), np.asarray(truth, dtype=int)]
    return float(-np.log(np.clip(p, _EPS, 1.0)).mean())


def fit_temperature(probs: np.ndarray, truth: np.ndarray, lo: float = 0.05, hi: float = 20.0) -> float:
    """The T that minimises the NLL of ``truth``: golden-section search on log T (the NLL is unimodal in it)."""
    if len(truth) == 0:
        raise ValueError("cannot fit a temperature on no samples")
    a, b = math.log(lo), math.log(hi)
    g = (math.sqrt(5) - 1) / 2

    def loss(log_t: float) -> float:
        return nll(apply_temperature(probs, math.exp(log_t)), truth)

    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(60):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = loss(d)
    return round(math.exp((a + b) / 2), 4)


@dataclass(frozen=True)
class Reliability:
    """Top-label calibration in equal-width confidence bins: how sure the model was against how often it was
    right, per bin. ``ece`` weights each bin's gap by its share of samples."""

    edges: np.ndarray  # bins + 1 values from 0 to 1
    counts: np.ndarray
    confidence: np.ndarray  # mean top-label confidence per bin (0 where empty)
    accuracy: np.ndarray  # fraction right per bin (0 where empty)

    @property
    def ece(self) -> float:
        n = self.counts.sum()
        return float((self.counts * np.abs(self.accuracy - self.confidence)).sum() / n) if n else 0.0

    @property
    def max_gap(self) -> float:
        filled = self.counts > 0
        return float(np.abs(self.accuracy - self.confidence)[filled].max()) if filled.any() else 0.0


def reliability(probs: np.ndarray, truth: np.ndarray, bins: int = 15) -> Reliability:
    """Bin the top-label confidence of each row into ``bins`` equal-width bins (the last one closed)."""
    probs = np.asarray(probs, dtype=np.float64)
    top = probs.max(axis=1)
    right = (probs.argmax(axis=1) == np.asarray(truth, dtype=int)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(top, edges[1:-1], right=True), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    conf = np.bincount(which, weights=top, minlength=bins)
    acc = np.bincount(which, weights=right, minlength=bins)
    safe = np.maximum(counts, 1)
    return Reliability(edges, counts, conf / safe, acc / safe)


def cross_fit(probs: np.ndarray, truth: np.ndarray, folds: int = 2, seed: int = 0) -> tuple[list[float], np.ndarray]:
    """Fit T on all folds but one and apply it to that one, for every fold: calibrated probabilities for
    every sample that never saw its own label. Returns the fitted temperatures and the calibrated rows."""
    n = len(truth)
    order = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(order, folds)
    out = np.empty_like(np.asarray(probs, dtype=np.float32))
    temps = []
    for k, held in enumerate(parts):
        train = np.concatenate([p for j, p in enumerate(parts) if j != k])
        t = fit_temperature(probs[train], truth[train])
        temps.append(t)
        out[held] = apply_temperature(probs[held], t)
    return temps, out


def draw_reliability(rel: Reliability, title: str = "", size: int = 420) -> np.ndarray:
    """A reliability diagram as a BGR image: bars of accuracy per confidence bin against the diagonal."""
    import cv2

    pad, bottom = 48, 40
    image = np.full((size + pad + bottom, size + 2 * pad, 3), 255, np.uint8)
    x0, y0 = pad, pad + size  # origin, bottom-left of the plot

    def pt(cx: float, cy: float) -> tuple[int, int]:
        return int(x0 + cx * size), int(y0 - cy * size)

    cv2.rectangle(image, pt(0, 0), pt(1, 1), (180, 180, 180), 1)
    for i, count in enumerate(rel.counts):
        if count == 0:
            continue
        left, right = rel.edges[i], rel.edges[i + 1]
        cv2.rectangle(image, pt(left, 0), pt(right, rel.accuracy[i]), (200, 140, 60), -1)
        cv2.rectangle(image, pt(left, 0), pt(right, rel.accuracy[i]), (120, 80, 30), 1)
        cv2.circle(image, pt(rel.confidence[i], rel.confidence[i]), 3, (0, 0, 200), -1)
    cv2.line(image, pt(0, 0), pt(1, 1), (0, 0, 200), 1, cv2.LINE_AA)
    font = cv2.FONT_HERSHEY_SIMPLEX
    heading = (title + ": " if title else "") + f"ECE {rel.ece:.3f} ({len(rel.counts)} bins, n={int(rel.counts.sum())})"
    cv2.putText(image, heading, (8, 24), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, "confidence", (x0 + size // 2 - 40, y0 + 30), font, 0.45, (80, 80, 80), 1, cv2.LINE_AA)
    cv2.putText(image, "accuracy", (4, pad - 6), font, 0.45, (80, 80, 80), 1, cv2.LINE_AA)
    for v in (0.0, 0.5, 1.0):
        cv2.putText(image, f"{v:.1f}", (pt(v, 0)[0] - 8, y0 + 14), font, 0.35, (80, 80, 80), 1)
    return image

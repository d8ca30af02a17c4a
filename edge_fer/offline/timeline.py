"""The timeline picture of a video analysis: one band per track, coloured by its published emotion over
time, and below it the whole video's distribution of face time per emotion.

Drawn with OpenCV and NumPy, which the runtime already needs, so the picture costs no plotting library;
the colours are the annotated video's (:data:`edge_fer.outputs.annotate.EMOTION_COLORS`), so a band and a
box on the video mean the same thing.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from edge_fer.offline.table import TrackLog
from edge_fer.outputs.annotate import EMOTION_COLORS
from edge_fer.vision.types import EMOTIONS

WIDTH = 1200
MAX_BANDS = 40  # tracks drawn; the rest are counted in a line under the bands
_LEFT, _RIGHT, _TOP = 110, 30, 50
_BAND, _GAP = 20, 6
_BAR = 22
_BG, _INK, _GRID = (255, 255, 255), (40, 40, 40), (225, 225, 225)
_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX


def _tick_step(duration: float, pixels: int) -> float:
    """A round step (1, 2, 5 x 10^n seconds) giving ticks at least 80 px apart."""
    raw = max(duration, 1e-3) * 80 / max(pixels, 1)
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)}:{secs:04.1f}" if seconds < 600 and secs % 1 else f"{int(minutes)}:{int(secs):02d}"


def draw(log: TrackLog, duration: float, title: str) -> np.ndarray:
    """The timeline as a BGR image."""
    import cv2

    ids = sorted(log.runs)[:MAX_BANDS]
    hidden = len(log.runs) - len(ids)
    plot_w = WIDTH - _LEFT - _RIGHT
    bands_h = max(1, len(ids)) * (_BAND + _GAP)
    dist_top = _TOP + bands_h + 60 + (20 if hidden else 0)
    height = dist_top + 30 + len(EMOTIONS) * (_BAR + 4) + 20
    img = np.full((height, WIDTH, 3), _BG, np.uint8)
    cv2.putText(img, title[:110], (12, 28), _FONT, 0.6, _INK, 1, cv2.LINE_AA)
    span = max(duration, 1e-3)

    def x_of(t: float) -> int:
        return _LEFT + round(min(max(t / span, 0.0), 1.0) * plot_w)

    step = _tick_step(span, plot_w)
    axis_y = _TOP + bands_h
    t = 0.0
    while t <= span + 1e-9:
        x = x_of(t)
        cv2.line(img, (x, _TOP - 4), (x, axis_y), _GRID, 1)
        cv2.putText(img, _clock(t), (x - 14, axis_y + 18), _FONT, 0.4, _INK, 1, cv2.LINE_AA)
        t += step
    if not ids:
        cv2.putText(img, "no face was tracked", (_LEFT + 8, _TOP + 15), _FONT, 0.5, _INK, 1, cv2.LINE_AA)
    for row, track_id in enumerate(ids):
        y = _TOP + row * (_BAND + _GAP)
        cv2.putText(img, f"track {track_id}", (12, y + 15), _FONT, 0.45, _INK, 1, cv2.LINE_AA)
        for label, t0, t1 in log.runs[track_id]:
            x0, x1 = x_of(t0), max(x_of(t1), x_of(t0) + 1)
            cv2.rectangle(img, (x0, y), (x1, y + _BAND), EMOTION_COLORS.get(label, _INK), cv2.FILLED)
    if hidden:
        note = f"{hidden} more tracks not drawn (see the track summary)"
        cv2.putText(img, note, (_LEFT, axis_y + 40), _FONT, 0.45, _INK, 1, cv2.LINE_AA)
    cv2.putText(img, "time (min:s)", (_LEFT + plot_w - 90, axis_y + 36), _FONT, 0.4, _INK, 1, cv2.LINE_AA)
    _distribution(img, log.distribution(), dist_top, plot_w)
    return img


def _distribution(img: np.ndarray, seconds: dict[str, float], top: int, plot_w: int) -> None:
    import cv2

    total = sum(seconds.values())
    heading = "face time per emotion, whole video" + ("" if total > 0 else ": none")
    cv2.putText(img, heading, (12, top), _FONT, 0.5, _INK, 1, cv2.LINE_AA)
    for i, label in enumerate(EMOTIONS):
        y = top + 14 + i * (_BAR + 4)
        share = seconds.get(label, 0.0) / total if total > 0 else 0.0
        cv2.putText(img, label, (12, y + 16), _FONT, 0.45, _INK, 1, cv2.LINE_AA)
        cv2.rectangle(img, (_LEFT, y), (_LEFT + plot_w, y + _BAR), _GRID, 1)
        if share > 0:
            x1 = _LEFT + max(1, round(share * (plot_w - 150)))
            cv2.rectangle(img, (_LEFT, y), (x1, y + _BAR), EMOTION_COLORS[label], cv2.FILLED)
        text = f"{100 * share:.1f}%  {seconds.get(label, 0.0):.1f} s"
        cv2.putText(img, text, (_LEFT + plot_w - 140, y + 16), _FONT, 0.42, _INK, 1, cv2.LINE_AA)


def write(path: Path, log: TrackLog, duration: float, title: str) -> None:
    """Draw and save as PNG; OSError when it cannot be written."""
    import cv2

    ok, encoded = cv2.imencode(".png", draw(log, duration, title))
    if not ok:
        raise OSError("OpenCV cannot encode PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encoded.tobytes())

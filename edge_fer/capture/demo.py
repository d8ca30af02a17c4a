"""The ``demo`` camera: a live-looking feed synthesized from the shipped astronaut portrait.

It lets the daemon, the benchmarks and the tests run on a machine without a camera. Frames
are a pure function of the frame index (``render``), so a benchmark or a test sees exactly the
same pictures every run, and :meth:`DemoSource.face_boxes` says where each face is, which a
test can compare with what the detector finds.

The head-and-shoulders part of the portrait glides on a slow Lissajous path and breathes in
size so that the face stays between ~90 and ~170 px tall at 640x480: inside what MTCNN finds
reliably and what a webcam at arm's length sees. With ``faces=N`` the frame is split into a
grid of N cells, one moving copy per cell (faces shrink when the cells get small).

The expression changes too, so that a new user sees ``change`` events and more than one emotion: every
``EXPRESSION_PERIOD`` seconds the smile turns into a frown for half the period (the mouth region of the
portrait mirrored top to bottom, feathered into the face) and back, cross-faded over ``FADE_S``. What the
frown reads as is the classifier's business (the shipped model says angry); nothing downstream knows the
frames are rendered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources

import numpy as np

from edge_fer.capture.source import Pacer, Source, SourceError
from edge_fer.clock import SYSTEM_CLOCK, Clock
from edge_fer.config.sources import DEMO_FACES, DEMO_MIN_SIDE, MAX_FRAME_SIZE

# Where the face and the head-and-shoulders crop lie in the 512x512 portrait (found with MTCNN).
_FACE = (180, 65, 85, 107)  # x, y, w, h
_CROP = (112, 10, 220, 240)  # x, y, w, h: the face plus hair, neck and shoulders
_MAX_FACE_H, _MIN_FACE_H = 170.0, 90.0
_REFERENCE_H = 480.0  # smaller frames scale the face sizes above down; larger ones keep them
# The mouth inside the face box, as fractions of its width and height: mirrored, it turns the smile down.
_MOUTH = (0.12, 0.62, 0.88, 0.95)  # x0, y0, x1, y1
EXPRESSION_PERIOD = 16.0  # seconds: smiling for the first half, frowning for the second
FADE_S = 0.5


@dataclass(frozen=True, slots=True)
class _Placement:
    x: int
    y: int
    w: int
    h: int


def _load_portrait() -> np.ndarray:
    import cv2

    try:
        data = (resources.files("edge_fer") / "assets" / "astronaut.jpg").read_bytes()
    except OSError as exc:
        raise SourceError(f"demo: the bundled portrait is missing ({exc}); reinstall edge-fer", permanent=True) from exc
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape[:2] != (512, 512):
        raise SourceError("demo: the bundled portrait is unreadable; reinstall edge-fer", permanent=True)
    return image


def _soft_oval(h: int, w: int) -> np.ndarray:
    """An alpha mask (uint8) that fades the crop's edges into the background."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.sqrt(((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2)
    return (np.clip((1.0 - d) / 0.15, 0.0, 1.0) * 255).astype(np.uint8)


def _frown(crop: np.ndarray) -> np.ndarray:
    """The head-and-shoulders crop with its mouth mirrored top to bottom, blended in with soft edges."""
    fx, fy, fw, fh = _FACE
    cx, cy = _CROP[0], _CROP[1]
    x0, y0 = fx - cx + round(_MOUTH[0] * fw), fy - cy + round(_MOUTH[1] * fh)
    x1, y1 = fx - cx + round(_MOUTH[2] * fw), fy - cy + round(_MOUTH[3] * fh)
    out = crop.copy()
    mouth = crop[y0:y1, x0:x1]
    alpha = _soft_oval(y1 - y0, x1 - x0)[:, :, None].astype(np.float32) / 255.0
    out[y0:y1, x0:x1] = (mouth[::-1] * alpha + mouth * (1.0 - alpha) + 0.5).astype(np.uint8)
    return out


def frown_weight(t: float, phase: float = 0.0) -> float:
    """0 (smiling) to 1 (frowning) at stream time ``t``: half the period each, cross-faded."""
    u = (t / EXPRESSION_PERIOD + phase) % 1.0 * EXPRESSION_PERIOD
    half = EXPRESSION_PERIOD / 2
    if u < half:
        return 0.0
    return min(1.0, (u - half) / FADE_S, (EXPRESSION_PERIOD - u) / FADE_S)


def _background(width: int, height: int) -> np.ndarray:
    """A muted studio-like backdrop: a vertical gradient with soft diagonal bands."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 70 + 60 * (yy / max(1, height - 1))
    bands = 12 * np.sin((xx + yy) / 37.0)
    bg = np.empty((height, width, 3), np.uint8)
    bg[:, :, 0] = np.clip(base + 25 + bands, 0, 255)
    bg[:, :, 1] = np.clip(base + 5 + bands, 0, 255)
    bg[:, :, 2] = np.clip(base - 10 + bands, 0, 255)
    return bg


class DemoSource(Source):
    """Synthetic live camera. ``realtime=False`` renders as fast as possible (benchmarks);
    ``clock`` is what real-time pacing runs on (tests pass a fake one)."""

    is_live = True

    def __init__(
        self,
        *,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        faces: int = 1,
        realtime: bool = True,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(clock)
        (max_w, max_h), lo = MAX_FRAME_SIZE, DEMO_MIN_SIDE
        if not (lo <= width <= max_w and lo <= height <= max_h):
            raise ValueError(f"demo size must be between {lo}x{lo} and {max_w}x{max_h}, got {width}x{height}")
        if not 0 < fps <= 1000:
            raise ValueError(f"demo fps must be in (0, 1000], got {fps}")
        if not DEMO_FACES[0] <= faces <= DEMO_FACES[1]:
            raise ValueError(f"demo faces must be between {DEMO_FACES[0]} and {DEMO_FACES[1]}, got {faces}")
        self.width, self.height, self.fps, self.faces, self.realtime = width, height, float(fps), faces, realtime
        self.cols = math.ceil(math.sqrt(faces))
        self.rows = math.ceil(faces / self.cols)
        self._portrait: np.ndarray | None = None
        self._frowning: np.ndarray | None = None
        self._background: np.ndarray | None = None
        self._alpha: np.ndarray | None = None
        self._pacer: Pacer | None = None
        self._next_index = 0

    @property
    def paced(self) -> bool:
        return self.realtime

    def describe(self) -> str:
        extra = f", {self.faces} faces" if self.faces > 1 else ""
        return f"demo {self.width}x{self.height} @ {self.fps:g} fps{extra}"

    def open(self) -> None:
        if self._portrait is None:
            x, y, w, h = _CROP
            self._portrait = np.ascontiguousarray(_load_portrait()[y : y + h, x : x + w])
            self._frowning = _frown(self._portrait)
            self._background = _background(self.width, self.height)
            self._alpha = _soft_oval(h, w)
        self._pacer = Pacer(self.fps, self.clock) if self.realtime else None

    def close(self) -> None:
        self._pacer = None

    def read(self) -> np.ndarray | None:
        if self._portrait is None:
            raise SourceError(f"{self.describe()}: read before open")
        image = self.render(self._next_index)
        self._next_index += 1
        if self._pacer is not None:
            self._pause(self._pacer.delay())
        return image

    def _placements(self, index: int) -> list[_Placement]:
        t = index / self.fps
        cell_w, cell_h = self.width / self.cols, self.height / self.rows
        crop_w, crop_h = _CROP[2], _CROP[3]
        face_h = _FACE[3]
        scale_ref = min(1.0, self.height / _REFERENCE_H)
        # The largest face whose crop still fits its cell with a little room to move.
        fit = min(0.92 * cell_h / crop_h, 0.92 * cell_w / crop_w) * face_h
        hi = min(_MAX_FACE_H * scale_ref, fit)
        lo = min(_MIN_FACE_H * scale_ref, 0.6 * hi)
        out = []
        for k in range(self.faces):
            phase = 2.0 * math.pi * k / self.faces + 0.7 * k
            size = 0.5 + 0.5 * math.sin(2 * math.pi * t / 9.0 + phase)
            scale = (lo + (hi - lo) * size) / face_h
            w, h = max(1, round(crop_w * scale)), max(1, round(crop_h * scale))
            row, col = divmod(k, self.cols)
            ux = 0.5 + 0.5 * math.sin(2 * math.pi * t / 8.3 + 1.3 * phase)
            uy = 0.5 + 0.5 * math.sin(2 * math.pi * t / 6.1 + 0.4 + phase)
            x = col * cell_w + (cell_w - w) * ux
            y = row * cell_h + (cell_h - h) * uy
            out.append(_Placement(round(x), round(y), w, h))
        return out

    def face_boxes(self, index: int) -> list[tuple[float, float, float, float]]:
        """Where each face of frame ``index`` is, as (x, y, w, h) in pixels, in copy order."""
        fx, fy, fw, fh = _FACE
        cx, cy, cw, ch = _CROP
        boxes = []
        for p in self._placements(index):
            sx, sy = p.w / cw, p.h / ch
            boxes.append((p.x + (fx - cx) * sx, p.y + (fy - cy) * sy, fw * sx, fh * sy))
        return boxes

    def render(self, index: int) -> np.ndarray:
        """Frame ``index`` of the feed (BGR uint8); the same index always gives the same picture."""
        import cv2

        if self._portrait is None or self._background is None or self._alpha is None:
            self.open()
        assert self._portrait is not None and self._background is not None and self._alpha is not None
        assert self._frowning is not None
        frame = self._background.copy()
        for k, p in enumerate(self._placements(index)):
            w = frown_weight(index / self.fps, k / max(1, self.faces))
            face = self._portrait if w == 0 else self._frowning if w == 1 else self._blend(w)
            crop = cv2.resize(face, (p.w, p.h), interpolation=cv2.INTER_AREA)
            alpha = cv2.resize(self._alpha, (p.w, p.h), interpolation=cv2.INTER_LINEAR)
            x0, y0 = max(0, p.x), max(0, p.y)
            x1, y1 = min(self.width, p.x + p.w), min(self.height, p.y + p.h)
            if x1 <= x0 or y1 <= y0:
                continue
            src = crop[y0 - p.y : y1 - p.y, x0 - p.x : x1 - p.x].astype(np.uint16)
            a = alpha[y0 - p.y : y1 - p.y, x0 - p.x : x1 - p.x, None].astype(np.uint16)
            dst = frame[y0:y1, x0:x1].astype(np.uint16)
            frame[y0:y1, x0:x1] = ((src * a + dst * (255 - a) + 127) // 255).astype(np.uint8)
        return frame

    def _blend(self, weight: float) -> np.ndarray:
        assert self._portrait is not None and self._frowning is not None
        mix = self._portrait * (1.0 - weight) + self._frowning * weight
        return (mix + 0.5).astype(np.uint8)

"""Deterministic test scenes built from real photographs shipped with scikit-image.

Tests need faces the detector can find and to know where they are, without downloading anything.
This module pastes real faces (the astronaut portrait, the cameraman, and the LFW faces in
``skimage.data.lfw_subset``) at chosen positions, sizes and mirror states onto real or synthetic
backgrounds. Same arguments, same pixels, on every machine.

Usage::

    from tests.photos import face_scene, make_scene, multi_face_scenes

    bgr = face_scene(640, 480, faces=[(320, 240, 80, False)], background="coffee")
    scene = make_scene(640, 480, faces=[FaceSpec(200, 200, 40, flip=True, source="camera")])
    scene.bgr, scene.faces[0].box, scene.faces[0].landmarks

A face is placed by the centre of its face box (MTCNN convention: about brow to chin, ear to ear)
and its box width ``face_px``; ``Scene.faces`` gives the resulting box and landmarks, exact up to
resampling (a detector's box on the scene lands within a few pixels of it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import cv2
import numpy as np

BACKGROUNDS: tuple[str, ...] = ("coffee", "chelsea", "rocket", "grass", "brick", "gravel", "gradient", "gray", "noise")
LANDMARK_SWAP = (1, 0, 2, 4, 3)  # mirroring turns the image-left eye/mouth corner into the image-right one


@dataclass(frozen=True)
class FaceSource:
    """A photo with one face: where its face box is, its five landmarks, and the region pasted into scenes."""

    name: str
    face: tuple[float, float, float, float]  # x, y, w, h in the photo
    landmarks: tuple[tuple[float, float], ...]  # left_eye, right_eye, nose, mouth_left, mouth_right, or ()
    patch: tuple[int, int, int, int]  # x, y, w, h: the face with some context

    @property
    def face_center(self) -> tuple[float, float]:
        x, y, w, h = self.face
        return x + w / 2, y + h / 2


@dataclass(frozen=True)
class FaceSpec:
    """Where to put a face: centre of its face box, box width in pixels, mirrored or not, which photo."""

    cx: float
    cy: float
    face_px: float
    flip: bool = False
    source: str = "astronaut"

    def __post_init__(self) -> None:
        if not 4 <= self.face_px <= 2000:
            raise ValueError(f"face_px must be between 4 and 2000, got {self.face_px}")


@dataclass(frozen=True)
class PlacedFace:
    """A face as it ended up in a scene (it may hang off the edge)."""

    spec: FaceSpec
    box: tuple[float, float, float, float]  # x, y, w, h
    landmarks: np.ndarray | None  # (5, 2) in LANDMARK_NAMES order, image-left eye first, or None


@dataclass(frozen=True)
class Scene:
    bgr: np.ndarray  # HxWx3 uint8, OpenCV channel order
    faces: tuple[PlacedFace, ...]
    background: str
    seed: int

    @property
    def rgb(self) -> np.ndarray:
        return np.ascontiguousarray(self.bgr[:, :, ::-1])


# Face boxes and landmarks measured once with the mtcnn package on the original photos.
_ASTRONAUT = FaceSource(
    "astronaut",
    face=(181.6, 63.7, 83.0, 107.4),
    landmarks=((203.5, 100.1), (245.4, 102.2), (224.2, 126.4), (201.8, 138.6), (244.4, 140.4)),
    patch=(128, 8, 190, 226),
)
_CAMERA = FaceSource(
    "camera",
    face=(197.4, 116.2, 58.4, 81.3),
    landmarks=((233.9, 146.9), (251.4, 148.7), (250.4, 166.6), (228.3, 179.2), (243.0, 180.1)),
    patch=(160, 80, 130, 160),
)
# lfw_subset's first 100 images are 25x25 face crops; the face box fills the crop.
_LFW_FACE = (1.4, -0.6, 18.6, 24.3)
LFW_FACES = 100


@cache
def _photo(name: str) -> np.ndarray:
    import skimage.data

    if name.startswith("lfw:"):
        index = int(name[4:])
        if not 0 <= index < LFW_FACES:
            raise ValueError(f"LFW face index must be in 0..{LFW_FACES - 1}, got {index}")
        gray = np.clip(skimage.data.lfw_subset()[index] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        image = np.repeat(gray[:, :, None], 3, axis=2)
    else:
        image = getattr(skimage.data, name)()
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
    image.setflags(write=False)
    return image


def astronaut_rgb() -> np.ndarray:
    """The public-domain astronaut portrait (512x512 RGB uint8), a fresh writable copy."""
    return _photo("astronaut").copy()


def astronaut_bgr() -> np.ndarray:
    return np.ascontiguousarray(_photo("astronaut")[:, :, ::-1])


def face_source(name: str) -> FaceSource:
    """``astronaut``, ``camera`` (the cameraman), or ``lfw:<i>`` for one of the 100 LFW faces."""
    if name == "astronaut":
        return _ASTRONAUT
    if name == "camera":
        return _CAMERA
    if name.startswith("lfw:"):
        _photo(name)  # validates the index
        return FaceSource(name, face=_LFW_FACE, landmarks=(), patch=(0, 0, 25, 25))
    raise ValueError(f"unknown face source {name!r}: use 'astronaut', 'camera' or 'lfw:<0-99>'")


def source_rgb(name: str) -> np.ndarray:
    return _photo(face_source(name).name).copy()


def background(name: str, width: int, height: int, seed: int = 0) -> np.ndarray:
    """A width x height BGR background: a photo scaled to cover and centre-cropped, or a synthetic fill."""
    if width < 1 or height < 1:
        raise ValueError(f"background size must be positive, got {width}x{height}")
    rng = np.random.default_rng(seed)
    if name == "gray":
        return np.full((height, width, 3), 127, dtype=np.uint8)
    if name == "gradient":
        a, b = rng.uniform(30, 225, size=(2, 3))
        t = np.arange(width)[None, :] / max(width - 1, 1) * 0.7 + np.arange(height)[:, None] / max(height - 1, 1) * 0.3
        return np.clip(a + (b - a) * t[:, :, None] + 0.5, 0, 255).astype(np.uint8)
    if name == "noise":
        small = rng.normal(127, 30, size=(max(height // 8, 1), max(width // 8, 1), 3))
        small = np.clip(small, 0, 255).astype(np.uint8)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    if name not in BACKGROUNDS:
        raise ValueError(f"unknown background {name!r}; choose one of {', '.join(BACKGROUNDS)}")
    photo = _photo(name)
    ph, pw = photo.shape[:2]
    scale = max(width / pw, height / ph)
    sw, sh = max(width, round(pw * scale)), max(height, round(ph * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(photo, (sw, sh), interpolation=interp)
    x0, y0 = (sw - width) // 2, (sh - height) // 2
    return np.ascontiguousarray(resized[y0 : y0 + height, x0 : x0 + width, ::-1])


def _feather_mask(h: int, w: int) -> np.ndarray:
    """Alpha that is 1 inside and ramps to 0 over the outer ~12% so pasted edges look like photo edges."""
    ramp_y = np.clip(np.minimum(np.arange(h) + 0.5, h - np.arange(h) - 0.5) / max(h * 0.12, 1.0), 0, 1)
    ramp_x = np.clip(np.minimum(np.arange(w) + 0.5, w - np.arange(w) - 0.5) / max(w * 0.12, 1.0), 0, 1)
    return (ramp_y[:, None] * ramp_x[None, :])[:, :, None].astype(np.float32)


def _as_spec(face: FaceSpec | Sequence) -> FaceSpec:
    if isinstance(face, FaceSpec):
        return face
    return FaceSpec(*face)


def _paste(canvas: np.ndarray, spec: FaceSpec) -> PlacedFace:
    src = face_source(spec.source)
    photo = _photo(src.name)
    px, py, pw, ph = src.patch
    patch = photo[py : py + ph, px : px + pw]
    k = spec.face_px / src.face[2]
    out_w, out_h = max(round(pw * k), 1), max(round(ph * k), 1)
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC
    patch = cv2.resize(np.ascontiguousarray(patch[:, :, ::-1]), (out_w, out_h), interpolation=interp)
    fcx, fcy = src.face_center
    # face centre in resized-patch pixels (the resize maps patch pixel edges onto output pixel edges)
    local_x, local_y = (fcx - px) * out_w / pw, (fcy - py) * out_h / ph
    if spec.flip:
        patch = patch[:, ::-1]
        local_x = out_w - local_x
    ox, oy = round(spec.cx - local_x), round(spec.cy - local_y)
    height, width = canvas.shape[:2]
    x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + out_w, width), min(oy + out_h, height)
    if x1 > x0 and y1 > y0:
        alpha = _feather_mask(out_h, out_w)[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
        region = canvas[y0:y1, x0:x1].astype(np.float32)
        piece = patch[y0 - oy : y1 - oy, x0 - ox : x1 - ox].astype(np.float32)
        canvas[y0:y1, x0:x1] = np.clip(region + (piece - region) * alpha + 0.5, 0, 255).astype(np.uint8)
    sx, sy = out_w / pw, out_h / ph
    cx, cy = ox + local_x, oy + local_y
    box = (cx - src.face[2] * sx / 2, cy - src.face[3] * sy / 2, src.face[2] * sx, src.face[3] * sy)
    landmarks = None
    if src.landmarks:
        pts = np.asarray(src.landmarks, dtype=np.float64)
        dx, dy = (pts[:, 0] - fcx) * sx, (pts[:, 1] - fcy) * sy
        if spec.flip:
            dx = -dx
        landmarks = np.stack([cx + dx, cy + dy], axis=1)
        if spec.flip:
            landmarks = landmarks[list(LANDMARK_SWAP)]
    return PlacedFace(spec=spec, box=box, landmarks=landmarks)


def make_scene(
    width: int,
    height: int,
    faces: Sequence[FaceSpec | Sequence] = (),
    background: str = "coffee",
    seed: int = 0,
) -> Scene:
    """A scene with the given faces pasted in order (later ones on top) onto ``background``.

    ``faces`` holds :class:`FaceSpec` or plain tuples ``(cx, cy, face_px[, flip[, source]])``.
    """
    canvas = _background_cached(background, width, height, seed).copy()
    placed = tuple(_paste(canvas, _as_spec(f)) for f in faces)
    return Scene(bgr=canvas, faces=placed, background=background, seed=seed)


@lru_cache(maxsize=32)
def _background_cached(name: str, width: int, height: int, seed: int) -> np.ndarray:
    image = background(name, width, height, seed)
    image.setflags(write=False)
    return image


def face_scene(
    width: int,
    height: int,
    faces: Sequence[FaceSpec | Sequence] = (),
    background: str = "coffee",
    seed: int = 0,
) -> np.ndarray:
    """Just the BGR image of :func:`make_scene`."""
    return make_scene(width, height, faces, background, seed).bgr


def moving_face_scenes(
    count: int,
    width: int,
    height: int,
    start: tuple[float, float],
    end: tuple[float, float],
    face_px: float,
    background: str = "coffee",
    source: str = "astronaut",
    others: Sequence[FaceSpec | Sequence] = (),
) -> list[Scene]:
    """``count`` frames of one face sliding in a straight line from ``start`` to ``end`` (centres),
    with optional still faces; for building clips that trackers and the daemon can follow."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    frames = []
    for i in range(count):
        t = i / (count - 1) if count > 1 else 0.0
        cx = start[0] + (end[0] - start[0]) * t
        cy = start[1] + (end[1] - start[1]) * t
        faces = [*others, FaceSpec(cx, cy, face_px, source=source)]
        frames.append(make_scene(width, height, faces, background))
    return frames


# The parity set: real faces of many sizes (down to the 20 px minimum), positions, mirror states and
# identities, on real and synthetic backgrounds. Faces are kept apart so that each is its own detection.
_PARITY_LAYOUTS: tuple[tuple[int, int, str, tuple[tuple, ...]], ...] = (
    (640, 480, "coffee", ((150, 150, 90, False), (420, 140, 45, True), (520, 360, 24, False), (250, 380, 30, True))),
    (640, 480, "chelsea", ((110, 110, 34, False), (330, 250, 120, True), (560, 120, 22, False))),
    (640, 480, "rocket", ((160, 330, 60, True, "camera"), (470, 300, 70, False), (80, 80, 26, False))),
    (
        640,
        480,
        "grass",
        (
            (120, 120, 40, False, "lfw:0"),
            (300, 120, 28, False, "lfw:3"),
            (480, 120, 52, True, "lfw:7"),
            (200, 340, 36, False, "lfw:12"),
            (420, 350, 64, False, "lfw:21"),
        ),
    ),
    (800, 600, "brick", ((160, 160, 150, False), (560, 200, 32, True), (620, 470, 21, False), (330, 480, 44, False))),
    (480, 360, "gradient", ((120, 130, 50, True), (340, 120, 38, False, "camera"), (260, 280, 23, True))),
    (640, 480, "gravel", ((90, 400, 30, False), (320, 90, 25, True, "lfw:30"), (520, 260, 100, False, "camera"))),
    (
        1280,
        720,
        "coffee",
        (
            (300, 300, 200, False),
            (800, 250, 48, True, "lfw:42"),
            (1050, 500, 22, False),
            (620, 560, 34, True),
            (1150, 150, 72, False, "lfw:55"),
        ),
    ),
    (640, 480, "noise", ((200, 200, 80, False, "camera"), (450, 320, 27, False), (520, 110, 56, True, "lfw:64"))),
    (640, 360, "gray", ((120, 180, 31, True), (320, 180, 47, False, "lfw:77"), (520, 180, 20, False))),
    (640, 480, "rocket", ((20, 240, 60, False), (620, 100, 42, True), (330, 470, 50, False), (330, 240, 26, True))),
    (800, 600, "chelsea", ((400, 300, 260, True), (100, 520, 33, False, "lfw:88"), (700, 80, 24, False))),
)


def multi_face_scenes() -> Iterator[Scene]:
    """The detector parity set: 12 scenes, 3 to 5 faces each, faces 20 to 260 px, some cut by the edge."""
    for i, (width, height, bg, faces) in enumerate(_PARITY_LAYOUTS):
        yield make_scene(width, height, faces, background=bg, seed=i)

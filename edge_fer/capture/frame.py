"""The captured frame, and the one gate every source image passes before it becomes one.

Sources are OpenCV backends, decoders and test scripts; any of them can hand back an empty
array, a gray image or a float buffer. :func:`as_bgr` turns the harmless variants into BGR
uint8 and refuses the rest, so nothing downstream has to re-check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class BadFrame(ValueError):
    """A source returned something that is not a usable image; the message says what was wrong."""


def as_bgr(image: object) -> np.ndarray:
    """A contiguous HxWx3 uint8 BGR view or copy of ``image``, or :class:`BadFrame`.

    Gray (HxW or HxWx1) is repeated into three channels and BGRA loses its alpha: both are
    what a camera would have meant. Other dtypes are refused rather than guessed at (a float
    image may be 0..1 or 0..255).
    """
    if not isinstance(image, np.ndarray):
        raise BadFrame(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise BadFrame(f"expected uint8 pixels, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise BadFrame(f"expected an HxWx3 image, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise BadFrame(f"empty image of shape {image.shape}")
    return np.ascontiguousarray(image)


def fit_pixels(image: np.ndarray, max_pixels: int | None) -> tuple[np.ndarray, tuple[float, float]]:
    """``image`` shrunk (area resize, aspect kept) to at most ``max_pixels`` pixels, and the (x, y) scale from
    it back to ``image``; unchanged with (1, 1) when it is small enough or ``max_pixels`` is None.

    A camera or stream sending 8000x8000 frames would otherwise hold hundreds of MB per queued frame and
    take longer per full scan than a track lives; shrunk here, nothing downstream sees the large frame."""
    height, width = image.shape[:2]
    if max_pixels is None or height * width <= max_pixels:
        return image, (1.0, 1.0)
    import cv2

    factor = math.sqrt(max_pixels / (height * width))
    w, h = max(1, int(width * factor)), max(1, int(height * factor))
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA), (width / w, height / h)


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured image and where it came from.

    ``index`` counts every frame the camera delivered since its capture thread started
    (skipped and dropped ones too), so gaps in the indices seen downstream are exactly the
    frames that were skipped or dropped. ``t_mono`` is the latency reference; ``t_wall`` is
    for humans and event timestamps. ``scale`` is (x, y) source pixels per ``image`` pixel: above 1 when the
    capture shrank a frame larger than the camera's ``max_frame_pixels`` (:func:`fit_pixels`).
    """

    camera: str
    index: int
    t_mono: float
    t_wall: float
    image: np.ndarray
    scale: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        if not isinstance(self.camera, str) or not self.camera:
            raise ValueError(f"frame camera must be a non-empty string, got {self.camera!r}")
        if not isinstance(self.index, int) or self.index < 0:
            raise ValueError(f"frame index must be an int >= 0, got {self.index!r}")
        if not (math.isfinite(self.t_mono) and math.isfinite(self.t_wall)):
            raise ValueError(f"frame times must be finite, got t_mono={self.t_mono}, t_wall={self.t_wall}")
        if not (len(self.scale) == 2 and all(math.isfinite(s) and s > 0 for s in self.scale)):
            raise ValueError(f"frame scale must be two finite numbers > 0, got {self.scale!r}")
        image = self.image
        if not (
            isinstance(image, np.ndarray)
            and image.dtype == np.uint8
            and image.ndim == 3
            and image.shape[2] == 3
            and image.size > 0
        ):
            shape = getattr(image, "shape", None)
            dtype = getattr(image, "dtype", type(image).__name__)
            raise ValueError(f"frame image must be non-empty HxWx3 uint8 BGR, got shape {shape} dtype {dtype}")

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

"""Real video files for tests, written from the public-domain astronaut portrait.

Each frame shows the portrait drifting slowly over a gray background, plus a strip of
black/white blocks along the bottom that encodes the frame number in binary. The blocks
survive MJPG and MPEG-4 compression, so a test can read back which frames arrived
(:func:`frame_number`) and prove that none were lost, duplicated or reordered.

    path = write_clip(tmp_path / "a.avi", frames=30, fps=30)
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

MARKER_BITS = 12
_BLOCK_H = 8
_CODECS = {".avi": "MJPG", ".mp4": "mp4v", ".mkv": "MJPG"}


@lru_cache(maxsize=1)
def astronaut() -> np.ndarray:
    """The shipped portrait (the same pixels as ``skimage.data.astronaut()``), BGR uint8; do not modify."""
    import cv2

    data = (resources.files("edge_fer") / "assets" / "astronaut.jpg").read_bytes()
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def clip_frame(index: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """Frame ``index`` of a test clip: the portrait at a position that moves with the index."""
    import cv2

    width, height = size
    if width < MARKER_BITS * 8 or height < 4 * _BLOCK_H:
        raise ValueError(f"clip size {width}x{height} is too small for the frame-number strip")
    frame = np.full((height, width, 3), 96, np.uint8)
    side = min(width, height - 2 * _BLOCK_H) * 3 // 4
    face = cv2.resize(astronaut(), (side, side), interpolation=cv2.INTER_AREA)
    span_x = max(1, width - side)
    x = (index * 3) % span_x
    y = max(0, (height - 2 * _BLOCK_H - side) // 2)
    frame[y : y + side, x : x + side] = face
    block_w = width // MARKER_BITS
    for bit in range(MARKER_BITS):
        value = 255 if (index >> bit) & 1 else 0
        frame[height - _BLOCK_H :, bit * block_w : (bit + 1) * block_w] = value
    return frame


def frame_number(image: np.ndarray) -> int:
    """The frame number encoded in the bottom strip of a (decoded) clip frame."""
    height, width = image.shape[:2]
    block_w = width // MARKER_BITS
    strip = image[height - _BLOCK_H + 2 : height - 2].mean(axis=(0, 2))
    number = 0
    for bit in range(MARKER_BITS):
        if strip[bit * block_w + 2 : (bit + 1) * block_w - 2].mean() > 127:
            number |= 1 << bit
    return number


def write_clip(
    path: str | Path, *, frames: int = 30, fps: float = 30.0, size: tuple[int, int] = (320, 240), codec: str = ""
) -> Path:
    """Write ``frames`` frames at ``fps`` to ``path`` (.avi: MJPG, .mp4: mp4v) and return the path."""
    import cv2

    path = Path(path)
    fourcc = codec or _CODECS.get(path.suffix.lower())
    if fourcc is None:
        raise ValueError(f"{path}: no default codec for {path.suffix!r}; pass codec=")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write {fourcc} video here")
    try:
        for i in range(frames):
            writer.write(clip_frame(i, size))
    finally:
        writer.release()
    return path

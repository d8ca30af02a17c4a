"""Frames for the benchmarks: read from a video, so every script reads clips the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VIDEO = ROOT.parent / "shared" / "videos" / "short_hamilton_clip.mp4"


def read_video(path: Path, limit: int, size: tuple[int, int] | None = None) -> tuple[list[np.ndarray], float]:
    """Up to ``limit`` BGR frames (resized to ``size`` with area interpolation if given) and the clip's fps."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame if size is None else cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    capture.release()
    if not frames:
        raise SystemExit(f"{path}: no frames could be read; pass another --video")
    return frames, float(fps)

"""Does gated detection (full scans every N ms, regions around known faces in between) lose faces?

For every frame of a clip, a full scan is the truth: its faces scoring >= 0.9 and at least the minimum
face size. Recall is the fraction of those that the gated detector's output on the same frame matches
with IoU >= 0.5. The gated detector sees the clip in order, on the clip's own timeline (frame index / fps),
as the daemon does. Also printed: faces the gated detector reports (>= 0.9) that the full scan lacks, how
many frames got a full scan, and the detection time per frame of both.

Clips: ``--video`` files (default: ``../shared/videos/short_hamilton_clip.mp4`` when it is there), and a
clip built here from real photographs (scikit-image's astronaut, cameraman and LFW faces, via
``tests.photos``) with five faces moving, growing and shrinking, one entering and one leaving mid-clip,
written as MJPG and read back so it carries real compression artefacts.

    python benchmarks/tracking_recall.py --min-face 40 --interval 0.5
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.clips import DEFAULT_VIDEO, read_video  # noqa: E402

STRONG = 0.9


def photo_clip(count: int, fps: float = 30.0, size: tuple[int, int] = (960, 540)) -> list[np.ndarray]:
    """Five real faces on a real background, each on its own path; written as MJPG and decoded again."""
    import cv2

    from tests.photos import FaceSpec, make_scene

    width, height = size
    # source, flip, centre path (x0, y0, dx, dy amplitudes), size range, period (s), visible (from, to) fraction
    actors = [
        ("astronaut", False, (0.25, 0.35, 0.15, 0.10), (70, 140), 6.0, (0.0, 1.0)),
        ("camera", False, (0.70, 0.30, 0.12, 0.08), (55, 110), 4.5, (0.0, 1.0)),
        ("lfw:7", True, (0.50, 0.70, 0.30, 0.06), (45, 80), 5.0, (0.0, 1.0)),
        ("astronaut", True, (0.85, 0.72, 0.06, 0.10), (50, 90), 3.5, (0.3, 1.0)),  # enters mid-clip
        ("lfw:42", False, (0.15, 0.75, 0.08, 0.08), (45, 70), 7.0, (0.0, 0.6)),  # leaves mid-clip
    ]
    scenes = []
    for i in range(count):
        t, u = i / fps, i / max(count - 1, 1)
        faces = []
        for k, (source, flip, (x0, y0, ax, ay), (lo, hi), period, (start, stop)) in enumerate(actors):
            if not start <= u <= stop:
                continue
            phase = 2 * math.pi * t / period + k
            cx = (x0 + ax * math.sin(phase)) * width
            cy = (y0 + ay * math.cos(1.3 * phase)) * height
            px = lo + (hi - lo) * (0.5 + 0.5 * math.sin(0.7 * phase))
            faces.append(FaceSpec(cx, cy, px, flip=flip, source=source))
        scenes.append(make_scene(width, height, faces, background="coffee").bgr)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "faces.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
        for frame in scenes:
            writer.write(frame)
        writer.release()
        frames, _ = read_video(path, count)
    return frames


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ix = np.maximum(0, np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]))
    iy = np.maximum(0, np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]))
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def strong(rows: np.ndarray, min_face: float) -> np.ndarray:
    sides = np.minimum(rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1])
    return rows[(rows[:, 4] >= STRONG) & (sides >= min_face)]


def measure(name: str, frames: list[np.ndarray], fps: float, min_face: float, interval: float) -> dict:
    from edge_fer.config.settings import DetectorSettings
    from edge_fer.vision.gated import FaceGate
    from edge_fer.vision.mtcnn import MtcnnDetector

    settings = DetectorSettings(min_face_size=min_face, full_scan_interval=interval)
    detector = MtcnnDetector(settings)
    gate = FaceGate(detector, settings)
    truth = found = extra = 0
    full_ms, gated_ms = [], []
    for i, frame in enumerate(frames):
        t0 = time.perf_counter()
        full = strong(detector.detect_array(frame), min_face)
        t1 = time.perf_counter()
        rows = gate.detect_array(frame, i / fps)
        t2 = time.perf_counter()
        full_ms.append((t1 - t0) * 1000)
        gated_ms.append((t2 - t1) * 1000)
        gated = rows[rows[:, 4] >= STRONG]
        truth += len(full)
        if len(full) and len(gated):
            ious = iou_matrix(full[:, :4], gated[:, :4])
            found += int(np.sum(ious.max(axis=1) >= 0.5))
            extra += int(np.sum(ious.max(axis=0) < 0.5) if len(strong(gated, min_face)) else 0)
        elif len(gated):
            extra += len(strong(gated, min_face))
    detector.close()
    recall = found / truth if truth else float("nan")
    result = {
        "clip": name,
        "frames": len(frames),
        "min_face": min_face,
        "interval_s": interval,
        "full_scan_faces": truth,
        "matched": found,
        "recall": recall,
        "extra_faces": extra,
        "full_scans": gate.full_scans,
        "region_scans": gate.region_scans,
        "full_ms_mean": float(np.mean(full_ms)),
        "gated_ms_mean": float(np.mean(gated_ms)),
        "gated_ms_p50": float(np.median(gated_ms)),
    }
    print(
        f"{name:<34} {len(frames):>6} {min_face:>5g} {truth:>7} {found:>7} {recall:>7.4f} {extra:>6} "
        f"{gate.full_scans:>5}/{len(frames):<5} {result['full_ms_mean']:>8.1f} {result['gated_ms_mean']:>8.1f}"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, action="append", help=f"clip to test (default {DEFAULT_VIDEO.name})")
    parser.add_argument("--frames", type=int, default=600, help="frames per clip at most (default 600)")
    parser.add_argument("--photo-frames", type=int, default=300, help="frames of the photo clip (0: skip)")
    parser.add_argument("--min-face", type=float, action="append", help="minimum face size(s) (default 40 and 20)")
    parser.add_argument("--interval", type=float, default=0.5, help="full-scan interval in seconds (default 0.5)")
    parser.add_argument("--require", type=float, default=0.98, help="exit 1 when any recall is below (default 0.98)")
    args = parser.parse_args(argv)
    videos = args.video or ([DEFAULT_VIDEO] if DEFAULT_VIDEO.is_file() else [])
    min_faces = args.min_face or [40.0, 20.0]
    clips = [(p.name, *read_video(p, args.frames)) for p in videos]
    if args.photo_frames:
        clips.append(("real-photo clip (5 faces, 960x540)", photo_clip(args.photo_frames), 30.0))
    import os

    print(f"load average {os.getloadavg()[0]:.2f}; full scan every {args.interval:g} s of clip time")
    print(
        f"{'clip':<34} {'frames':>6} {'min':>5} {'truth':>7} {'matched':>7} {'recall':>7} {'extra':>6} "
        f"{'full scans':>11} {'full ms':>8} {'gated ms':>8}"
    )
    results = [measure(name, frames, fps, mf, args.interval) for name, frames, fps in clips for mf in min_faces]
    worst = min((r["recall"] for r in results if r["full_scan_faces"]), default=float("nan"))
    print(f"worst recall {worst:.4f} (required {args.require:g})")
    return 0 if worst >= args.require else 1


if __name__ == "__main__":
    raise SystemExit(main())

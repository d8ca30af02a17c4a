"""Large frames: the detector's shrunk pyramid source against full-resolution pyramids, in one run.

Two detectors with the same settings see the same frames, alternating which goes first: ``exact`` resizes
every pyramid level from the full-resolution frame (the reference's way, ``exact_pyramid=True``), ``shrunk``
from one uint8 copy of the frame at the first level's size (the default). For each frame size it prints the
full-scan time (wall p50 and process CPU per frame, which counts the helper thread too) and, for each
detector, the ratio of the largest size to the smallest in this same run, so other processes' load falls on
both. Then what the shrunk source changes: on the demo at every size and on the Hamilton clip scaled to each
size, the share of ``exact``'s faces (score >= min score, shorter side >= min face) that ``shrunk`` finds
at IoU >= 0.5, and how many of the matched pairs get the same emotion from the shipped classifier, next to
the same counts for ``exact`` on the frame with one grey level of noise (the yardstick: faces whose emotion
flips under camera noise flip here too). Exits 1 when the share found is below 0.98 anywhere.

    python benchmarks/large_frames.py --frames 30 --sizes 640x480,1920x1080
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.clips import DEFAULT_VIDEO, read_video  # noqa: E402
from benchmarks.detector import parse_sizes  # noqa: E402


def demo_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    from edge_fer.capture.demo import DemoSource

    source = DemoSource(width=width, height=height, realtime=False)
    return [source.render(i * 7) for i in range(count)]


def clip_frames(video: Path, count: int, width: int, height: int) -> list[np.ndarray]:
    import cv2

    frames, _ = read_video(video, count * 9)
    return [cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in frames[::9][:count]]


def timed(detectors: dict, frames: list[np.ndarray], warmup: int = 2) -> dict[str, tuple[float, float]]:
    """Per detector: (wall ms p50, process CPU ms per frame) over ``frames``, the order rotating per frame."""
    names = list(detectors)
    for frame in frames[:warmup]:
        for name in names:
            detectors[name].detect_array(frame)
    wall = {name: [] for name in names}
    cpu = {name: 0.0 for name in names}
    for i, frame in enumerate(frames):
        for name in names[i % 2 :] + names[: i % 2]:
            c0, t0 = time.process_time(), time.perf_counter()
            detectors[name].detect_array(frame)
            wall[name].append(time.perf_counter() - t0)
            cpu[name] += time.process_time() - c0
    return {n: (float(np.median(wall[n])) * 1000.0, cpu[n] * 1000.0 / len(frames)) for n in names}


def pnet_cpu_ms(detector, width: int, height: int, repeats: int = 10) -> tuple[int, float]:
    """(pyramid pixels, process CPU ms) of P-Net alone over the pyramid of a ``width`` x ``height`` frame: the
    part of a full scan that grows with the frame area at a fixed smallest face, whatever the pyramid's source."""
    from edge_fer.vision.mtcnn_pyramid import pnet

    plan = detector.pyramid(height, width)
    rng = np.random.default_rng(0)
    levels = [rng.standard_normal((1, h, w, 3)).astype(np.float32) for _, h, w in plan]
    for level in levels:
        pnet(detector._pnet, level)
    start = time.process_time()
    for _ in range(repeats):
        for level in levels:
            pnet(detector._pnet, level)
    return sum(h * w for _, h, w in plan), (time.process_time() - start) * 1000.0 / repeats


def matched(reference, faces, min_face: float) -> tuple[int, int, int]:
    """(``reference`` faces of at least ``min_face``, how many ``faces`` has at IoU >= 0.5, how many of those
    carry the same emotion label)."""
    wanted = found = same = 0
    for face in reference:
        box = face.detection.box
        if min(box.w, box.h) < min_face:
            continue
        wanted += 1
        best = max(faces, key=lambda f: f.detection.box.iou(box), default=None)
        if best is not None and best.detection.box.iou(box) >= 0.5:
            found += 1
            same += best.emotion.label == face.emotion.label
    return wanted, found, same


def agreement(analyzers: dict, frames: list[np.ndarray], min_face: float) -> dict[str, np.ndarray]:
    """Totals of :func:`matched` against ``exact``'s faces: for ``shrunk``, and for ``exact`` itself on the frame
    with one grey level of random noise added (what any camera's noise does: the yardstick for "same")."""
    rng = np.random.default_rng(0)
    totals = {"shrunk": np.zeros(3, int), "noise": np.zeros(3, int)}
    for frame in frames:
        noisy = np.clip(frame.astype(np.int16) + rng.integers(-1, 2, frame.shape), 0, 255).astype(np.uint8)
        exact = analyzers["exact"].analyze(frame).faces
        totals["shrunk"] += matched(exact, analyzers["shrunk"].analyze(frame).faces, min_face)
        totals["noise"] += matched(exact, analyzers["exact"].analyze(noisy).faces, min_face)
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=30, help="frames per size and source (default 30)")
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("640x480,1920x1080"), help="WxH list")
    parser.add_argument("--min-face", type=float, default=40.0, help="detector.min_face_size (default 40)")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="clip scaled to each size (Hamilton)")
    args = parser.parse_args(argv)
    if args.frames < 1:
        parser.error("--frames must be at least 1")

    from edge_fer.config.settings import ClassifierSection, DetectorSettings
    from edge_fer.vision.analyzer import FaceAnalyzer
    from edge_fer.vision.mtcnn import MtcnnDetector

    settings = DetectorSettings(min_face_size=args.min_face, roi_detection=False)
    detectors = {"exact": MtcnnDetector(settings, exact_pyramid=True), "shrunk": MtcnnDetector(settings)}
    base = FaceAnalyzer.from_settings(settings, ClassifierSection())
    analyzers = {
        name: FaceAnalyzer(det, base.aligner, base.classifier, min_score=settings.min_score, min_face_size=0.0)
        for name, det in detectors.items()
    }
    print(f"cpu: {os.cpu_count()} cores, load average before {os.getloadavg()[0]:.2f}; min face {args.min_face:g} px")
    print(f"\nfull scans (demo source, {args.frames} frames per size; helper thread on, as the daemon runs)")
    print(f"{'size':>10}  {'exact ms p50':>12} {'cpu ms':>7}  {'shrunk ms p50':>13} {'cpu ms':>7}  speed-up")
    times = {}
    for width, height in args.sizes:
        t = timed(detectors, demo_frames(args.frames, width, height))
        times[(width, height)] = t
        (ew, ec), (sw, sc) = t["exact"], t["shrunk"]
        print(f"{width:>5}x{height:<4}  {ew:12.1f} {ec:7.1f}  {sw:13.1f} {sc:7.1f}  {ew / sw:7.2f}x")
    small, large = args.sizes[0], args.sizes[-1]
    for name in detectors:
        wall = times[large][name][0] / times[small][name][0]
        cpu = times[large][name][1] / times[small][name][1]
        sizes = f"{large[0]}x{large[1]} full scan / {small[0]}x{small[1]} full scan"
        print(f"{name}: {sizes} = {wall:.2f}x wall, {cpu:.2f}x CPU")

    floor = {size: pnet_cpu_ms(detectors["shrunk"], *size) for size in (small, large)}
    for (width, height), (pixels, ms) in floor.items():
        print(f"P-Net alone, {width}x{height}: {pixels} pyramid pixels, {ms:.1f} ms CPU")
    bound = floor[large][1] / times[small]["shrunk"][1]
    print(f"P-Net alone on {large[0]}x{large[1]} = {bound:.2f}x a whole {small[0]}x{small[1]} full scan (CPU)")

    print("\nagreement with full-resolution pyramids (faces >= min face, IoU >= 0.5; same emotion)")
    sources = [("demo", demo_frames)]
    if args.video.is_file():
        sources.append((args.video.stem, lambda n, w, h: clip_frames(args.video, n, w, h)))
    else:
        print(f"  {args.video}: not found, the clip is skipped")
    worst = 1.0
    for label, make in sources:
        for width, height in args.sizes:
            result = agreement(analyzers, make(args.frames, width, height), args.min_face)
            wanted, found, same = result["shrunk"]
            _, noise_found, noise_same = result["noise"]
            share = found / wanted if wanted else 1.0
            worst = min(worst, share)
            print(
                f"  {label:20s} {width:>4}x{height:<4}: shrunk {found}/{wanted} found ({share:.4f}), same emotion "
                f"{same}/{found}; exact with 1 grey level of noise: {noise_found}/{wanted}, same emotion {noise_same}"
            )
    print(f"worst share found {worst:.4f} (required 0.98); load average after {os.getloadavg()[0]:.2f}")
    for det in detectors.values():
        det.close()
    return 0 if worst >= 0.98 else 1


if __name__ == "__main__":
    sys.exit(main())

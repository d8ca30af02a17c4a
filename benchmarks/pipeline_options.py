"""Which detector settings make the whole pipeline fastest here: the helper thread, onnxruntime's threads
and spinning, gated detection. Each variant runs ``edge-fer bench``'s measurement (capture thread, worker,
tracker, events to a null sink) in its own fresh process; variants are interleaved and repeated, and the
medians are printed, so that load from other processes falls on all of them alike.

    python benchmarks/pipeline_options.py --frames 300 --repeats 3
    python benchmarks/pipeline_options.py --paced --frames 300   # latency at the source's 30 fps
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VARIANTS = {
    "default": "gated detection, 1 onnxruntime thread per net, helper thread",
    "no-helper": "as default, detection on the worker thread alone",
    "threads2": "as default, 2 onnxruntime threads per net (spinning pool)",
    "threads2-nospin": "as threads2 with session.intra_op.allow_spinning = 0",
    "full-scans": "a full scan on every frame (detector.roi_detection: false)",
    "full-scans-no-helper": "full scans, no helper thread",
}
KEYS = ("processed_fps", "detect_ms_p50", "full_scan_ms_p50", "latency_ms_p50", "latency_ms_p95", "peak_rss_mb")


def child(variant: str, frames: int, paced: bool, source: str, width: int, height: int, min_face: float) -> dict:
    from edge_fer.config.loading import apply_overrides, load_config
    from edge_fer.offline import bench

    overrides = {
        "cameras[0].realtime": paced,
        "cameras[0].loop": True,
        "cameras[0].width": width,
        "cameras[0].height": height,
        "detector.min_face_size": min_face,
        "detector.roi_detection": not variant.startswith("full-scans"),
        "detector.helper_thread": not variant.endswith("no-helper"),
        "detector.threads": 2 if variant.startswith("threads2") else 1,
        "output.stdout": "off",
        "stats.interval": 3600.0,
    }
    config = apply_overrides(load_config(None), overrides, source=source)
    analyzer = None  # run_bench builds the config's own, so that start-up cost is measured as usual
    if variant == "threads2-nospin":
        analyzer = _without_spinning(config)
    return bench.run_bench(config, frames, paced, analyzer=analyzer).as_dict()


def _without_spinning(config):
    """The config's analyzer, its detector's networks opened with idle threads that do not busy-wait."""
    from edge_fer.vision.analyzer import FaceAnalyzer
    from edge_fer.vision.mtcnn import MtcnnDetector
    from edge_fer.vision.onnx_session import open_session

    base = FaceAnalyzer.from_settings(config.detector, config.classifier)
    base.detector.close()
    detector = MtcnnDetector(
        config.detector, open_net=lambda path, threads: open_session(path, threads, spinning=False)
    )
    return FaceAnalyzer(
        detector, base.aligner, base.classifier, min_score=base.min_score, min_face_size=base.min_face_size
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--paced", action="store_true", help="pace the source at 30 fps (latency)")
    parser.add_argument("--source", default="demo")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--min-face", type=float, default=40.0)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    parser.add_argument("--child", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = child(args.child, args.frames, args.paced, args.source, args.width, args.height, args.min_face)
        print(json.dumps(result))
        return 0
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    base = [sys.executable, __file__, "--frames", str(args.frames), "--source", args.source]
    base += ["--width", str(args.width), "--height", str(args.height), "--min-face", str(args.min_face)]
    if args.paced:
        base.append("--paced")
    print(
        f"load average before {os.getloadavg()[0]:.2f}; {args.source} {args.width}x{args.height}, min face "
        f"{args.min_face:g}, {'paced at 30 fps' if args.paced else 'unpaced'}, {args.frames} frames x {args.repeats}"
    )
    for repeat in range(args.repeats):
        order = variants[repeat % len(variants) :] + variants[: repeat % len(variants)]
        for variant in order:
            proc = subprocess.run([*base, "--child", variant], capture_output=True, text=True, cwd=ROOT, timeout=900)
            if proc.returncode != 0:
                raise SystemExit(f"{variant}: {proc.stderr.strip()[-400:]}")
            runs[variant].append(json.loads(proc.stdout))
    print(f"{'variant':<22}" + "".join(f"{k:>18}" for k in KEYS) + "   (medians)")
    for variant in variants:
        cells = []
        for key in KEYS:
            values = [r[key] for r in runs[variant] if r[key] is not None]
            cells.append(f"{statistics.median(values):>18.1f}" if values else f"{'-':>18}")
        print(f"{variant:<22}" + "".join(cells) + f"   {VARIANTS[variant]}")
    print(f"load average after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

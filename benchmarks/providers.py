"""Execution providers against the CPU, in one run: detection, classification and process CPU per frame.

Three analyzers see the same demo frames (a full scan on every frame), the order rotating per frame so other
processes' load falls on all alike: everything on the CPU, everything on ``--provider``, and only the
classifier on it. Also counts the frames where the emotion labels differ from the CPU's. Run it in an
environment whose onnxruntime build has the provider (docs/deploy.md, "Swapping the onnxruntime build"):

    python benchmarks/providers.py --provider openvino --frames 40
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--provider", required=True, help="openvino, cuda, ... (as in detector.providers)")
    parser.add_argument("--frames", type=int, default=40, help="frames (default 40)")
    args = parser.parse_args(argv)

    import onnxruntime

    from edge_fer.capture.demo import DemoSource
    from edge_fer.config import providers
    from edge_fer.config.settings import ClassifierSection, DetectorSettings
    from edge_fer.vision.analyzer import FaceAnalyzer

    name = providers.canonical(args.provider)
    if name not in onnxruntime.get_available_providers():
        print(f"{name} is not in this build: {onnxruntime.get_available_providers()}", file=sys.stderr)
        return 2
    source = DemoSource(width=640, height=480, realtime=False)
    frames = [source.render(i * 5) for i in range(args.frames)]
    variants = {"CPU for both": ("cpu", "cpu"), f"{args.provider} for both": (name, name)}
    variants[f"{args.provider} for the classifier"] = ("cpu", name)
    analyzers = {
        label: FaceAnalyzer.from_settings(
            DetectorSettings(providers=[det], roi_detection=False), ClassifierSection(providers=[cls])
        )
        for label, (det, cls) in variants.items()
    }
    for analyzer in analyzers.values():
        for frame in frames[:3]:
            analyzer.analyze(frame)
    labels = list(analyzers)
    stats = {label: {"detect": [], "classify": [], "cpu": 0.0, "emotions": []} for label in labels}
    for i, frame in enumerate(frames):
        for label in labels[i % 3 :] + labels[: i % 3]:
            start = time.process_time()
            result = analyzers[label].analyze(frame)
            st = stats[label]
            st["cpu"] += time.process_time() - start
            st["detect"].append(result.detect_ms)
            st["classify"].append(result.classify_ms)
            st["emotions"].append([face.emotion.label for face in result.faces])
    print(f"onnxruntime {onnxruntime.__version__}; {args.frames} demo frames at 640x480, a full scan on each")
    print(f"{'providers':34s} detection ms p50  classification ms p50  CPU ms/frame  frames with other labels")
    reference = stats[labels[0]]["emotions"]
    for label, st in stats.items():
        other = sum(a != b for a, b in zip(st["emotions"], reference))
        print(
            f"{label:34s} {np.median(st['detect']):16.2f}  {np.median(st['classify']):21.2f}"
            f"  {st['cpu'] * 1000 / len(frames):12.2f}  {other}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

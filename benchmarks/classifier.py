"""Emotion classifier speed: milliseconds per face at batch 1, 4 and 16, with and without flip TTA.

The crops are real (the astronaut's face, aligned as the daemon would cut it), and the time covers
what ``EmotionClassifier.predict`` does per call: colour conversion, resizing, normalisation, inference.
Each setting runs for about a second after a warm-up; the median call time is reported.

    python benchmarks/classifier.py [--model PATH ...] [--threads N] [--seconds S]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2

from edge_fer.config.settings import DetectorSettings
from edge_fer.vision.align import FaceAligner
from edge_fer.vision.emotion import EmotionClassifier
from edge_fer.vision.mtcnn import MtcnnDetector

ASTRONAUT = Path(__file__).resolve().parents[1] / "edge_fer" / "assets" / "astronaut.jpg"


def time_calls(classifier: EmotionClassifier, crops: list, seconds: float) -> tuple[float, float]:
    """Median and fastest seconds per ``predict`` call (on a shared machine the fastest is the cleaner figure)."""
    for _ in range(3):
        classifier.predict(crops)
    samples, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 5:
        start = time.perf_counter()
        classifier.predict(crops)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), min(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="ONNX emotion model (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per setting")
    args = parser.parse_args(argv)

    photo = cv2.imread(str(ASTRONAUT))
    face = MtcnnDetector(DetectorSettings(min_face_size=20)).detect(photo)[0]
    crop = FaceAligner(64).align(photo, face)
    name = None
    print("| batch | flip | ms per call (median) | ms per face (median) | ms per face (fastest) |")
    print("|---|---|---|---|---|")
    for flip in (False, True):
        classifier = EmotionClassifier(args.model, flip=flip, threads=args.threads)
        name = classifier.name
        for batch in (1, 4, 16):
            median, fastest = time_calls(classifier, [crop] * batch, args.seconds)
            cells = f"{1000 * median:.2f} | {1000 * median / batch:.2f} | {1000 * fastest / batch:.2f}"
            print(f"| {batch} | {'yes' if flip else 'no'} | {cells} |")
    print(f"\nmodel {name}, {args.threads} thread(s), 64x64 aligned astronaut crops")
    return 0


if __name__ == "__main__":
    sys.exit(main())

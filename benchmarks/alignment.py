"""Does landmark alignment help the emotion model? FER2013 crops placed in larger frames, detected again.

Labelled full photos are not at hand, so each 48 px FER2013 crop is enlarged to 100-160 px and placed at a
random spot in a 320x320 frame whose surroundings are the crop's edge pixels, replicated and blurred. The
detector then has to find the face again, and each way of cutting it out is scored against the label:

  direct   the original 48 px crop, classified as is (what `edge-fer eval` does; the ceiling)
  oracle   the exact square the crop was pasted into, cut back out of the frame (resampling loss only)
  box      squared detector box plus margin
  similar  similarity transform from the five landmarks onto the FER2013 template, plus margin

Accuracy is given over all frames (a missed face counts as wrong) and over the frames where the face was
found, with the paired difference to ``direct`` on those frames (95% interval).

    python benchmarks/alignment.py                     # FER2013 val, all 3589 images
    python benchmarks/alignment.py --limit 500         # quicker, evenly spaced subset
    python benchmarks/alignment.py --calibrate         # landmark template from 1500 train crops
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from edge_fer.config.settings import DetectorSettings
from edge_fer.offline.evaluate import FolderDataset
from edge_fer.vision.align import MODES, FaceAligner
from edge_fer.vision.emotion import EmotionClassifier
from edge_fer.vision.mtcnn import MtcnnDetector
from edge_fer.vision.types import EMOTIONS, Box

FRAME = 320
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "fer2013"


def make_frame(crop: np.ndarray, seed: int, tilt: float = 0.0) -> tuple[np.ndarray, Box]:
    """The crop enlarged and pasted into a FRAME x FRAME picture of its own blurred, replicated border,
    then (with ``tilt``) turned about the face centre by up to that many degrees either way."""
    rng = np.random.default_rng(seed)
    side = int(rng.integers(100, 161))
    face = cv2.resize(crop, (side, side), interpolation=cv2.INTER_LINEAR)
    x, y = (int(v) for v in rng.integers(0, FRAME - side + 1, size=2))
    frame = cv2.copyMakeBorder(face, y, FRAME - side - y, x, FRAME - side - x, cv2.BORDER_REPLICATE)
    blurred = cv2.GaussianBlur(frame, (0, 0), 8)
    inside = np.zeros((FRAME, FRAME, 1), bool)
    inside[y : y + side, x : x + side] = True
    frame = np.where(inside, frame, blurred)
    if tilt:
        turn = cv2.getRotationMatrix2D((x + side / 2, y + side / 2), float(rng.uniform(-tilt, tilt)), 1.0)
        frame = cv2.warpAffine(frame, turn, (FRAME, FRAME), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return frame, Box(x, y, side, side)


def find_face(detector: MtcnnDetector, frame: np.ndarray, truth: Box):
    """The detection overlapping the pasted square best, if it overlaps by IoU >= 0.3."""
    detections = detector.detect(frame)
    best = max(detections, key=lambda d: d.box.iou(truth), default=None)
    return best if best is not None and best.box.iou(truth) >= 0.3 else None


def calibrate(data: Path, limit: int) -> None:
    files = sorted((data / "train").glob("*/*.jpg"))
    picks = np.random.default_rng(0).choice(len(files), size=min(limit, len(files)), replace=False)
    detector, points = MtcnnDetector(DetectorSettings(min_face_size=20)), []
    for i, index in enumerate(picks):
        frame, truth = make_frame(cv2.imread(str(files[index])), seed=i)
        found = find_face(detector, frame, truth)
        if found is not None and found.landmarks is not None:
            points.append((found.landmarks - [truth.x, truth.y]) / truth.w)
    mean = np.mean(points, axis=0)
    mirrored = mean[[1, 0, 2, 4, 3]] * [-1, 1] + [1, 0]  # left-right mirror of the template
    template = (mean + mirrored) / 2
    print(f"{len(points)} of {len(picks)} train crops found; symmetric template (fractions of the crop side):")
    print(np.array2string(template, precision=4, separator=", "))


def paired_delta(correct: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    d = correct.astype(float) - reference.astype(float)
    return float(d.mean()), float(1.96 * d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help=f"FER2013 folder with train/ and val/ ({DATA})")
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=None, help="evenly spaced subset of the split")
    parser.add_argument("--margins", default="-0.05,0,0.05,0.1,0.2,0.3")
    parser.add_argument("--tilt", type=float, default=0.0, help="turn each frame by up to this many degrees")
    parser.add_argument("--calibrate", action="store_true", help="print the landmark template from train crops")
    args = parser.parse_args(argv)
    if args.calibrate:
        calibrate(args.data, 1500)
        return 0

    dataset = FolderDataset.scan(args.data / args.split, EMOTIONS, limit=args.limit)
    labels = np.array([EMOTIONS.index(s.label) for s in dataset.samples])
    margins = [float(m) for m in args.margins.split(",")]
    # docs/alignment.md's figures: mini-Xception (64 px input) without flip, whatever the default is now
    classifier, detector = (
        EmotionClassifier("mini_xception", flip=False),
        MtcnnDetector(DetectorSettings(min_face_size=20)),
    )
    aligners = {f"{mode} m={m:g}": FaceAligner(64, mode, m) for mode in ("box", "similarity") for m in margins}
    crops: dict[str, list[np.ndarray]] = {"direct": [], "oracle": [], **{name: [] for name in aligners}}
    found = np.zeros(len(labels), bool)
    fallbacks = 0
    start = time.perf_counter()
    for i, sample in enumerate(dataset.samples):
        crop = cv2.imread(str(sample.path))
        frame, truth = make_frame(crop, seed=i, tilt=args.tilt)
        face = find_face(detector, frame, truth)
        crops["direct"].append(crop)
        crops["oracle"].append(frame[int(truth.y) : int(truth.y2), int(truth.x) : int(truth.x2)])
        if face is None:
            continue
        found[i] = True
        for name, aligner in aligners.items():
            crops[name].append(aligner.align(frame, face))
        fallbacks += aligners[f"similarity m={margins[0]:g}"].transform(face)[1] == "box"
        if (i + 1) % 500 == 0:
            print(f"{i + 1}/{len(labels)} frames, {time.perf_counter() - start:.0f} s", file=sys.stderr)
    detect_s = time.perf_counter() - start

    def correct(name: str) -> np.ndarray:
        batches = [classifier.predict(crops[name][j : j + 256]) for j in range(0, len(crops[name]), 256)]
        predicted = np.concatenate(batches).argmax(axis=1)
        return predicted == (labels if name in ("direct", "oracle") else labels[found])

    reference = correct("direct")[found]
    n, k = len(labels), int(found.sum())
    tilted = f", turned by up to ±{args.tilt:g}°" if args.tilt else ""
    print(f"FER2013 {args.split}: {n} images, faces found in {k} ({k / n:.1%}) frames of {FRAME}x{FRAME}{tilted};")
    print(f"similarity fell back to the box for {fallbacks} faces; detection {1000 * detect_s / n:.1f} ms/frame\n")
    print("| crop | accuracy, all frames | accuracy, found frames | vs direct on found frames |")
    print("|---|---|---|---|")
    on_found = {}
    for name in crops:
        ok = correct(name)
        on_found[name] = ok[found] if len(ok) == n else ok
        overall = ok.mean() if len(ok) == n else ok.sum() / n
        delta, half = paired_delta(on_found[name], reference)
        print(f"| {name} | {overall:.4f} | {on_found[name].mean():.4f} | {delta:+.4f} ± {half:.4f} |")
    best = {mode: max((x for x in aligners if x.startswith(mode)), key=lambda x: on_found[x].mean()) for mode in MODES}
    delta, half = paired_delta(on_found[best["similarity"]], on_found[best["box"]])
    print(f"\nbest similarity ({best['similarity']}) minus best box ({best['box']}): {delta:+.4f} ± {half:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

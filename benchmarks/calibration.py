"""Is the emotion model's confidence honest? Top-label ECE (15 equal-width bins) before and after temperature
scaling, with the temperature fitted on one half of a labelled folder and measured on the other (2-fold
cross-fit, so no sample is scored by a temperature that saw its label).

    python benchmarks/calibration.py ../shared/datasets/fer2013/val --report out/calibration

Prints the fitted temperatures, ECE, NLL and accuracy (unchanged by construction) as JSON; with --report
it writes the two reliability diagrams. The model and flip options mean what they mean for `edge-fer eval`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_fer.imageio import load_image  # noqa: E402
from edge_fer.offline.evaluate import FolderDataset  # noqa: E402
from edge_fer.vision.calibration import cross_fit, draw_reliability, fit_temperature, nll, reliability  # noqa: E402
from edge_fer.vision.emotion import EmotionClassifier  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="labelled face crops, DIR/<label>/<image> (e.g. FER2013 val)")
    parser.add_argument("--model", action="append", help="bundled name or ONNX file; repeat (default: the default)")
    parser.add_argument("--flip", action="store_true", help="average each crop with its mirror image")
    parser.add_argument("--folds", type=int, default=2, help="cross-fit folds (2)")
    parser.add_argument("--bins", type=int, default=15, help="equal-width confidence bins (15)")
    parser.add_argument("--report", help="write reliability diagrams into this directory")
    args = parser.parse_args(argv)

    classifier = EmotionClassifier(args.model or None, flip=args.flip)
    dataset = FolderDataset.scan(args.dataset, classifier.labels)
    index = {label: i for i, label in enumerate(classifier.labels)}
    crops = [load_image(s.path) for s in dataset.samples]
    truth = np.array([index[s.label] for s in dataset.samples])
    probs = np.concatenate([classifier.predict(crops[i : i + 256]) for i in range(0, len(crops), 256)])

    temps, calibrated = cross_fit(probs, truth, folds=args.folds)
    before, after = reliability(probs, truth, args.bins), reliability(calibrated, truth, args.bins)
    summary = {
        "dataset": args.dataset,
        "model": classifier.name,
        "flip": args.flip,
        "n": len(truth),
        "accuracy": round(float((probs.argmax(1) == truth).mean()), 4),
        "fold_temperatures": temps,
        "temperature_on_all": fit_temperature(probs, truth),
        "ece_before": round(before.ece, 4),
        "ece_after_cross_fit": round(after.ece, 4),
        "nll_before": round(nll(probs, truth), 4),
        "nll_after_cross_fit": round(nll(calibrated, truth), 4),
        "mean_confidence_before": round(float(probs.max(1).mean()), 4),
        "mean_confidence_after": round(float(calibrated.max(1).mean()), 4),
    }
    print(json.dumps(summary, indent=2))
    if args.report:
        out = Path(args.report)
        out.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / "reliability_before.png"), draw_reliability(before, "uncalibrated"))
        cv2.imwrite(str(out / "reliability_after.png"), draw_reliability(after, f"T cross-fit {temps}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

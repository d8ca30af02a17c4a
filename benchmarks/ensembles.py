"""Which emotion models to ship as the default: accuracy and cost per face of every combination.

Each candidate model classifies every image of a labelled folder once with and once without flip
averaging; an ensemble's probabilities are the mean of its members', which is exactly what
``EmotionClassifier`` computes, so each row equals ``edge-fer eval DIR --model A --model B [--flip]``.
The cost per face is measured separately on real aligned crops (the astronaut's face), at batch 1
(one face in the frame, the common case) and batch 4, as a ratio against the reference model alone
in the same run. Rows are sorted by accuracy; those over the budget are marked.

    python benchmarks/ensembles.py ../shared/datasets/fer2013/val --model compact --model mini_xception

Never run it while something else loads the CPU (a training run): the times would be meaningless.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.classifier import ASTRONAUT, time_calls  # noqa: E402
from edge_fer.config.settings import DetectorSettings  # noqa: E402
from edge_fer.imageio import load_image  # noqa: E402
from edge_fer.offline.evaluate import FolderDataset, Metrics  # noqa: E402
from edge_fer.vision.align import FaceAligner  # noqa: E402
from edge_fer.vision.emotion import EmotionClassifier  # noqa: E402
from edge_fer.vision.mtcnn import MtcnnDetector  # noqa: E402


def probabilities(model: str, crops: list[np.ndarray], flip: bool, batch: int = 256) -> np.ndarray:
    classifier = EmotionClassifier(model, flip=flip)
    return np.concatenate([classifier.predict(crops[i : i + batch]) for i in range(0, len(crops), batch)])


def face_crop(size: int) -> np.ndarray:
    photo = cv2.imread(str(ASTRONAUT))
    return FaceAligner(size).align(photo, MtcnnDetector(DetectorSettings(min_face_size=20)).detect(photo)[0])


def ms_per_face(members: tuple[str, ...], flip: bool, crop: np.ndarray, seconds: float) -> dict[str, float]:
    classifier = EmotionClassifier(list(members), flip=flip)
    return {f"batch{n}": 1000 * time_calls(classifier, [crop] * n, seconds)[0] / n for n in (1, 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="labelled face crops, DIR/<label>/<image> (e.g. FER2013 val)")
    parser.add_argument("--model", action="append", required=True, help="bundled name or ONNX file; repeat")
    parser.add_argument("--max-members", type=int, default=3, help="largest ensemble to try (3)")
    parser.add_argument("--budget-ms", type=float, default=3.0, help="cost per face at batch 1 to stay within (3)")
    parser.add_argument("--reference", default="mini_xception", help="model whose cost the ratios divide by")
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per setting")
    parser.add_argument("--limit", type=int, help="evaluate an evenly spaced subset of N images")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)

    everything = EmotionClassifier(args.model)  # also checks that the models share their labels
    labels = everything.labels
    dataset = FolderDataset.scan(args.dataset, labels, limit=args.limit)
    crops = [load_image(s.path) for s in dataset.samples]
    truth = [labels.index(s.label) for s in dataset.samples]
    print(f"{len(crops)} images from {dataset.root}", file=sys.stderr)
    probs = {(m, f): probabilities(m, crops, f) for m in args.model for f in (False, True)}

    crop = face_crop(max(everything.input_size))
    reference = ms_per_face((args.reference,), False, crop, args.seconds)["batch1"]
    rows = []
    for size in range(1, min(args.max_members, len(args.model)) + 1):
        for members in itertools.combinations(args.model, size):
            for flip in (False, True):
                mean = np.mean([probs[(m, flip)] for m in members], axis=0)
                metrics = Metrics.from_predictions(labels, truth, mean.argmax(axis=1).tolist())
                cost = ms_per_face(members, flip, crop, args.seconds)
                rows.append(
                    {
                        "members": list(members),
                        "flip": flip,
                        "accuracy": round(metrics.accuracy, 4),
                        "macro_f1": round(metrics.macro_f1, 4),
                        "ms_per_face": {k: round(v, 3) for k, v in cost.items()},
                        "cost_ratio": round(cost["batch1"] / reference, 2),
                    }
                )
    rows.sort(key=lambda r: -r["accuracy"])
    print(f"| models | flip | accuracy | macro-F1 | ms/face batch 1 | batch 4 | x {args.reference} | budget |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ms = r["ms_per_face"]
        within = "ok" if ms["batch1"] <= args.budget_ms else "over"
        print(
            f"| {' + '.join(r['members'])} | {'yes' if r['flip'] else 'no'} | {r['accuracy']:.4f} | "
            f"{r['macro_f1']:.4f} | {ms['batch1']:.2f} | {ms['batch4']:.2f} | {r['cost_ratio']:.1f} | {within} |"
        )
    print(
        f"\nreference: {args.reference} alone, no flip, {reference:.3f} ms per face at batch 1; "
        f"budget {args.budget_ms} ms"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"dataset": str(dataset.root), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""When should edge-fer abstain? Coverage and accuracy on claimed faces for a grid of claim rules, on the
in-the-wild development set (photos and clip apart) and on FER2013 ``val``, from one pass of the real pipeline.

    python benchmarks/abstention.py --wild-root ../shared/datasets/wild_dev/images \
        --clip-root ../shared/videos --val ../shared/datasets/fer2013/val

Each labelled face is analysed once with the shipped defaults except the claim rule (everything claimed), its
quality and confidence are kept, and every rule of the grid is then applied to those numbers: the figures are
what ``edge-fer eval-wild`` reports with that rule in ``classifier.claim``. ``val`` crops have no detection and
no landmarks: their quality is measured on the whole crop (size, sharpness, light), detection score 1.
Also prints the top-label calibration error (15 bins) of the claimed dev-set faces. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_fer.config.settings import ClassifierSection, DetectorSettings  # noqa: E402
from edge_fer.imageio import load_image  # noqa: E402
from edge_fer.offline.evaluate import FolderDataset  # noqa: E402
from edge_fer.offline.wild import NOT_A_FACE, WildSet, match, pictures  # noqa: E402
from edge_fer.vision.analyzer import FaceAnalyzer  # noqa: E402
from edge_fer.vision.calibration import reliability  # noqa: E402
from edge_fer.vision.quality import measure  # noqa: E402
from edge_fer.vision.types import EMOTIONS, Box, Detection  # noqa: E402

QUALITY_GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
CONFIDENCE_GRID = (0.0, 0.3, 0.4, 0.5)


def wild_rows(analyzer: FaceAnalyzer, labels: Path, root: Path) -> list[dict]:
    """One row per labelled face that the pipeline found: its truth, prediction, confidence, quality, scores."""
    wild = WildSet.load(labels, root)
    groups = wild.groups()
    rows = []
    for key, image in pictures(wild):
        if isinstance(image, str):
            raise SystemExit(image)
        faces = analyzer.analyze(image).faces
        for lf, face in match(groups[key], list(faces), 0.5):
            row = {"label": lf.label, "found": face is not None}
            if face is not None:
                row |= {
                    "predicted": face.emotion.label,
                    "confidence": float(face.emotion.confidence),
                    "quality": float(face.quality.score),
                    "probs": [float(face.emotion.scores[e]) for e in EMOTIONS],
                }
            rows.append(row)
    return rows


def val_rows(analyzer: FaceAnalyzer, root: Path) -> list[dict]:
    dataset = FolderDataset.scan(root, EMOTIONS)
    rows = []
    batch = 256
    for start in range(0, len(dataset.samples), batch):
        samples = dataset.samples[start : start + batch]
        crops = [load_image(s.path) for s in samples]
        emotions = analyzer.classifier.classify(crops)
        for sample, crop, emotion in zip(samples, crops, emotions):
            h, w = crop.shape[:2]
            quality = measure(crop, Detection(Box(0, 0, w, h), 1.0, None)).score
            rows.append(
                {
                    "label": sample.label,
                    "found": True,
                    "predicted": emotion.label,
                    "confidence": float(emotion.confidence),
                    "quality": quality,
                }
            )
    return rows


def score(rows: list[dict], min_quality: float, min_confidence: float) -> dict:
    faces = [r for r in rows if r["label"] != NOT_A_FACE]
    claimed = [r for r in faces if r["found"] and r["quality"] >= min_quality and r["confidence"] >= min_confidence]
    right = sum(r["predicted"] == r["label"] for r in claimed)
    false_faces = sum(
        1
        for r in rows
        if r["label"] == NOT_A_FACE and r["found"] and r["quality"] >= min_quality and r["confidence"] >= min_confidence
    )
    return {
        "coverage": round(len(claimed) / len(faces), 3) if faces else None,
        "accuracy": round(right / len(claimed), 3) if claimed else None,
        "wrong_claims": len(claimed) - right,
        "claimed": len(claimed),
        "false_faces": false_faces,
    }


def dev_calibration(rows: list[dict]) -> dict:
    usable = [r for r in rows if r["label"] in EMOTIONS and r["found"]]
    probs = np.array([r["probs"] for r in usable])
    truth = np.array([EMOTIONS.index(r["label"]) for r in usable])
    rel = reliability(probs, truth, 15)
    return {"n": len(usable), "ece": round(rel.ece, 4), "mean_confidence": round(float(probs.max(1).mean()), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = ROOT / "benchmarks" / "wild_dev"
    parser.add_argument("--wild-root", type=Path, required=True, help="folder of the development photos")
    parser.add_argument("--clip-root", type=Path, required=True, help="folder holding the labelled clip")
    parser.add_argument("--val", type=Path, help="FER2013 val folder (DIR/<label>/<image>); optional")
    args = parser.parse_args(argv)

    analyzer = FaceAnalyzer.from_settings(
        DetectorSettings(), ClassifierSection(claim={"min_quality": 0.0, "min_confidence": 0.0})
    )
    sets = {
        "photos": wild_rows(analyzer, here / "photos.csv", args.wild_root),
        "clip": wild_rows(analyzer, here / "clip.csv", args.clip_root),
    }
    calibration = {name: dev_calibration(rows) for name, rows in sets.items()}
    calibration["photos+clip"] = dev_calibration(sets["photos"] + sets["clip"])
    if args.val:
        sets["val"] = val_rows(analyzer, args.val)
    grid = [
        {"min_quality": q, "min_confidence": c, **{name: score(rows, q, c) for name, rows in sets.items()}}
        for q in QUALITY_GRID
        for c in CONFIDENCE_GRID
    ]
    print(json.dumps({"dev_set_calibration": calibration, "grid": grid}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

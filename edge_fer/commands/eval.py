"""``edge-fer eval DATASET_DIR``: accuracy of the emotion model(s) on a folder of labelled face crops."""

from __future__ import annotations

import argparse
import json
import sys
import time

from edge_fer.commands.argtypes import add_classifier_arguments, positive_int

NAME = "eval"
HELP = "Measure emotion accuracy on a folder dataset DIR/<label>/<image> (each image a face crop)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", metavar="DATASET_DIR", help="folder with one sub-folder per label (FER2013 layout)")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object on stdout")
    parser.add_argument("--report", metavar="DIR", help="write confusion_matrix.png and report.json into DIR")
    add_classifier_arguments(parser, per="prediction")
    parser.add_argument("--limit", metavar="N", type=positive_int, help="evaluate an evenly spaced subset of N images")
    parser.add_argument("--batch-size", metavar="N", type=positive_int, default=64, help="images per batch (64)")
    parser.add_argument(
        "--max-pixels", metavar="N", type=positive_int, default=40_000_000, help="refuse larger images (40000000)"
    )


class Progress:
    """A redrawn bar on a terminal; elsewhere (logs, CI) a plain line every 10%."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.next_line = 0.1

    def __call__(self, done: int, total: int) -> None:
        fraction = done / total if total else 1.0
        elapsed = time.perf_counter() - self.start
        if self.tty:
            bar = "#" * int(fraction * 30)
            self.stream.write(f"\r[{bar:<30}] {done}/{total} {fraction:4.0%} {elapsed:5.1f}s")
            if done >= total:
                self.stream.write("\n")
        elif fraction >= self.next_line or done >= total:
            self.stream.write(f"eval: {done}/{total} images ({fraction:.0%}, {elapsed:.1f}s)\n")
            while self.next_line <= fraction:
                self.next_line += 0.1
        self.stream.flush()


def run(args: argparse.Namespace) -> int:
    from edge_fer import exitcodes
    from edge_fer.imageio import prepare_opencv

    prepare_opencv(args.max_pixels)

    from edge_fer.offline.evaluate import FolderDataset, evaluate, write_report
    from edge_fer.vision.emotion import EmotionClassifier
    from edge_fer.vision.onnx_session import ModelError

    def warn(message: str) -> None:
        print(f"edge-fer eval: {message}", file=sys.stderr, flush=True)

    try:
        classifier = EmotionClassifier(args.model, flip=args.flip, relight=args.relight_dark)
    except ModelError as exc:
        warn(str(exc))
        return exitcodes.UNAVAILABLE
    try:
        dataset = FolderDataset.scan(args.dataset, classifier.labels, limit=args.limit)
    except FileNotFoundError as exc:
        warn(str(exc))
        return exitcodes.USAGE
    for folder in dataset.unknown_dirs:
        warn(f"{folder}: skipping folder, its name is not a label of the model ({', '.join(classifier.labels)})")
    if not dataset.samples:
        warn(f"{dataset.root}: no images found in folders named after the labels ({', '.join(classifier.labels)})")
        return exitcodes.FAILURE

    result = evaluate(
        dataset, classifier, batch_size=args.batch_size, max_pixels=args.max_pixels, progress=Progress(sys.stderr)
    )
    for failure in result.failures:
        warn(failure)
    unreadable = f"{len(result.failures)} of {len(dataset.samples)} images could not be read and were not counted"
    if result.metrics.n == 0:
        warn("no image could be read; nothing to measure")
        return exitcodes.FAILURE

    info = {
        "model": classifier.name,
        "model_sha256": classifier.sha256_id,
        "flip": args.flip,
        "dataset": str(dataset.root),
        "seconds": round(result.seconds, 2),
    }
    if result.reliability is not None:  # top-label calibration error, 15 equal-width bins
        info["ece"] = round(result.reliability.ece, 4)
    if args.report:
        try:
            paths = write_report(result, args.report, info)
        except OSError as exc:
            warn(f"{args.report}: cannot write the report ({exc}); check the directory")
            return exitcodes.FAILURE
        warn("wrote " + ", ".join(str(p) for p in paths))
    if args.json:
        print(json.dumps({**result.metrics.to_json(), **info, "unreadable": len(result.failures)}))
    else:
        m = result.metrics
        print(f"{classifier.name} ({classifier.sha256_id}){' with flip' if args.flip else ''} on {dataset.root}")
        print()
        print(m.report())
        print()
        per_image = 1000 * result.seconds / max(m.n, 1)
        timing = f"{result.seconds:.1f} s ({per_image:.2f} ms/image)"
        ece = f"  ECE {info['ece']:.4f}" if "ece" in info else ""
        print(f"accuracy {m.accuracy:.4f}  macro-F1 {m.macro_f1:.4f}{ece}  n={m.n}  {timing}")
    if result.failures:  # the figures above leave those images out: like analyze, say so and fail
        warn(unreadable)
        return exitcodes.FAILURE
    return exitcodes.OK

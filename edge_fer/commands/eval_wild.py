"""``edge-fer eval-wild LABELS --root DIR``: the real pipeline on real faces labelled by eye."""

from __future__ import annotations

import argparse
import json
import sys

from edge_fer.commands.analyzer_options import add_analyzer_arguments, analyzer_from_args

NAME = "eval-wild"
HELP = (
    "score detection and emotions on real photos or video frames labelled by eye "
    "(a CSV of image,x,y,w,h,label or video,frame,x,y,w,h,label): accuracy on claimed faces and coverage"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("labels", metavar="LABELS", help="the labels file (CSV; see benchmarks/wild_dev/README.md)")
    parser.add_argument("--root", metavar="DIR", required=True, help="the folder holding the labelled pictures")
    parser.add_argument("--report", metavar="DIR", help="write confusion_matrix.png, mistakes.png and report.json")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--iou", type=_fraction, default=0.5, help="overlap for a face to match a label (0.5)")
    add_analyzer_arguments(parser)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value:g} must be above 0 and at most 1")
    return value


def _error(message: str) -> None:
    print(f"edge-fer eval-wild: {message}", file=sys.stderr, flush=True)


def _summary(result, args) -> str:
    m = result.metrics
    lines = [
        f"{args.labels}: {len(result.faces)} labelled faces, {len(result.claimed)} claimed "
        f"(coverage {result.coverage:.3f}), accuracy on claimed {m.accuracy:.4f}; "
        f"{result.false_faces} of {len(result.outcomes) - len(result.faces)} non-face boxes reported as faces",
        "",
        m.report(),
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from edge_fer import exitcodes
    from edge_fer.offline.wild import WildSet, WildSetError, evaluate_wild, write_wild_report

    try:
        wild = WildSet.load(args.labels, args.root)
    except WildSetError as exc:
        _error(str(exc))
        return exitcodes.USAGE
    analyzer = analyzer_from_args(args, _error)
    if isinstance(analyzer, int):
        return analyzer
    result, kept = evaluate_wild(
        wild, lambda image: analyzer.analyze(image).faces, args.iou, keep_crops=bool(args.report)
    )
    model = analyzer.classifier.name
    if args.json:
        print(json.dumps({"labels_file": args.labels, "model": model, "flip": args.flip, **result.to_json()}))
    else:
        print(_summary(result, args))
    if args.report:
        try:
            files = write_wild_report(result, kept, args.report, {"labels_file": args.labels, "model": model})
        except OSError as exc:
            _error(f"{args.report}: cannot write the report ({exc}); check the directory")
            return exitcodes.FAILURE
        print(f"report: {', '.join(str(f) for f in files)}", file=sys.stderr)
    if result.failures:
        for line in result.failures:
            _error(line)
        _error(f"{len(result.failures)} labelled pictures could not be read; their faces count as not found")
        return exitcodes.FAILURE
    return exitcodes.OK

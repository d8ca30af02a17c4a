"""The options that choose how faces are found and read, shared by the commands that analyse pictures
(``analyze``, ``eval-wild``), so they build the daemon's own analyzer from the daemon's own settings."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from edge_fer.commands.argtypes import add_classifier_arguments

OPTION_OF = {"models": "--model", "margin": "--margin", "align": "--align", "flip": "--flip"}


def add_analyzer_arguments(parser: argparse.ArgumentParser) -> None:
    from edge_fer.config.settings import DetectorSettings

    default = DetectorSettings().min_face_size  # the daemon's detector.min_face_size: both find the same faces
    parser.add_argument(
        "--min-face", metavar="PX", type=_min_face, default=default, help=f"smallest face to look for ({default:g})"
    )
    add_classifier_arguments(parser, per="face")
    parser.add_argument(
        "--align", choices=("similarity", "box"), default="similarity", help="face crop: landmarks or box"
    )
    parser.add_argument(
        "--margin", type=float, default=None, help="extra context around the face, fraction per side (0)"
    )


def _min_face(text: str) -> float:
    """A face size the config's ``detector.min_face_size`` would accept, checked by that same model."""
    from pydantic import ValidationError

    from edge_fer.config.settings import DetectorSettings

    try:
        return DetectorSettings(min_face_size=text).min_face_size
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc.errors()[0]['msg']} (pixels)") from None


def analyzer_from_args(args: argparse.Namespace, error: Callable[[str], None]):
    """The daemon's ``FaceAnalyzer`` with these options, or the exit code after one line to ``error``:
    69 for a model that is missing or unusable (an installation problem), 2 for a bad option value."""
    from pydantic import ValidationError

    from edge_fer import exitcodes
    from edge_fer.config.settings import ClassifierSection, DetectorSettings
    from edge_fer.vision.analyzer import FaceAnalyzer
    from edge_fer.vision.onnx_session import ModelError

    try:
        # Full scans on every picture: stills have no previous frame for gated detection to follow.
        detector = DetectorSettings(min_face_size=args.min_face, roi_detection=False)
        classifier = ClassifierSection(
            models=args.model or [],
            flip=args.flip,
            align=args.align,
            margin=args.margin,
            relight_dark=args.relight_dark,
        )
        return FaceAnalyzer.from_settings(detector, classifier)
    except ModelError as exc:
        error(str(exc))
        return exitcodes.UNAVAILABLE
    except ValidationError as exc:  # a model file that is not there, an alignment margin out of range
        problem = exc.errors()[0]
        field = str(problem["loc"][0]) if problem["loc"] else ""
        message = problem["msg"].removeprefix("Value error, ")
        error(f"{OPTION_OF.get(field, field)}: {message}")
        return exitcodes.UNAVAILABLE if field == "models" else exitcodes.USAGE

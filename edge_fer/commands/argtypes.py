"""argparse value types and options shared by the subcommands, so they read the same everywhere."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def add_set_argument(parser: argparse.ArgumentParser, example: str) -> None:
    """``--set KEY=VALUE``, repeatable: one config setting from the command line, as ``run`` and
    ``check-config`` both take it."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override one setting of the config (e.g. {example}); repeatable",
    )


def add_classifier_arguments(parser: argparse.ArgumentParser, per: str) -> None:
    """``--flip/--no-flip`` and ``--model``, with the shipped defaults spelled out in the help."""
    from edge_fer.vision.onnx_session import DEFAULT_EMOTION_MODELS, DEFAULT_FLIP, EMOTION_MODELS

    parser.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_FLIP,
        help=f"average each {per} with its mirror image (default: {'on' if DEFAULT_FLIP else 'off'})",
    )
    parser.add_argument(
        "--relight-dark",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"stretch dark {per}s to the light the models learnt from, as the daemon does (default: on)",
    )
    parser.add_argument(
        "--model",
        metavar="MODEL",
        action="append",
        help=f"ONNX emotion model file or bundled name ({', '.join(EMOTION_MODELS)}); repeat to average several "
        f"(default: {' + '.join(DEFAULT_EMOTION_MODELS)})",
    )

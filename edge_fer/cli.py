"""The ``edge-fer`` command."""

from __future__ import annotations

import argparse
import sys

from edge_fer import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-fer",
        description="Real-time facial emotion recognition: MTCNN faces, ONNX emotions, MQTT events.",
    )
    parser.add_argument("--version", action="version", version=f"edge-fer {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(sys.argv[1:] if argv is None else argv)
    parser.print_help()
    return 0

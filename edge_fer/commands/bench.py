"""``edge-fer bench``: how fast the real pipeline runs here."""

from __future__ import annotations

import argparse
import json
import sys

from edge_fer.commands.argtypes import positive_int

NAME = "bench"
HELP = "measure the real pipeline on a video or the demo source: fps, detection and latency, memory"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default="demo", help="demo (default), demo:N for N faces, or a video file")
    parser.add_argument("--frames", type=positive_int, default=300, metavar="N", help="frames to process (default 300)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--paced", action="store_true", help="pace the source at its fps (for latency)")
    parser.add_argument("--width", type=int, help="demo frame width (default 640)")
    parser.add_argument("--height", type=int, help="demo frame height (default 480)")
    parser.add_argument("--config", metavar="PATH", help="take detector/classifier/tracking settings from a config")
    parser.add_argument("--min-face", type=float, help="detector min_face_size in pixels")
    parser.add_argument(
        "--full-scan-interval",
        type=float,
        metavar="S",
        help="seconds between full scans of gated detection (0: a full scan on every frame)",
    )


def run(args: argparse.Namespace) -> int:
    from edge_fer import exitcodes
    from edge_fer.config.loading import apply_overrides, load_config
    from edge_fer.config.settings import ConfigError
    from edge_fer.logs import setup_logging

    setup_logging("warning")
    try:
        config = load_config(args.config)
        config = apply_overrides(
            config,
            {
                "cameras[0].realtime": bool(args.paced),
                "cameras[0].loop": True,
                "cameras[0].width": args.width,
                "cameras[0].height": args.height,
                "detector.min_face_size": args.min_face,
                "detector.full_scan_interval": args.full_scan_interval,
                "output.stdout": "off",
                "stats.interval": 3600.0,
            },
            source=args.source,
        )
    except ConfigError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return exitcodes.CONFIG
    from edge_fer.offline.bench import run_bench

    result = run_bench(config, args.frames, args.paced)
    print(json.dumps(result.as_dict()) if args.json else result.table())
    return exitcodes.OK

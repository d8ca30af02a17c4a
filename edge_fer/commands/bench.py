"""``edge-fer bench``: how fast the real pipeline runs here."""

from __future__ import annotations

import argparse
import json
import sys

from edge_fer.commands.argtypes import positive_int

NAME = "bench"
BENCH_RECONNECT_ATTEMPTS = 3
HELP = "measure the real pipeline on a video or the demo source: fps, detection and latency, memory"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default="demo", help="demo (default), demo:N for N faces, or a video file")
    parser.add_argument("--frames", type=positive_int, default=300, metavar="N", help="frames to process (default 300)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--paced", action="store_true", help="pace the source at its fps (for latency)")
    parser.add_argument("--idle", action="store_true", help="the demo films a still scene with no face (idle cost)")
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
    from edge_fer.config.sources import parse_source
    from edge_fer.logs import setup_logging

    setup_logging("warning")
    try:
        config = load_config(args.config)
        config = apply_overrides(
            config,
            {
                "cameras[0].realtime": bool(args.paced),
                "cameras[0].loop": True,
                # A camera that dies during the measurement ends it instead of being waited for forever.
                "cameras[0].reconnect.max_attempts": BENCH_RECONNECT_ATTEMPTS,
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
    if args.idle and parse_source(config.cameras[0].source).kind != "demo":
        print("edge-fer bench: --idle needs the demo source (--source demo)", file=sys.stderr)
        return exitcodes.USAGE
    problem = _probe(config)
    if problem:
        _error(problem)
        return exitcodes.FAILURE
    from edge_fer.offline.bench import run_bench

    result = run_bench(config, args.frames, args.paced, idle=args.idle)
    print(json.dumps(result.as_dict()) if args.json else result.table())
    if result.frames < args.frames:
        _error(f"{result.source}: delivered {result.frames} of {args.frames} frames, then failed; see the lines above")
        return exitcodes.FAILURE
    return exitcodes.OK


def _error(message: str) -> None:
    print(f"edge-fer bench: {message}", file=sys.stderr, flush=True)


def _probe(config) -> str | None:
    """Open the source once and read one frame, as ``run`` would: a camera that is not there, a stream
    that does not answer or a file that does not decode is one line here, not a wait for frames that never
    come. The source's own timeouts bound how long this takes (5 s for a camera, 10 s for a stream)."""
    from edge_fer.capture.source import SourceError
    from edge_fer.runtime.pipeline import source_from_config

    try:
        source = source_from_config(config.cameras[0])
        try:
            source.open()
            if source.read() is None:
                return f"{source.describe()}: no frame at all (an empty video?)"
        finally:
            source.close()
    except SourceError as exc:
        return str(exc)
    return None

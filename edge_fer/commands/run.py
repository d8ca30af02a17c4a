"""``edge-fer run`` (the default command): the daemon."""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from edge_fer.commands.argtypes import add_set_argument, positive_int

NAME = "run"
HELP = "run the daemon: capture, detect, classify, track, publish events (default command)"

log = logging.getLogger("edge_fer.run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="YAML config (default: built-in defaults, demo camera)")
    parser.add_argument(
        "--source",
        metavar="SRC",
        help="camera source for the first camera: demo, a camera index, /dev/videoN, a video file or a URL",
    )
    parser.add_argument("--output", metavar="PATH", help="write annotated video: a directory (segments) or a file")
    parser.add_argument("--preview", action="store_true", help="show the annotated frames in a local window")
    parser.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N processed frames")
    parser.add_argument("--mqtt", metavar="URL", help="publish to this broker: mqtt://[user@]host[:port] or mqtts://")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="override log_level")
    add_set_argument(parser, "tracking.min_hits=5, cameras[0].source=0")


def run(args: argparse.Namespace) -> int:
    from edge_fer import exitcodes
    from edge_fer.config.settings import ConfigError
    from edge_fer.logs import setup_logging

    setup_logging(args.log_level or "info")
    load = config_loader(args)
    try:
        config = load()
    except ConfigError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return exitcodes.CONFIG
    except ValueError as exc:  # a --set problem, one line
        print(exc, file=sys.stderr)
        return exitcodes.CONFIG
    setup_logging(config.log_level, repeat_window=config.log_repeat_window)

    from edge_fer.runtime.daemon import Daemon, DaemonError
    from edge_fer.runtime.service import install_signal_handlers

    # Before the models load (seconds on a small board): a SIGTERM then still sets the one stop event, and
    # the daemon stops cleanly as soon as it is built, instead of dying by the default handler.
    stop, reload = threading.Event(), threading.Event()
    install_signal_handlers(stop, reload)  # SIGHUP: re-read the config between frames (systemctl reload)
    try:
        daemon = Daemon(
            config, mqtt_url=args.mqtt, preview=args.preview, max_frames=args.max_frames, stop=stop,
            reload=(reload, load),
        )  # fmt: skip
    except DaemonError as exc:
        print(f"edge-fer: {exc}", file=sys.stderr)
        return exc.exit_code
    return daemon.run()


def config_loader(args: argparse.Namespace):
    """Reads the config as this command line asks (file, --source, --output, --log-level, --set), now and on
    every SIGHUP. Raises ConfigError, or ValueError with one line for a bad --set."""

    def load():
        from edge_fer.config.loading import SetError, apply_assignments, apply_overrides, load_config

        config = load_config(args.config)
        config = apply_overrides(
            config, {"output.video.path": args.output, "log_level": args.log_level}, source=args.source
        )
        if args.overrides:
            try:
                config = apply_assignments(config, args.overrides)
            except SetError as exc:
                raise ValueError(f"edge-fer run: {exc}") from None
        return config

    return load

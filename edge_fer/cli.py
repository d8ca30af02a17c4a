"""The ``edge-fer`` command: ``run`` (the default), and the subcommands in ``edge_fer.commands``."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import traceback
from types import ModuleType

from edge_fer import __version__

# Order is the order shown in --help. The first is the default when no subcommand is given.
COMMAND_MODULES: tuple[str, ...] = ("run", "analyze", "eval", "eval_wild", "bench", "check_config", "listen")
DEFAULT_COMMAND = "run"


def _load_commands() -> list[ModuleType]:
    return [importlib.import_module(f"edge_fer.commands.{name}") for name in COMMAND_MODULES]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-fer",
        description="Real-time facial emotion recognition: MTCNN faces, ONNX emotions, MQTT events.",
    )
    parser.add_argument("--version", action="version", version=f"edge-fer {__version__}")
    commands = _load_commands()
    if commands:
        sub = parser.add_subparsers(dest="command", metavar="COMMAND")
        for module in commands:
            p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
            module.add_arguments(p)
            p.set_defaults(func=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    names = {module.NAME for module in _load_commands()}  # subcommand names, e.g. check-config
    # `edge-fer --preview` means `edge-fer run --preview`: the daemon is the default command.
    if DEFAULT_COMMAND in names and not (argv and (argv[0] in names or argv[0] in ("-h", "--help", "--version"))):
        argv.insert(0, DEFAULT_COMMAND)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    return _run(func, args)


def _run(func, args: argparse.Namespace) -> int:
    """Run a command; what escapes it becomes an exit code systemd can act on (``edge_fer.exitcodes``).

    A configuration problem (78) or a model that cannot be loaded (69) is one line and no restart; anything
    else escaping a command is a bug: its traceback goes to stderr (the journal under systemd) and the exit
    code is 70, which the unit restarts (a traceback with exit 1 looked like a routine runtime failure).
    """
    from edge_fer import exitcodes
    from edge_fer.bundled import ModelError
    from edge_fer.config.source import ConfigError

    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C in a command without its own handler: what a shell expects, no traceback
        print(f"edge-fer {args.command}: interrupted", file=sys.stderr)
        return exitcodes.FORCED + int(signal.SIGINT)  # 130
    except ConfigError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return exitcodes.CONFIG
    except ModelError as exc:
        print(f"edge-fer: {exc}", file=sys.stderr)
        return exitcodes.UNAVAILABLE
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        print(f"edge-fer: internal error (a bug; please report it): {type(exc).__name__}: {exc}", file=sys.stderr)
        return exitcodes.SOFTWARE

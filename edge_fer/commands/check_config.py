"""``edge-fer check-config PATH``: validate a config the way ``run`` will, before ``run`` does.

Meant for ``ExecStartPre=`` and for an operator after editing: every problem is printed with its
key path and line and the exit code is 78 (EX_CONFIG); a good config prints the effective
settings (defaults filled in, ``${...}`` substituted, paths resolved) as YAML with every secret
masked, so the output can be pasted into a bug report.
"""

from __future__ import annotations

import argparse
import sys

from edge_fer.commands.argtypes import add_set_argument

NAME = "check-config"
HELP = "validate a config file: print the effective settings (secrets masked) or every error (exit 78)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="the YAML config file, e.g. /etc/edge-fer/edge-fer.yaml")
    add_set_argument(parser, "cameras[0].source=0, as run --set would")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing when the config is valid (for ExecStartPre=)"
    )


def run(args: argparse.Namespace) -> int:
    import yaml

    from edge_fer.config.loading import SetError, apply_assignments, load_config
    from edge_fer.config.settings import EX_CONFIG, ConfigError
    from edge_fer.redact import mask_secrets

    try:
        config = load_config(args.path)
        if args.overrides:  # one line naming the keys, never a value (it may be a password)
            config = apply_assignments(config, args.overrides)
    except ConfigError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        count = len(exc.problems)
        print(f"{exc.source}: {count} problem{'s' if count != 1 else ''}; nothing was started", file=sys.stderr)
        return EX_CONFIG
    except SetError as exc:
        print(f"check-config: {exc}", file=sys.stderr)
        return 2 if exc.malformed else EX_CONFIG
    if not args.quiet:
        shown = mask_secrets(config.model_dump(mode="json"))
        sys.stdout.write(f"# effective config from {args.path} (secrets masked)\n")
        sys.stdout.write(yaml.safe_dump(shown, sort_keys=False, default_flow_style=False, allow_unicode=True))
    return 0

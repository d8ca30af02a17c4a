"""``python -m edge_fer.schema [--check]``: write the payload schemas, or check the shipped ones."""

from __future__ import annotations

import argparse
import sys

from edge_fer.schema import NAMES, path, render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_fer.schema", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a shipped schema differs from the models")
    args = parser.parse_args(argv)
    stale = []
    for name in NAMES:
        text, target = render(name), path(name)
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                stale.append(str(target))
        else:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target}")
    if stale:
        print(f"out of date (run python -m edge_fer.schema): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

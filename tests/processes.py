"""``python -m edge_fer ...`` as a child process, the way an operator or systemd starts it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def edge_fer(*args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    """The real command with piped text stdout/stderr, unbuffered, run from the repository root.

    The test's own ``NOTIFY_SOCKET`` is removed so that a test run under systemd does not notify its unit;
    one given in ``env`` (a test's socket) is kept.
    """
    inherited = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    full_env = {**inherited, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "edge_fer", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=ROOT,
        **popen,
    )

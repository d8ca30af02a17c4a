"""``python -m edge_fer ...`` as a child process, the way an operator or systemd starts it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def edge_fer(*args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    """The real command with piped text stdout/stderr, unbuffered, run from the repository root.

    ``NOTIFY_SOCKET`` is removed so that a test run under systemd does not notify the test's own unit.
    """
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("NOTIFY_SOCKET", None)
    return subprocess.Popen(
        [sys.executable, "-m", "edge_fer", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=ROOT,
        **popen,
    )

"""Config sweep: whatever ``edge-fer check-config`` accepts, ``edge-fer run`` starts and stops cleanly.

Every numeric setting is set, alone, to each edge of the range its pydantic model declares (at the bound, or
just inside an open one) and just outside it; every free-text setting to blank, spaces, non-ASCII and a very
long value. Each config goes through ``edge-fer check-config``; each accepted one is run as
``edge-fer run --config FILE --source demo --max-frames N`` and sent SIGTERM after a few seconds. A case is
fine when check-config refuses it (exit 78, one line per problem, no traceback), or when run then exits 0 on
SIGTERM or at ``--max-frames``, or exits 78 with one clear line. Anything else is a crash: a traceback, another
exit code, a process that does not stop. Prints the counts and every crash::

    python benchmarks/config_sweep.py              # the full sweep (a few minutes on 2 cores)
    python benchmarks/config_sweep.py --only detector.scale_factor --only http.token

The base config has every output on (stdout, MQTT towards a broker that is not there, the browser preview
on a free port, video into a temporary directory), so each setting reaches the object that uses it. The
ranges come from ``tests/settings_ranges.py``, which reads them from the models.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_fer.cli import main as cli_main  # noqa: E402
from edge_fer.config.settings import Config  # noqa: E402
from tests.settings_ranges import key_of, numeric_settings, text_settings, with_value  # noqa: E402

TEXTS = {"blank": "", "spaces": "   ", "non-ascii": "Kamera-Küche-名前", "long": "x" * 5000}
START_SECONDS = 60.0  # for the models to load and the pipeline to say it is running
RUN_SECONDS = 1.0  # running, then SIGTERM
STOP_SECONDS = 15.0  # to stop after SIGTERM


@dataclass
class Case:
    key: str
    label: str
    data: dict
    demo: bool  # run with --source demo (not for the source setting itself)


@dataclass
class Outcome:
    case: Case
    verdict: str  # refused, ran, run-refused, crashed
    detail: str = ""


def base_config(workdir: Path) -> dict:
    data = Config().model_dump(mode="json")
    data["device"] = "sweep"
    data["mqtt"]["host"] = "127.0.0.1"
    data["mqtt"]["port"] = 1  # nothing listens there: the publisher buffers and retries
    data["http"].update(enabled=True, port=0)
    data["output"]["stdout"] = "on"
    data["output"]["video"]["path"] = str(workdir / "video")
    return data


def cases(base: dict, only: list[str]) -> list[Case]:
    out = []
    for setting in numeric_settings():
        for value in setting.edges():
            out.append(Case(setting.key, f"{setting.key}={value!r}", with_value(base, setting.path, value), True))
    for path in text_settings():
        key = key_of(path)
        for label, text in TEXTS.items():
            out.append(Case(key, f"{key}={label}", with_value(base, path, text), key != "cameras[0].source"))
    return [c for c in out if not only or c.key in only]


_CLI = threading.Lock()  # the in-process command swaps sys.stdout/sys.stderr: one at a time


def check_config(path: Path) -> tuple[int, str]:
    err = io.StringIO()
    with _CLI, contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli_main(["check-config", "--quiet", str(path)])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, err.getvalue()


def run(path: Path, demo: bool, max_frames: int) -> tuple[int | None, str]:
    """Exit code and stderr of ``run``: SIGTERM once the pipeline says it is running (and has had a moment
    to process frames), unless it stopped by itself first; None when it did not stop."""
    cmd = [sys.executable, "-m", "edge_fer", "run", "--config", str(path), "--max-frames", str(max_frames)]
    if demo:
        cmd += ["--source", "demo"]
    proc = subprocess.Popen(
        cmd, cwd=path.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    lines: list[str] = []
    running = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "pipeline running" in line:
                running.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + START_SECONDS
    while proc.poll() is None and not running.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    if proc.poll() is None:
        time.sleep(RUN_SECONDS)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        reader.join(2)
        return None, "".join(lines)
    reader.join(5)
    return proc.returncode, "".join(lines)


def judge(case: Case, workdir: Path, max_frames: int) -> Outcome:
    folder = Path(tempfile.mkdtemp(dir=workdir))
    path = folder / "edge-fer.yaml"
    path.write_text(yaml.safe_dump(case.data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    code, err = check_config(path)
    if code == 78:
        if "Traceback" in err or not err.strip():
            return Outcome(case, "crashed", f"check-config 78 without a clear message: {err[-300:]}")
        return Outcome(case, "refused")
    if code != 0:
        return Outcome(case, "crashed", f"check-config exit {code}: {err[-300:]}")
    started = time.monotonic()
    rc, err = run(path, case.demo, max_frames)
    took = time.monotonic() - started
    if rc == 0 and "Traceback" not in err:
        return Outcome(case, "ran", f"{took:.1f} s")
    if rc == 78 and "Traceback" not in err:  # refused at start: the last line says why
        return Outcome(case, "run-refused", err.strip().splitlines()[-1] if err.strip() else "(no message)")
    tail = "\n".join(err.strip().splitlines()[-6:])
    return Outcome(case, "crashed", f"run exit {rc} after {took:.1f} s:\n{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], help="sweep only this key (repeatable)")
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    parser.add_argument("--max-frames", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edge-fer-sweep-") as tmp:
        workdir = Path(tmp)
        todo = cases(base_config(workdir), args.only)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = list(pool.map(lambda c: judge(c, workdir, args.max_frames), todo))
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.verdict] = counts.get(outcome.verdict, 0) + 1
    accepted = (
        counts.get("ran", 0)
        + counts.get("run-refused", 0)
        + sum(1 for o in outcomes if o.verdict == "crashed" and o.detail.startswith("run "))
    )
    crashed = counts.get("crashed", 0)
    for outcome in outcomes:
        if outcome.verdict == "crashed":
            print(f"CRASHED {outcome.case.label}: {outcome.detail}\n")
        elif outcome.verdict == "run-refused":
            print(f"run refused {outcome.case.label}: {outcome.detail}")
    print(
        f"{len(outcomes)} cases: {counts.get('refused', 0)} refused by check-config, {accepted} accepted "
        f"({counts.get('ran', 0)} ran and stopped cleanly, {counts.get('run-refused', 0)} refused by run "
        f"with one line), {crashed} crashed"
    )
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Is the daemon's memory flat over many frames? RSS of a real ``edge-fer`` process, sampled over a run.

Runs ``edge-fer`` on the ``demo`` source as fast as inference goes (``realtime: false``; 50,000 frames take a
few minutes here instead of 28 at 30 fps), every-frame events into a file, and reads the process's RSS,
open descriptors and threads from ``/proc`` every ``--sample-every`` seconds. Prints the series and the RSS
change from the end of the warm-up (``--warmup`` share of the frames) to the end; exit status 0 when it is
within ``--tolerance`` (5%) and descriptors and threads did not grow.

    python benchmarks/memory.py --frames 50000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.soak import proc_sample  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=50_000)
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between samples (5)")
    parser.add_argument("--warmup", type=float, default=0.1, help="share of the run treated as warm-up (0.1)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="allowed RSS change after warm-up (0.05)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "edge-fer.yaml"
        config.write_text(
            "cameras:\n  - source: demo\n    realtime: false\n"
            "events:\n  mode: every_frame\noutput:\n  stdout: on\nstats:\n  interval: 30\n"
        )
        events = (Path(tmp) / "events.jsonl").open("w")
        cmd = [sys.executable, "-m", "edge_fer", "--config", str(config), "--max-frames", str(args.frames)]
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=events, stderr=subprocess.DEVNULL)
        samples: list[tuple[float, float, int, int]] = []
        while proc.poll() is None:
            time.sleep(args.sample_every)
            try:
                rss, fds, threads = proc_sample(proc.pid)
            except (OSError, KeyError):
                break
            samples.append((time.monotonic() - t0, rss, fds, threads))
        proc.wait()
        events.close()
        lines = sum(1 for _ in (Path(tmp) / "events.jsonl").open())
    elapsed = time.monotonic() - t0
    if proc.returncode != 0 or len(samples) < 3:
        print(f"edge-fer exited {proc.returncode} after {elapsed:.0f} s with {len(samples)} samples", file=sys.stderr)
        return 1
    print(f"{args.frames} frames in {elapsed:.0f} s ({args.frames / elapsed:.0f} fps), {lines} events")
    print(f"{'t (s)':>7} {'RSS MB':>8} {'fds':>5} {'threads':>8}")
    for t, rss, fds, threads in samples:
        print(f"{t:7.0f} {rss:8.1f} {fds:5d} {threads:8d}")
    start = samples[min(len(samples) - 1, max(1, int(len(samples) * args.warmup)))]
    end = samples[-1]
    change = (end[1] - start[1]) / start[1]
    ok = abs(change) <= args.tolerance and end[2] <= start[2] and end[3] <= start[3]
    print(
        f"RSS {start[1]:.1f} MB at {start[0]:.0f} s -> {end[1]:.1f} MB at the end ({change:+.1%}); "
        f"fds {start[2]} -> {end[2]}, threads {start[3]} -> {end[3]}: {'flat' if ok else 'NOT flat'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

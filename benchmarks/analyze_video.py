"""How fast ``edge-fer analyze VIDEO`` goes against real time, and whether its memory stays flat on a long file.

Loops VIDEO (the Hamilton clip, say) into one file of ``--minutes`` minutes (MPEG-4 part 2, written with
OpenCV into a temporary folder), runs ``edge-fer analyze`` on it as a child process, and every
``--sample-every`` seconds reads the child's RSS from ``/proc`` and how many frames its table holds. Prints
the processing rate, the speed against real time, and the RSS change from the end of ``--warmup-minutes``
of video to the end; exit status 0 when that change is within ``--tolerance`` (5%).

    python benchmarks/analyze_video.py ../shared/videos/short_hamilton_clip.mp4 --minutes 10
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


def loop_video(source: Path, target: Path, minutes: float) -> tuple[int, float]:
    """``source`` repeated until ``minutes`` of video; returns (frames, fps)."""
    import cv2

    cap = cv2.VideoCapture(str(source))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    if not frames:
        raise SystemExit(f"{source}: no frames")
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    total = round(minutes * 60 * fps)
    for i in range(total):
        writer.write(frames[i % len(frames)])  # a clip played forwards again from its start at each loop
    writer.release()
    return total, fps


class LineCounter:
    """Lines in a file that is still being written, reading only what was added since the last call."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.lines = path, 0, 0

    def count(self) -> int:
        if self.path.exists():
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
            self.offset += len(chunk)
            self.lines += chunk.count(b"\n")
        return self.lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the looped file (10)")
    parser.add_argument("--warmup-minutes", type=float, default=2.0, help="video minutes before the RSS base (2)")
    parser.add_argument("--sample-every", type=float, default=2.0)
    parser.add_argument("--tolerance", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        looped = Path(tmp) / "looped.mp4"
        total, fps = loop_video(args.video, looped, args.minutes)
        print(f"input: {args.video} looped to {args.minutes:g} min ({total} frames at {fps:.3g} fps)", flush=True)
        out = Path(tmp) / "out"
        started = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-m", "edge_fer", "analyze", "--out", str(out), "--table", "jsonl", str(looped)],
            stdout=subprocess.PIPE,
            text=True,
        )
        rows = LineCounter(out / "looped.frames.jsonl")
        samples: list[tuple[float, int, float]] = []  # wall seconds, table rows, RSS MB
        while child.poll() is None:
            time.sleep(args.sample_every)
            try:
                rss, _, _ = proc_sample(child.pid)
            except (FileNotFoundError, ProcessLookupError, KeyError):
                break
            samples.append((time.monotonic() - started, rows.count(), rss))
        output, _ = child.communicate()
        elapsed = time.monotonic() - started
    print(output.strip())
    rows_per_frame = max(samples[-1][1], 1) / total if samples else 1.0
    warm_rows = args.warmup_minutes * 60 * fps * rows_per_frame
    after = [s for s in samples if s[1] >= warm_rows]
    print(f"child ran {elapsed:.1f} s for {args.minutes * 60:.0f} s of video: {total / elapsed:.1f} fps overall, "
          f"{args.minutes * 60 / elapsed:.2f}x real time (model loading included)")  # fmt: skip
    if len(after) < 2:
        print("too few samples after the warm-up to judge memory")
        return 1
    base, end = after[0][2], after[-1][2]
    change = (end - base) / base
    print(f"RSS {base:.1f} MB after {args.warmup_minutes:g} min of video, {end:.1f} MB at the end ({change:+.1%}), "
          f"peak {max(s[2] for s in samples):.1f} MB")  # fmt: skip
    return 0 if child.returncode == 0 and change <= args.tolerance else 1


if __name__ == "__main__":
    raise SystemExit(main())

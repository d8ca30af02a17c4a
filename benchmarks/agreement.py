"""Do the daemon's `every_frame` events agree with `edge-fer analyze` on the same frames?

Runs the real daemon (``edge-fer run``, events.mode every_frame, the file read as fast as possible) on a
clip, then analyses every frame of the same clip with the analyzer ``edge-fer analyze`` uses, and matches
each event's face to an analyzed face on the same frame (IoU >= 0.5). Prints the share of matched faces
whose emotion agrees (the daemon's gated detection crops from region scans between full scans, so its boxes
can differ slightly from a full scan's), and the share of events that found a partner at all.

    python benchmarks/agreement.py --video ../shared/videos/short_hamilton_clip.mp4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.clips import DEFAULT_VIDEO  # noqa: E402


def daemon_events(video: Path, min_face: float) -> list[dict]:
    config = (
        f"cameras:\n  - name: clip\n    source: {video}\n    realtime: false\n"
        f"events:\n  mode: every_frame\ndetector:\n  min_face_size: {min_face}\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        fh.write(config)
    proc = subprocess.run(
        [sys.executable, "-m", "edge_fer", "--config", fh.name, "--log-level", "warning"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1800,
    )
    Path(fh.name).unlink()
    if proc.returncode != 0:
        raise SystemExit(f"edge-fer failed: {proc.stderr.strip()[-400:]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--min-face", type=float, default=40.0)
    args = parser.parse_args()
    if not args.video.is_file():
        raise SystemExit(f"{args.video}: no such video; pass --video")

    import cv2

    from edge_fer.config.loading import parse_config
    from edge_fer.vision.analyzer import FaceAnalyzer
    from edge_fer.vision.types import Box

    events = daemon_events(args.video, args.min_face)
    by_frame: dict[int, list[dict]] = {}
    for event in events:
        by_frame.setdefault(event["frame"], []).append(event)
    config = parse_config({"detector": {"min_face_size": args.min_face, "roi_detection": False}})
    analyzer = FaceAnalyzer.from_settings(config.detector, config.classifier)
    cap = cv2.VideoCapture(str(args.video))
    index = matched = agree = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        faces = analyzer.analyze(frame).faces
        for event in by_frame.get(index, []):
            box = Box(*event["box"])
            best = max(faces, key=lambda f: f.box.iou(box), default=None)
            if best is not None and best.box.iou(box) >= 0.5:
                matched += 1
                agree += best.emotion.label == event["emotion"]
        index += 1
    cap.release()
    print(
        f"{args.video.name}: {index} frames, {len(events)} face events, {matched} matched to analyze "
        f"({matched / max(1, len(events)):.3f}), emotion agreement {agree / max(1, matched):.4f} ({agree}/{matched})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

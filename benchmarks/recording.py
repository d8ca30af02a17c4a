"""Recording cost, MJPEG against H.264, in one run on the same frames: bytes per second of video, MB per hour,
hours the default 1 GB cap keeps, and CPU milliseconds per frame (process time, so other load on the machine
inflates it less than wall time would).

Frames: the demo source with its face box drawn (as the recorder gets them), or ``--video`` (a real clip,
resized to the size asked for, played forwards and backwards so it does not jump). Each codec writes the same
frames through :class:`edge_fer.outputs.video.VideoSink` into a temporary folder.

    python benchmarks/recording.py --seconds 20
    python benchmarks/recording.py --video ../shared/videos/short_hamilton_clip.mp4
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_fer.capture.frame import Frame  # noqa: E402
from edge_fer.config.settings import MB, VideoSettings  # noqa: E402
from edge_fer.outputs.video import VideoSink  # noqa: E402
from edge_fer.outputs.video_encoders import h264_available  # noqa: E402


def demo_frames(n: int, size: tuple[int, int], fps: float) -> list:
    import cv2

    from edge_fer.capture.demo import DemoSource

    source = DemoSource(width=size[0], height=size[1], fps=fps, realtime=False)
    source.open()
    out = []
    for i in range(n):
        image = source.read().copy()
        for box in source.face_boxes(i):
            x, y, w, h = (int(v) for v in box)
            cv2.rectangle(image, (x, y), (x + w, y + h), (0, 210, 255), 2)
            cv2.putText(image, "#1 happy 97%", (x, y - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 210, 255), 1)
        out.append(image)
    return out


def clip_frames(path: Path, n: int, size: tuple[int, int]) -> list:
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while (got := cap.read())[0]:
        frames.append(cv2.resize(got[1], size, interpolation=cv2.INTER_AREA))
    cap.release()
    if not frames:
        raise SystemExit(f"{path}: no frames")
    cycle = frames + frames[-2:0:-1]
    return [cycle[i % len(cycle)] for i in range(n)]


def measure(codec: str, images: list, fps: float) -> tuple[float, float]:
    """(bytes per second of video, CPU ms per frame)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = VideoSettings(path=Path(tmp), codec=codec, segment_seconds=None, max_total_mb=None)
        sink = VideoSink(settings, fps)
        t_wall = time.time()
        cpu0 = time.process_time()
        for i, image in enumerate(images):
            sink.on_frame(Frame("cam0", i, i / fps, t_wall + i / fps, image), image)
        sink.close()
        cpu = time.process_time() - cpu0
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
    return size / (len(images) / fps), cpu * 1000 / len(images)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of video per codec (20)")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--video", type=Path, help="a real clip instead of the demo")
    args = parser.parse_args()
    size, n = (args.width, args.height), round(args.seconds * args.fps)
    images = clip_frames(args.video, n, size) if args.video else demo_frames(n, size, args.fps)
    codecs = ["mjpeg"] + (["h264"] if h264_available() else [])
    print(f"frames: {n} at {size[0]}x{size[1]}, {args.fps:g} fps, from {args.video or 'the demo'}")
    print(f"{'codec':<6} {'bytes/s':>10} {'MB/hour':>9} {'hours in 1 GB':>14} {'CPU ms/frame':>13}")
    results = {}
    for codec in codecs:
        rate, ms = results[codec] = measure(codec, images, args.fps)
        print(f"{codec:<6} {rate:>10.0f} {rate * 3600 / MB:>9.1f} {1024 * MB / rate / 3600:>14.1f} {ms:>13.2f}")
    if "h264" in results:
        (m_rate, m_ms), (h_rate, h_ms) = results["mjpeg"], results["h264"]
        print(f"h264 vs mjpeg: {m_rate / h_rate:.1f}x smaller, {h_ms / m_ms:.2f}x the CPU per frame")
    else:
        print("h264: not measured (pip install -e '.[video]')")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What browser viewers cost the pipeline: processed fps with 0, 1 and 5 MJPEG viewers, as a ratio to 0.

A producer stands in for the inference worker: on the same frames it runs the real MTCNN detector and
emotion classifier (``edge_fer.vision.analyzer``) when they are installed, else a fixed CPU workload,
annotates only while someone watches, and offers every frame to a real PreviewServer. Viewers are plain
socket clients reading the stream as fast as it comes. Conditions are interleaved over several rounds, in a
rotating order, and each round's fps is divided by the same round's no-viewer fps, so that load from other
processes on a shared machine biases all conditions alike.

    python benchmarks/http_viewers.py                       # 10 rounds of 3 s per condition
    python benchmarks/http_viewers.py --rounds 20 --seconds 5 --workload cpu

Target: with 5 viewers the processed fps stays within 10% of no viewer (ratio >= 0.90).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_fer.outputs.web import HttpSettings, PreviewServer

CAMERA = "cam0"
_SEPARATOR = b"\r\n--edgeferframe\r\n"


def thread_cpu_s(prefix: str) -> float | None:
    """CPU seconds used so far by this process's live threads whose name starts with ``prefix`` (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for thread in threading.enumerate():
        if not thread.name.startswith(prefix) or thread.native_id is None:
            continue
        try:
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def make_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """The shipped astronaut portrait sliding across a gray canvas: real faces, every frame different."""
    import cv2

    photo = cv2.imread(str(Path(__file__).resolve().parents[1] / "edge_fer" / "assets" / "astronaut.jpg"))
    side = min(height, width) * 3 // 4
    photo = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(count):
        canvas = np.full((height, width, 3), 96, np.uint8)
        x = int((width - side) * (0.5 + 0.5 * np.sin(2 * np.pi * i / count)))
        y = (height - side) // 2
        canvas[y : y + side, x : x + side] = photo
        frames.append(canvas)
    return frames


def analyzer_workload() -> tuple[str, Callable[[np.ndarray], list], Callable[[np.ndarray, list], np.ndarray]]:
    from edge_fer.config.settings import ClassifierSection, DetectorSettings
    from edge_fer.outputs.annotate import annotate_faces
    from edge_fer.vision.analyzer import FaceAnalyzer

    analyzer = FaceAnalyzer.from_settings(DetectorSettings(), ClassifierSection())
    return (
        "MTCNN + emotion classifier (edge_fer.vision.analyzer)",
        lambda image: list(analyzer.analyze(image).faces),
        annotate_faces,
    )


def cpu_workload(frames: list[np.ndarray], target_ms: float = 50.0) -> tuple[str, Callable, Callable]:
    """A fixed per-frame cost of about ``target_ms``: repeated blurs, calibrated once."""
    import cv2

    def blur(frame: np.ndarray, repeats: int) -> list:
        for _ in range(repeats):
            frame = cv2.GaussianBlur(frame, (9, 9), 0)
        return []

    start = time.perf_counter()
    blur(frames[0], 20)
    repeats = max(1, round(20 * target_ms / ((time.perf_counter() - start) * 1000)))

    def annotate(frame: np.ndarray, faces: list) -> np.ndarray:
        out = frame.copy()
        cv2.rectangle(out, (10, 10), (110, 110), (0, 255, 0), 2)
        return out

    return f"fixed CPU workload ({repeats} Gaussian blurs, ~{target_ms:.0f} ms)", lambda f: blur(f, repeats), annotate


class Viewer(threading.Thread):
    """A plain HTTP client that reads the MJPEG stream and counts the parts it gets."""

    def __init__(self, port: int) -> None:
        super().__init__(name="bench-viewer", daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(f"GET /stream/{CAMERA}.mjpg HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        self.parts = 0
        self.bytes = 0
        self._done = threading.Event()

    def run(self) -> None:
        tail = b""
        try:
            while not self._done.is_set():
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    return
                self.bytes += len(chunk)
                data = tail + chunk
                self.parts += data.count(_SEPARATOR)
                tail = data[-(len(_SEPARATOR) - 1) :]
        except OSError:
            return

    def close(self) -> None:
        self._done.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.join(5)


def run_condition(server: PreviewServer, work, annotate, frames, viewers: int, seconds: float) -> dict:
    clients = [Viewer(server.port) for _ in range(viewers)]
    for client in clients:
        client.start()

    def step(i: int) -> None:
        frame = frames[i % len(frames)]
        faces = work(frame)
        out = annotate(frame, faces) if server.watchers(CAMERA) else frame
        server.offer_frame(CAMERA, out, time.monotonic())

    i = 0
    warm_until = time.monotonic() + 0.5
    while time.monotonic() < warm_until or (clients and min(c.parts for c in clients) == 0):
        step(i)
        i += 1
        if time.monotonic() > warm_until + 10:
            raise RuntimeError("viewers got no frame within 10 s")
    feed = server.hub.get(CAMERA)
    encoded0 = feed.encoded if feed else 0
    parts0 = [c.parts for c in clients]
    server_cpu0 = thread_cpu_s("http-")
    start, cpu_start, processed = time.monotonic(), time.thread_time(), 0
    while time.monotonic() - start < seconds:
        step(i)
        i += 1
        processed += 1
    elapsed = time.monotonic() - start
    cpu_per_frame = (time.thread_time() - cpu_start) / processed
    server_cpu1 = thread_cpu_s("http-")
    server_cores = float("nan")
    if server_cpu0 is not None and server_cpu1 is not None:
        server_cores = (server_cpu1 - server_cpu0) / elapsed
    encoded = (feed.encoded if feed else 0) - encoded0
    received = [c.parts - p for c, p in zip(clients, parts0)]
    for client in clients:
        client.close()
    deadline = time.monotonic() + 5
    while server.watchers(CAMERA) and time.monotonic() < deadline:
        step(i)
        i += 1
    return {
        "fps": processed / elapsed,
        # The producer's own CPU per frame: less sensitive than fps to other processes on a shared machine.
        "cpu_ms_per_frame": cpu_per_frame * 1000,
        "encodes_per_s": encoded / elapsed,
        "viewer_fps": statistics.mean(received) / elapsed if received else 0.0,
        # Encoder and connection threads: what watching costs the daemon's process, in cores.
        "server_cores": server_cores,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", default="0,1,5", help="comma-separated viewer counts; the first is the reference")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per condition and round")
    parser.add_argument("--workload", choices=("auto", "analyzer", "cpu"), default="auto")
    parser.add_argument("--size", default="640x480", help="frame size WxH")
    parser.add_argument("--max-fps", type=float, default=10.0, help="http.max_fps")
    parser.add_argument("--jpeg-quality", type=int, default=75)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    counts = [int(v) for v in args.viewers.split(",")]
    width, height = (int(v) for v in args.size.lower().split("x"))
    frames = make_frames(48, width, height)
    workload = None
    if args.workload in ("auto", "analyzer"):
        try:
            workload = analyzer_workload()
        except ImportError as exc:
            if args.workload == "analyzer":
                print(f"the analyzer is not available: {exc}", file=sys.stderr)
                return 2
    name, work, annotate = workload or cpu_workload(frames)

    settings = HttpSettings(
        enabled=True, port=0, max_fps=args.max_fps, jpeg_quality=args.jpeg_quality, max_clients=max(counts) + 1
    )
    server = PreviewServer(settings, dict, lambda: (True, {}), cameras=(CAMERA,))
    server.start()
    print(f"workload: {name}; frames {width}x{height}; max_fps {args.max_fps}; jpeg quality {args.jpeg_quality}")
    print(f"{args.rounds} rounds x {len(counts)} conditions x {args.seconds:.0f} s, order rotating each round")
    results: dict[int, list[dict]] = {n: [] for n in counts}
    try:
        for work_round in range(args.rounds):
            order = counts[work_round % len(counts) :] + counts[: work_round % len(counts)]
            for n in order:
                result = run_condition(server, work, annotate, frames, n, args.seconds)
                results[n].append(result)
                print(f"  round {work_round + 1}: {n} viewers: {result['fps']:.2f} fps", flush=True)
    finally:
        server.stop(5.0)

    reference = counts[0]
    head = f"{'viewers':>7} {'fps median':>10} {'ratio to ' + str(reference):>11} {'quartiles':>20}"
    print(f"\n{head} {'CPU ms/frame':>12} {'viewer fps':>10} {'encodes/s':>9} {'server CPU':>10}")
    verdict = 0
    for n in counts:
        fps = [r["fps"] for r in results[n]]
        ratios = [r["fps"] / ref["fps"] for r, ref in zip(results[n], results[reference])]
        ratio = statistics.median(ratios)
        viewer_fps = statistics.median(r["viewer_fps"] for r in results[n])
        encodes = statistics.median(r["encodes_per_s"] for r in results[n])
        cores = statistics.median(r["server_cores"] for r in results[n])
        cpu_ms = statistics.median(r["cpu_ms_per_frame"] for r in results[n])
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratio, ratio, ratio]
        spread = f"{quartiles[0]:.2f}..{quartiles[2]:.2f}"
        print(
            f"{n:>7} {statistics.median(fps):>10.2f} {ratio:>11.3f} {spread:>20} {cpu_ms:>12.1f}"
            f" {viewer_fps:>10.2f} {encodes:>9.2f} {cores * 100:>9.1f}%"
        )
        if n >= 5 and ratio < 0.90:
            verdict = 1
    print("\ntarget: 5 viewers keep >= 0.90 of the no-viewer fps:", "met" if verdict == 0 else "NOT met")
    return verdict


if __name__ == "__main__":
    raise SystemExit(main())

"""The report's pipeline against edge-fer, in one process, on the same frames.

Three ways to get emotions for every face of every frame:

1. the report's pipeline as it was: the ``mtcnn`` package, then Keras ``model.predict`` per face on the
   report's 152x152 RGB architecture (``export.architectures.build_seed``; its weights don't change its
   speed, so it is not trained here);
2. the ``mtcnn`` package with edge-fer's classifier (all faces of a frame in one ONNX batch);
3. edge-fer: ONNX MTCNN, alignment and the classifier (``FaceAnalyzer``), a full scan on every frame;
4. edge-fer as the daemon runs it by default: the same, with gated detection (a full scan every 0.5 s of
   the clip's time, regions around known faces and motion in between; ``edge_fer.vision.gated``).

Each runs over the same frames (640x480 demo frames with one face by default, or ``--video``), after a
warm-up; conditions are interleaved frame by frame so load from other processes falls on all alike.
Then the daemon itself is measured: throughput on an unpaced source and capture-to-event latency on a
source paced at 30 fps (``edge-fer bench``). Needs the export extra (TensorFlow, mtcnn).

    python benchmarks/compare_pipelines.py --frames 60
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.clips import read_video  # noqa: E402

DEMO_STEP = 3  # demo frames are taken every 3rd frame of its 30 fps timeline


def demo_frames(count: int, width: int, height: int, faces: int) -> list[np.ndarray]:
    from edge_fer.capture import DemoSource

    source = DemoSource(width=width, height=height, faces=faces, realtime=False)
    return [source.render(i * DEMO_STEP) for i in range(count)]


class ReportPipeline:
    """mtcnn package + Keras predict per face at 152x152 RGB, as the report's Streamlit app did."""

    def __init__(self) -> None:
        from mtcnn import MTCNN

        from export.architectures import build_seed

        self.detector = MTCNN()
        self.model = build_seed()

    def detect(self, rgb: np.ndarray) -> list[dict]:
        # The package's defaults, as the report ran it (min face 20). Larger min faces break mtcnn 1.0.0 on
        # 640x480 frames: its pyramid then includes scales below P-Net's 12 px input, TensorFlow raises,
        # and the package reports "no faces".
        return self.detector.detect_faces(rgb, threshold_pnet=0.6, threshold_rnet=0.7, threshold_onet=0.7)

    def __call__(self, bgr: np.ndarray) -> int:
        import cv2

        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        faces = self.detect(rgb)
        for face in faces:
            x, y, w, h = (max(0, int(v)) for v in face["box"])
            crop = cv2.resize(rgb[y : y + h, x : x + w], (152, 152)).astype(np.float32) / 255.0
            self.model.predict(crop[None], verbose=0)
        return len(faces)


class MtcnnWithOurClassifier:
    def __init__(self, report: ReportPipeline, classifier) -> None:
        self.report, self.classifier = report, classifier

    def __call__(self, bgr: np.ndarray) -> int:
        import cv2

        faces = self.report.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        crops = []
        for face in faces:
            x, y, w, h = (max(0, int(v)) for v in face["box"])
            crops.append(bgr[y : y + h, x : x + w])
        if crops:
            self.classifier.classify(crops)
        return len(faces)


def daemon_bench(frames: int, paced: bool, source: str) -> dict:
    args = [sys.executable, "-m", "edge_fer", "bench", "--json", "--frames", str(frames), "--source", source]
    if paced:
        args.append("--paced")
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"edge-fer bench failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60, help="frames per pipeline (default 60)")
    parser.add_argument("--video", type=Path, help="take frames from this video instead of the demo source")
    parser.add_argument("--size", default="640x480", help="frame size WxH (default 640x480)")
    parser.add_argument("--faces", type=int, default=1, help="faces in demo frames (default 1)")
    parser.add_argument("--min-face", type=float, help="edge-fer's min face size (default: the config's default)")
    parser.add_argument("--daemon-frames", type=int, default=300, help="frames for the daemon runs (0: skip)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    width, height = (int(v) for v in args.size.lower().split("x"))

    from edge_fer.config.loading import parse_config
    from edge_fer.config.settings import DetectorSettings

    default_min_face = DetectorSettings().min_face_size
    if args.min_face is None:
        args.min_face = default_min_face
    is_default = " (default)" if args.min_face == default_min_face else ""
    from edge_fer.vision.analyzer import FaceAnalyzer

    def build_analyzer(config):
        return FaceAnalyzer.from_settings(config.detector, config.classifier)

    frames = (
        read_video(args.video, args.frames, (width, height))[0]
        if args.video
        else demo_frames(args.frames, width, height, args.faces)
    )
    analyzer = build_analyzer(parse_config({"detector": {"min_face_size": args.min_face}}))
    analyzer20 = build_analyzer(parse_config({"detector": {"min_face_size": 20}}))
    report = ReportPipeline()
    from edge_fer.vision.gated import FaceGate

    gate = FaceGate(analyzer.detector, DetectorSettings(full_scan_interval=0.5))
    frame_seconds = (DEMO_STEP if not args.video else 1) / 30.0
    clock = iter(range(10**9))

    def gated(bgr: np.ndarray) -> int:
        t = next(clock) * frame_seconds
        return len(analyzer.analyze(bgr, detect=lambda image: gate.detect(image, t)).faces)

    pipelines = {
        "report (mtcnn + Keras per face), min face 20": report,
        "mtcnn + edge-fer classifier, min face 20": MtcnnWithOurClassifier(report, analyzer.classifier),
        "edge-fer, min face 20": lambda bgr: len(analyzer20.analyze(bgr).faces),
        f"edge-fer, min face {args.min_face:g}{is_default}": lambda bgr: len(analyzer.analyze(bgr).faces),
        f"edge-fer gated, min face {args.min_face:g} (daemon)": gated,
    }
    for run in pipelines.values():  # warm-up: graph tracing, allocations, caches
        for frame in frames[:3]:
            if run is not gated:  # the gated detector must see the clip in order, from its start
                run(frame)
    times: dict[str, list[float]] = {name: [] for name in pipelines}
    faces: dict[str, int] = dict.fromkeys(pipelines, 0)
    names = list(pipelines)
    for i, frame in enumerate(frames):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            t0 = time.perf_counter()
            faces[name] += pipelines[name](frame)
            times[name].append(time.perf_counter() - t0)

    cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True)
    print(
        f"machine: {os.cpu_count()} cores, {cpu.stdout.strip() or 'unknown CPU'}; frames: {len(frames)} at {args.size}"
    )
    base = float(np.mean(times[names[0]]))
    rows = []
    print(f"{'pipeline':<48} {'ms/frame p50':>12} {'mean':>8} {'fps':>7} {'faces/frame':>11} {'speed-up':>9}")
    for name in names:
        t = np.array(times[name]) * 1000
        mean = float(t.mean())
        rows.append(
            {
                "pipeline": name,
                "ms_p50": float(np.median(t)),
                "ms_mean": mean,
                "fps": 1000 / mean,
                "faces_per_frame": faces[name] / len(frames),
                "speedup_vs_report": base * 1000 / mean,
            }
        )
        print(
            f"{name:<48} {np.median(t):>12.1f} {mean:>8.1f} {1000 / mean:>7.1f} "
            f"{faces[name] / len(frames):>11.2f} {base * 1000 / mean:>8.1f}x"
        )
    mixed = rows[1]["ms_mean"]
    print(
        f"edge-fer vs mtcnn + edge-fer classifier: {mixed / rows[2]['ms_mean']:.1f}x at the same min face (20), "
        f"{mixed / rows[3]['ms_mean']:.1f}x at min face {args.min_face:g}, {mixed / rows[4]['ms_mean']:.1f}x gated"
    )
    print(
        f"edge-fer vs the report's pipeline: {rows[2]['speedup_vs_report']:.1f}x at min face 20 (full scans), "
        f"{rows[3]['speedup_vs_report']:.1f}x at min face {args.min_face:g} (full scans), "
        f"{rows[4]['speedup_vs_report']:.1f}x as the daemon runs (gated, full scan every 0.5 s: "
        f"{gate.full_scans} full and {gate.region_scans} region scans)"
    )
    result = {"frames": len(frames), "size": args.size, "pipelines": rows}
    if args.daemon_frames:
        source = f"demo:{args.faces}" if args.faces != 1 else "demo"
        unpaced = daemon_bench(args.daemon_frames, False, source)
        paced = daemon_bench(args.daemon_frames, True, source)
        print(
            f"daemon, unpaced demo: {unpaced['processed_fps']:.1f} processed fps "
            f"({unpaced['processed_fps'] / rows[0]['fps']:.1f}x the report's pipeline), detection p50 "
            f"{unpaced['detect_ms_p50']:.1f} ms, peak RSS {unpaced['peak_rss_mb']:.0f} MB, "
            f"first event after {unpaced['start_to_first_event_s']:.2f} s"
        )
        print(
            f"daemon, demo paced at 30 fps: latency p50 {paced['latency_ms_p50']:.1f} ms, "
            f"p95 {paced['latency_ms_p95']:.1f} ms, dropped {paced['dropped']}"
        )
        result["daemon"] = {"unpaced": unpaced, "paced_30fps": paced}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

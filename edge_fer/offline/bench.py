"""``edge-fer bench``: the real pipeline (capture, detection, classification, tracking, events to a
null output) on a chosen source, measured from the inside: it reads the pipeline's own meters and the
analyzer's timings, and wraps or patches nothing.

Throughput is measured on an unpaced source (frames as fast as inference takes them, none dropped);
latency means something only on a paced source (``--paced``: the source's own fps, like a camera).
With gated detection on (``detector.roi_detection``, the default) most frames get a region scan; the
detection time of full scans is reported on its own line, so that neither hides the other.

CPU is the process's CPU time over the run (every thread: capture, inference, helper, outputs), per
processed frame and as a share of one core; on a paced source the share is what the daemon costs on that
camera. ``idle`` replaces the demo's moving portrait with a still scene without a face, the cost of a
camera watching an empty room.
"""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np

from edge_fer.capture.demo import DemoSource
from edge_fer.config.settings import CameraConfig, Config
from edge_fer.outputs.base import Output
from edge_fer.outputs.runner import OutputRunner


class NullSink(Output):
    """Counts events and notes when the first one arrived; writes nothing."""

    name = "null"

    def __init__(self) -> None:
        self.count = 0
        self.first_mono: float | None = None

    def on_event(self, event) -> None:
        if self.first_mono is None:
            self.first_mono = time.monotonic()
        self.count += 1


def process_age() -> float | None:
    """Seconds since this process started (Linux), so start-up cost includes interpreter and imports."""
    try:
        with open("/proc/self/stat") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def peak_rss_mb() -> float:
    """Peak resident memory of this process. VmHWM rather than ru_maxrss: the latter survives exec,
    so a process started from a big one (TensorFlow in a benchmark) would report its parent's peak."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass(frozen=True)
class BenchResult:
    source: str
    width: int
    height: int
    paced: bool
    frames: int
    seconds: float
    processed_fps: float
    faces_per_frame: float
    detect_ms_p50: float | None
    detect_ms_p95: float | None
    full_scans: int
    full_scan_ms_p50: float | None
    region_scans: int
    region_scan_ms_p50: float | None
    classify_ms_per_face: float | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    dropped: int
    events: int
    start_to_first_event_s: float | None
    peak_rss_mb: float
    threads_peak: int
    cpu_ms_per_frame: float | None = None
    cpu_cores: float | None = None  # CPU seconds per second of the run: 0.35 is 35% of one core
    idle: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        def f(v, unit=""):
            return "-" if v is None else f"{v:.2f}{unit}"

        rows = [
            ("source", f"{self.source} ({self.width}x{self.height}, {'paced' if self.paced else 'unpaced'})"),
            ("scene", "still, no face (--idle)" if self.idle else "as the source draws it"),
            ("frames processed", str(self.frames)),
            ("processed fps", f(self.processed_fps)),
            ("faces per frame", f(self.faces_per_frame)),
            ("detection ms p50 / p95", f"{f(self.detect_ms_p50)} / {f(self.detect_ms_p95)}"),
            ("full scans: count, ms p50", f"{self.full_scans}, {f(self.full_scan_ms_p50)}"),
            ("region scans: count, ms p50", f"{self.region_scans}, {f(self.region_scan_ms_p50)}"),
            ("classification ms per face", f(self.classify_ms_per_face)),
            ("latency ms p50 / p95", f"{f(self.latency_ms_p50)} / {f(self.latency_ms_p95)}"),
            ("frames dropped", str(self.dropped)),
            ("events", str(self.events)),
            ("start to first event", f(self.start_to_first_event_s, " s")),
            ("CPU ms per frame", f(self.cpu_ms_per_frame)),
            ("CPU, share of one core", "-" if self.cpu_cores is None else f"{100 * self.cpu_cores:.0f}%"),
            ("peak RSS", f"{self.peak_rss_mb:.0f} MB"),
            ("threads (peak)", str(self.threads_peak)),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def still_scene(width: int, height: int) -> np.ndarray:
    """An empty room: a wall lit from above with a darker floor and a door frame, no face."""
    rows = np.linspace(150, 90, height, dtype=np.float32)[:, None, None]
    scene = np.broadcast_to(rows * np.array([1.0, 0.95, 0.85], np.float32), (height, width, 3)).astype(np.uint8)
    scene[int(height * 0.75) :] = (60, 70, 80)
    left, right, top = int(width * 0.6), int(width * 0.75), int(height * 0.2)
    scene[top : int(height * 0.75), left:right] = (45, 55, 70)
    return scene


class StillDemo(DemoSource):
    """The demo camera filming :func:`still_scene`: a new copy per frame, as a camera delivers new buffers."""

    def render(self, index: int) -> np.ndarray:
        if getattr(self, "_still", None) is None:
            self._still = still_scene(self.width, self.height)
        return self._still.copy()

    def describe(self) -> str:
        return "still scene, " + super().describe()


def idle_sources(cam: CameraConfig) -> StillDemo:
    """The camera's demo source as a :class:`StillDemo`: the same size and pace, no face."""
    from edge_fer.runtime.pipeline import source_from_config

    demo = source_from_config(cam)
    if not isinstance(demo, DemoSource):
        raise ValueError("--idle needs the demo source: it draws the empty scene at the demo's size and fps")
    return StillDemo(width=demo.width, height=demo.height, fps=demo.fps, realtime=demo.realtime)


def run_bench(config: Config, frames: int, paced: bool, analyzer=None, idle: bool = False) -> BenchResult:
    """Measure ``frames`` frames of the config's first camera. ``analyzer``: one built by the caller
    (a benchmark's variant); by default the config's, built here so that start-up cost is measured.
    ``idle``: the demo source shows :func:`still_scene` (ValueError for another source)."""
    from edge_fer.runtime.pipeline import Pipeline, source_from_config
    from edge_fer.vision.analyzer import FaceAnalyzer

    age_at_entry = process_age()
    entry = time.monotonic()
    if analyzer is None:
        analyzer = FaceAnalyzer.from_settings(config.detector, config.classifier)
    sink = NullSink()
    runner = OutputRunner([sink])
    stop = threading.Event()
    sources = idle_sources if idle else source_from_config
    pipeline = Pipeline(config, analyzer, runner, stop, run_id="bench0000000", max_frames=frames, sources=sources)
    peak_threads = [threading.active_count()]

    def sample_threads() -> None:
        while not stop.wait(0.05):
            peak_threads[0] = max(peak_threads[0], threading.active_count())

    sampler = threading.Thread(target=sample_threads, name="bench-threads", daemon=True)
    sampler.start()
    cam = pipeline.cameras[0]
    t0, cpu0 = time.monotonic(), time.process_time()
    pipeline.run()
    elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
    stop.set()
    sampler.join(1)
    stats = cam.capture.stats()
    m = cam.meters
    first = None
    if sink.first_mono is not None and age_at_entry is not None:
        first = age_at_entry + (sink.first_mono - entry)
    height, width = _frame_size(cam)
    gate = cam.gate
    full_ms = list(gate.full_ms) if gate is not None else None
    region_ms = list(gate.region_ms) if gate is not None else []
    return BenchResult(
        source=cam.capture.source.describe(),
        width=width,
        height=height,
        paced=paced,
        frames=stats.processed,
        seconds=round(elapsed, 3),
        processed_fps=stats.processed / elapsed if elapsed > 0 else 0.0,
        faces_per_frame=m.faces_found / max(1, stats.processed),
        detect_ms_p50=m.detect_ms.percentile(50),
        detect_ms_p95=m.detect_ms.percentile(95),
        full_scans=gate.full_scans if gate is not None else stats.processed,
        full_scan_ms_p50=_median(full_ms) if full_ms is not None else m.detect_ms.percentile(50),
        region_scans=gate.region_scans if gate is not None else 0,
        region_scan_ms_p50=_median(region_ms),
        classify_ms_per_face=m.classify_ms_per_face.mean(),
        latency_ms_p50=m.latency_ms.percentile(50),
        latency_ms_p95=m.latency_ms.percentile(95),
        dropped=stats.dropped,
        events=sink.count,
        start_to_first_event_s=first,
        peak_rss_mb=peak_rss_mb(),
        threads_peak=peak_threads[0],
        cpu_ms_per_frame=cpu * 1000.0 / stats.processed if stats.processed else None,
        cpu_cores=cpu / elapsed if elapsed > 0 else None,
        idle=idle,
    )


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _frame_size(cam) -> tuple[int, int]:
    source = cam.capture.source
    w, h = getattr(source, "width", None), getattr(source, "height", None)
    return (int(h or 0), int(w or 0))

"""``edge-fer bench``: the real pipeline (capture, detection, classification, tracking, events to a
null output) on a chosen source, measured from the inside: it reads the pipeline's own meters and the
analyzer's timings, and wraps or patches nothing.

Throughput is measured on an unpaced source (frames as fast as inference takes them, none dropped);
latency means something only on a paced source (``--paced``: the source's own fps, like a camera).
With gated detection on (``detector.roi_detection``, the default) most frames get a region scan; the
detection time of full scans is reported on its own line, so that neither hides the other.
"""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
from dataclasses import asdict, dataclass

from edge_fer.config.settings import Config
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

    def as_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        def f(v, unit=""):
            return "-" if v is None else f"{v:.2f}{unit}"

        rows = [
            ("source", f"{self.source} ({self.width}x{self.height}, {'paced' if self.paced else 'unpaced'})"),
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
            ("peak RSS", f"{self.peak_rss_mb:.0f} MB"),
            ("threads (peak)", str(self.threads_peak)),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def run_bench(config: Config, frames: int, paced: bool, analyzer=None) -> BenchResult:
    """Measure ``frames`` frames of the config's first camera. ``analyzer``: one built by the caller
    (a benchmark's variant); by default the config's, built here so that start-up cost is measured."""
    from edge_fer.runtime.pipeline import Pipeline
    from edge_fer.vision.analyzer import FaceAnalyzer

    age_at_entry = process_age()
    entry = time.monotonic()
    if analyzer is None:
        analyzer = FaceAnalyzer.from_settings(config.detector, config.classifier)
    sink = NullSink()
    runner = OutputRunner([sink])
    stop = threading.Event()
    pipeline = Pipeline(config, analyzer, runner, stop, run_id="bench0000000", max_frames=frames)
    peak_threads = [threading.active_count()]

    def sample_threads() -> None:
        while not stop.wait(0.05):
            peak_threads[0] = max(peak_threads[0], threading.active_count())

    sampler = threading.Thread(target=sample_threads, name="bench-threads", daemon=True)
    sampler.start()
    cam = pipeline.cameras[0]
    t0 = time.monotonic()
    pipeline.run()
    elapsed = time.monotonic() - t0
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
    )


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _frame_size(cam) -> tuple[int, int]:
    source = cam.capture.source
    w, h = getattr(source, "width", None), getattr(source, "height", None)
    return (int(h or 0), int(w or 0))

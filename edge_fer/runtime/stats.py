"""Counters and windows the inference worker keeps per camera, and the stats payload built from them.

Latency is measured from ``Frame.t_mono`` (capture) to the moment the frame's events were handed to
the outputs, for every processed frame (with or without faces), so it shows what a consumer waits.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

# Top-level sections the stats schema requires: null unless an output fills them (MQTT fills ``mqtt``).
REQUIRED_SECTIONS = ("mqtt",)
WINDOW = 600  # samples kept per window: ~20 s at 30 fps, enough for a stable p95


# Histogram bucket bounds in milliseconds: from a fast detection on a desktop to a slow board's frame.
MS_BUCKETS = (1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0)


@dataclass(frozen=True, slots=True)
class HistogramCounts:
    """Cumulative counts per upper bound (``bounds`` in ms), with the count and the sum of every observation."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    count: int
    total: float


class Histogram:
    """Every observation since start, counted into fixed buckets: what /metrics exposes as a Prometheus
    histogram (the window's percentiles only cover the last few hundred samples). The lock keeps a reader on
    another thread from seeing a count without its bucket."""

    def __init__(self, bounds: tuple[float, ...] = MS_BUCKETS) -> None:
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.bounds, value)
        with self._lock:
            self._counts[i] += 1
            self._sum += value

    def counts(self) -> HistogramCounts:
        with self._lock:
            counts, total = list(self._counts), self._sum
        return HistogramCounts(self.bounds, tuple(itertools.accumulate(counts)), sum(counts), total)


class Window:
    """The last ``size`` samples, for percentiles without unbounded memory; and every sample in a histogram."""

    def __init__(self, size: int = WINDOW) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self.histogram = Histogram()

    def add(self, value: float) -> None:
        self._values.append(value)
        self.histogram.observe(value)

    def __len__(self) -> int:
        return len(self._values)

    def percentile(self, q: float) -> float | None:
        if not self._values:
            return None
        return float(np.percentile(np.fromiter(self._values, dtype=np.float64), q))

    def mean(self) -> float | None:
        return float(np.mean(np.fromiter(self._values, dtype=np.float64))) if self._values else None


class RateMeter:
    """Events per second over the interval between two ``rate`` calls."""

    def __init__(self) -> None:
        self._count = 0
        self._last_count = 0
        self._last_t = time.monotonic()

    def tick(self, n: int = 1) -> None:
        self._count += n

    def rate(self, now: float | None = None, total: int | None = None) -> float:
        now = time.monotonic() if now is None else now
        count = self._count if total is None else total
        dt = now - self._last_t
        value = (count - self._last_count) / dt if dt > 0 else 0.0
        self._last_count, self._last_t = count, now
        return max(0.0, value)


RATE_WINDOW_S = 5.0  # both frame rates are measured over the same last few seconds


class FrameRates:
    """Captured and processed frames per second from the capture ledger, over one shared window.

    Both rates come from the same two samples of ``CaptureStats`` (``captured == processed + skipped + dropped
    + queued``), so over a window processed can exceed captured only by the backlog the window drained (a few
    queued frames, or the queue emptying after capture stopped). That excess is not a processing rate the
    camera can sustain, so ``fps_processed`` is capped at ``fps_capture``; the backlog shows in ``queued``.
    Reading does not reset anything, so the overlay and ``/stats.json`` may read as often as they like.
    """

    def __init__(self, window: float = RATE_WINDOW_S) -> None:
        self.window = window
        self._samples: deque[tuple[float, int, int]] = deque()

    def update(self, now: float, captured: int, processed: int) -> tuple[float, float]:
        """(fps_capture, fps_processed) with this sample included."""
        samples = self._samples
        samples.append((now, captured, processed))
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()  # keep one sample at least ``window`` old as the base
        t0, c0, p0 = samples[0]
        dt = now - t0
        if dt <= 0:
            return 0.0, 0.0
        fps_capture = max(0.0, (captured - c0) / dt)
        return fps_capture, min(fps_capture, max(0.0, (processed - p0) / dt))


@dataclass
class CameraMeters:
    """What the worker measures for one camera; touched only by the worker thread."""

    latency_ms: Window = field(default_factory=Window)
    detect_ms: Window = field(default_factory=Window)
    classify_ms_per_face: Window = field(default_factory=Window)
    processed: RateMeter = field(default_factory=RateMeter)  # ticked per processed frame (the total, for tests)
    rates: FrameRates = field(default_factory=FrameRates)
    faces_now: int = 0
    faces_found: int = 0  # faces the analyzer reported, over all processed frames
    frames_with_faces: int = 0
    last_processed_mono: float | None = None


def _r(value: float | None, ndigits: int = 2) -> float | None:
    return None if value is None else round(value, ndigits)


def camera_stats(meters: CameraMeters, capture, now: float, gate=None) -> dict:
    """One camera's entry in the stats payload (``capture`` is a CaptureStats snapshot, ``gate`` the
    camera's FaceGate when detection is gated)."""
    fps_capture, fps_processed = meters.rates.update(now, capture.captured, capture.processed)
    entry = {
        "state": capture.state,
        "captured": capture.captured,
        "processed": capture.processed,
        "skipped": capture.skipped,
        "dropped": capture.dropped,
        "queued": capture.queued,
        "errors": capture.errors,
        "reconnects": capture.reconnects,
        "fps_capture": round(fps_capture, 2),
        "fps_processed": round(fps_processed, 2),
        "latency_ms_p50": _r(meters.latency_ms.percentile(50)),
        "latency_ms_p95": _r(meters.latency_ms.percentile(95)),
        "detect_ms_p50": _r(meters.detect_ms.percentile(50)),
        "detect_ms_p95": _r(meters.detect_ms.percentile(95)),
        "classify_ms_per_face": _r(meters.classify_ms_per_face.mean()),
        "faces": meters.faces_now,
    }
    if gate is not None:
        entry["full_scans"] = gate.full_scans
        entry["region_scans"] = gate.region_scans
    return entry


def stats_line(payload: dict) -> str:
    """The one-line summary logged at each stats interval."""
    parts = []
    for name, cam in payload["cameras"].items():
        p95 = cam["latency_ms_p95"]
        parts.append(
            f"{name}: {cam['state']}, {cam['fps_processed']:.1f}/{cam['fps_capture']:.1f} fps processed/captured, "
            f"faces {cam['faces']}, latency p95 {'-' if p95 is None else f'{p95:.0f} ms'}, "
            f"dropped {cam['dropped']}, skipped {cam['skipped']}"
        )
    return "; ".join(parts)


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """One stats payload, read-only all the way down, so any thread may keep and read it while the worker
    builds the next. ``due``: the stats interval came round (the log line, STATUS= and the MQTT stats topic
    report this one); other snapshots only refresh what the browser preview and the overlay show."""

    data: Mapping[str, Any]
    due: bool = False

    @classmethod
    def of(cls, payload: Mapping[str, Any], *, due: bool = False) -> StatsSnapshot:
        return cls(_freeze(payload), due)

    def to_dict(self) -> dict[str, Any]:
        """A fresh, mutable copy of the payload (``edge_fer/schema/stats.schema.json``)."""
        return _thaw(self.data)

    def camera(self, name: str) -> Mapping[str, Any]:
        return self.data.get("cameras", {}).get(name, MappingProxyType({}))

"""What a sink is, and the runner that keeps every sink off the inference thread.

Each sink gets its own named thread and a bounded queue. Publishing never waits: when a sink's queue is
full the item is dropped and counted, so one slow disk or broker cannot stall inference or the other
sinks. A sink that raises is logged (at most once per ``error_log_interval`` per sink) and counted, and
keeps receiving. Sinks are only ever called from their own thread, so they need no locks of their own.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from edge_fer.events import FaceEvent

log = logging.getLogger("edge_fer.sinks")


class FrameInfo(Protocol):
    """Where a frame came from (``edge_fer.capture.frame.Frame`` satisfies this)."""

    camera: str
    index: int
    t_mono: float
    t_wall: float


class Sink(ABC):
    """An output. ``handle`` gets events, ``handle_frame`` annotated frames when ``wants_frames`` is set."""

    name: str = "sink"
    wants_events: bool = True
    wants_frames: bool = False
    queue_size: int | None = None  # pending events allowed for this sink; None: the runner's default

    @abstractmethod
    def handle(self, event: FaceEvent) -> None: ...

    def handle_frame(self, frame: FrameInfo, image: np.ndarray) -> None:  # noqa: B027 - optional for sinks
        """``image`` is the annotated BGR image of ``frame``; it is not shared with anyone else."""

    def flush(self, timeout: float) -> bool:
        """Push out what is buffered within ``timeout`` seconds; True when everything went out."""
        return True

    def close(self) -> None:  # noqa: B027 - optional for sinks
        """Release files and connections; called once, last."""

    @property
    def problem(self) -> str | None:
        """Why the sink stopped working (one line), or None while it works."""
        return None


@dataclass(frozen=True, slots=True)
class SinkStats:
    name: str
    delivered: int
    dropped: int
    errors: int
    queued: int
    frames_delivered: int
    frames_dropped: int
    problem: str | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class _Control:
    kind: str  # "flush" or "close"
    deadline: float
    done: threading.Event
    result: bool = False


class _Worker:
    def __init__(self, sink: Sink, queue_size: int, frame_queue_size: int, error_log_interval: float) -> None:
        self.sink = sink
        self.queue_size, self.frame_queue_size = queue_size, frame_queue_size
        self.error_log_interval = error_log_interval
        self.items: deque = deque()
        self.cond = threading.Condition()
        self.events_queued = self.frames_queued = 0
        self.delivered = self.dropped = self.errors = self.frames_delivered = self.frames_dropped = 0
        self.closed = False
        self.flush_failed = False  # the last flush did not finish and nothing has arrived since
        self._last_error_log = -float("inf")
        self._suppressed = 0
        self.thread = threading.Thread(target=self._loop, name=f"sink-{sink.name}", daemon=True)

    def put_event(self, event: FaceEvent) -> None:
        with self.cond:
            if self.closed or self.events_queued >= self.queue_size:
                self.dropped += 1
                return
            self.events_queued += 1
            self.items.append(("event", event))
            self.cond.notify()

    def put_frame(self, frame: FrameInfo, image: np.ndarray) -> None:
        with self.cond:
            if self.closed or self.frames_queued >= self.frame_queue_size:
                self.frames_dropped += 1
                return
            self.frames_queued += 1
            self.items.append(("frame", (frame, image)))
            self.cond.notify()

    def put_control(self, kind: str, deadline: float) -> _Control | None:
        with self.cond:
            if self.closed:
                return None
            control = _Control(kind, deadline, threading.Event())
            self.items.append(("control", control))
            self.closed = kind == "close"
            self.cond.notify()
            return control

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.items:
                    self.cond.wait()
                kind, payload = self.items.popleft()
                if kind == "event":
                    self.events_queued -= 1
                elif kind == "frame":
                    self.frames_queued -= 1
            if kind == "control":
                payload.result = self._control(payload)
                payload.done.set()
                if payload.kind == "close":
                    return
                continue
            try:
                if kind == "event":
                    self.sink.handle(payload)
                else:
                    self.sink.handle_frame(*payload)
            except Exception as exc:
                self._error(f"{kind} handling", exc)
            else:
                with self.cond:
                    if kind == "event":
                        self.delivered += 1
                    else:
                        self.frames_delivered += 1
            self.flush_failed = False

    def _control(self, control: _Control) -> bool:
        remaining = max(0.0, control.deadline - time.monotonic())
        try:
            if control.kind == "close" and self.flush_failed:
                # It could not flush a moment ago (a broker away) and got nothing since: waiting again would
                # only use up the time its close needs to say what it could not deliver.
                ok = False
            else:
                ok = bool(self.sink.flush(remaining))
                self.flush_failed = not ok
            if control.kind == "close":
                self.sink.close()
            return ok
        except Exception as exc:
            self._error(control.kind, exc)
            return False

    def _error(self, what: str, exc: Exception) -> None:
        with self.cond:
            self.errors += 1
        now = time.monotonic()
        if now - self._last_error_log < self.error_log_interval:
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more errors since the last report)" if self._suppressed else ""
        log.error("sink %s: %s failed: %s: %s%s", self.sink.name, what, type(exc).__name__, exc, more)
        self._last_error_log, self._suppressed = now, 0

    def stats(self) -> SinkStats:
        with self.cond:
            return SinkStats(
                name=self.sink.name,
                delivered=self.delivered,
                dropped=self.dropped,
                errors=self.errors,
                queued=self.events_queued,
                frames_delivered=self.frames_delivered,
                frames_dropped=self.frames_dropped,
                problem=self.sink.problem,
            )


class SinkRunner:
    """Fans events and frames out to sinks without ever blocking the caller.

    ``queue_size`` bounds each sink's pending events (unless the sink sets its own), ``frame_queue_size`` its
    pending frames (frames are large, so keep it small).
    """

    def __init__(
        self,
        sinks: Sequence[Sink],
        *,
        queue_size: int = 1000,
        frame_queue_size: int = 4,
        error_log_interval: float = 10.0,
    ) -> None:
        names = [s.name for s in sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"sink names must be unique, got {names}")
        if queue_size < 1 or frame_queue_size < 1:
            raise ValueError("sink queue sizes must be >= 1")
        self._workers = [_Worker(s, s.queue_size or queue_size, frame_queue_size, error_log_interval) for s in sinks]
        self._event_workers = [w for w in self._workers if w.sink.wants_events]
        self._frame_workers = [w for w in self._workers if w.sink.wants_frames]
        self._started = False

    @property
    def wants_frames(self) -> bool:
        """Whether anyone consumes frames, i.e. whether annotating is worth doing."""
        return bool(self._frame_workers)

    def start(self) -> SinkRunner:
        if not self._started:
            self._started = True
            for worker in self._workers:
                worker.thread.start()
        return self

    def publish(self, event: FaceEvent) -> None:
        for worker in self._event_workers:
            worker.put_event(event)

    def publish_frame(self, frame: FrameInfo, image: np.ndarray) -> None:
        """Every frame sink sees the same ``image``: sinks must not draw on it."""
        for worker in self._frame_workers:
            worker.put_frame(frame, image)

    def _all(self, kind: str, timeout: float) -> bool:
        self.start()  # a runner closed before it started still closes its sinks
        deadline = time.monotonic() + max(0.0, timeout)
        controls = [(w, w.put_control(kind, deadline)) for w in self._workers]
        ok = True
        for worker, control in controls:
            if control is None:
                continue
            if not control.done.wait(max(0.0, deadline - time.monotonic())):
                log.warning("sink %s: %s did not finish within %.1f s", worker.sink.name, kind, timeout)
                ok = False
            else:
                ok = ok and control.result
        return ok

    def flush(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s in all) until every sink has handled what was published and flushed."""
        return self._all("flush", timeout)

    def close(self, timeout: float) -> bool:
        """Drain, flush and close every sink (bounded); later publishes are dropped and counted."""
        ok = self._all("close", timeout)
        for worker in self._workers:
            if worker.thread.is_alive():
                worker.thread.join(timeout=0.05)
        return ok

    def stats(self) -> list[SinkStats]:
        return [w.stats() for w in self._workers]

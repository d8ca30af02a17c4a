"""The one runner in front of every output, so that no output can ever stall inference or another output.

Each output gets its own named thread (``output-<name>``) and a bounded queue per kind: events, frames (large,
so few), camera states and stats. Handing something over never waits: when that kind's queue is full the item
is dropped and counted for that kind. An output that raises is logged (at most once per ``error_log_interval``
per output and kind of failure, by :class:`~edge_fer.logs.Throttle`) and counted, and keeps receiving.
Outputs marked ``direct`` (MQTT) take events, states and stats on the caller's thread straight into their own
bounded store; only their frames, flush and close go through their thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_fer.events import FaceEvent
from edge_fer.logs import Throttle
from edge_fer.outputs.base import FrameInfo, Output, OutputStats, StatsView, overrides

log = logging.getLogger("edge_fer.outputs")

STATE_QUEUE = 64  # camera states are rare; this only bounds a stuck output's backlog
STATS_QUEUE = 2  # a snapshot a second: an output that is that far behind gets the next one


@dataclass(slots=True)
class _Control:
    kind: str  # "flush" or "close"
    deadline: float
    done: threading.Event
    result: bool = False


class _Worker:
    """One output's queue, thread and counters."""

    def __init__(self, output: Output, queue_size: int, frame_queue_size: int, error_log_interval: float) -> None:
        self.output = output
        self.bounds = {"event": queue_size, "frame": frame_queue_size, "state": STATE_QUEUE, "stats": STATS_QUEUE}
        self.queued = dict.fromkeys(self.bounds, 0)
        self.dropped = dict.fromkeys(self.bounds, 0)
        self.delivered = dict.fromkeys(self.bounds, 0)
        self.errors = 0
        self.error_log_interval = error_log_interval
        self.wants = {
            kind: overrides(output, method)
            for kind, method in (("event", "on_event"), ("state", "on_camera_state"), ("stats", "on_stats"))
        }
        self.items: deque = deque()
        self.cond = threading.Condition()
        self.closed = False
        self.flush_failed = False  # the last flush did not finish and nothing has arrived since
        self._error_log = Throttle(error_log_interval, logger=log)
        self.thread = threading.Thread(target=self._loop, name=f"output-{output.name}", daemon=True)

    def put(self, kind: str, payload: Any) -> None:
        if self.output.direct and kind != "frame":
            self._call_direct(kind, payload)
            return
        with self.cond:
            if self.closed or self.queued[kind] >= self.bounds[kind]:
                self.dropped[kind] += 1
                return
            self.queued[kind] += 1
            self.items.append((kind, payload))
            self.cond.notify()

    def _call_direct(self, kind: str, payload: Any) -> None:
        with self.cond:
            if self.closed:
                self.dropped[kind] += 1
                return
        self._handle(kind, payload)

    def put_control(self, kind: str, deadline: float) -> _Control | None:
        with self.cond:
            if self.closed:
                return None
            control = _Control(kind, deadline, threading.Event())
            self.items.append(("control", control))
            self.closed = kind == "close"
            self.cond.notify()
            return control

    def _handle(self, kind: str, payload: Any) -> None:
        """Deliver one item and count it; an output that raises is reported and keeps receiving."""
        try:
            self._deliver(kind, payload)
        except Exception as exc:
            self.report_error(f"{kind} handling", exc)
        else:
            with self.cond:
                self.delivered[kind] += 1

    def _deliver(self, kind: str, payload: Any) -> None:
        out = self.output
        if kind == "event":
            out.on_event(payload)
        elif kind == "frame":
            out.on_frame(*payload)
        elif kind == "state":
            out.on_camera_state(*payload)
        else:
            out.on_stats(payload)

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.items:
                    self.cond.wait()
                kind, payload = self.items.popleft()
                if kind != "control":
                    self.queued[kind] -= 1
            if kind == "control":
                payload.result = self._control(payload)
                payload.done.set()
                if payload.kind == "close":
                    return
                continue
            self._handle(kind, payload)
            self.flush_failed = False

    def _control(self, control: _Control) -> bool:
        remaining = max(0.0, control.deadline - time.monotonic())
        try:
            if control.kind == "close" and self.flush_failed:
                # It could not flush a moment ago (a broker away) and got nothing since: waiting again would
                # only use up the time its close needs to say what it could not deliver.
                ok = False
            else:
                ok = bool(self.output.flush(remaining))
                self.flush_failed = not ok
            if control.kind == "close":
                self.output.close()
            return ok
        except Exception as exc:
            self.report_error(control.kind, exc)
            return False

    def report_error(self, what: str, exc: Exception) -> None:
        with self.cond:
            self.errors += 1
        name = self.output.name
        kind = f"output {name} {what} failed"
        self._error_log.log(kind, logging.ERROR, "output %s: %s failed: %s: %s", name, what, type(exc).__name__, exc)

    def stats(self) -> OutputStats:
        with self.cond:
            return OutputStats(
                name=self.output.name,
                delivered=self.delivered["event"],
                dropped=self.dropped["event"],
                errors=self.errors,
                queued=self.queued["event"],
                frames_delivered=self.delivered["frame"],
                frames_dropped=self.dropped["frame"],
                states_dropped=self.dropped["state"],
                stats_dropped=self.dropped["stats"],
                problem=self.output.problem,
            )


class OutputRunner:
    """Fans events, frames, camera states and stats out to outputs without ever blocking the caller.

    ``queue_size`` bounds each output's pending events (unless the output sets its own), ``frame_queue_size``
    its pending frames (frames are large, so keep it small). Constructing it starts nothing; ``start`` starts
    the threads and then each output.
    """

    def __init__(
        self,
        outputs: Sequence[Output],
        *,
        queue_size: int = 1000,
        frame_queue_size: int = 4,
        error_log_interval: float = 10.0,
    ) -> None:
        names = [o.name for o in outputs]
        if len(set(names)) != len(names):
            raise ValueError(f"output names must be unique, got {names}")
        if queue_size < 1 or frame_queue_size < 1:
            raise ValueError("output queue sizes must be >= 1")
        self.outputs = list(outputs)
        self._workers = [_Worker(o, o.queue_size or queue_size, frame_queue_size, error_log_interval) for o in outputs]
        self._by_kind = {kind: [w for w in self._workers if w.wants[kind]] for kind in ("event", "state", "stats")}
        self._started = False
        self._closed = False

    def start(self) -> OutputRunner:
        """Start every output's thread, then each output (the first that raises stops the start)."""
        if not self._started:
            self._started = True
            for worker in self._workers:
                worker.thread.start()
            for output in self.outputs:
                output.start()
        return self

    def on_event(self, event: FaceEvent) -> None:
        for worker in self._by_kind["event"]:
            worker.put("event", event)

    def wants_frames(self, camera: str) -> bool:
        """Whether any output wants ``camera``'s annotated frames now, i.e. whether annotating is worth doing."""
        return any(w.output.wants_frames(camera) for w in self._workers)

    def on_frame(self, frame: FrameInfo, image: np.ndarray) -> None:
        """Every output that wants this camera sees the same ``image``: outputs must not draw on it."""
        for worker in self._workers:
            if worker.output.wants_frames(frame.camera):
                worker.put("frame", (frame, image))

    def on_camera_state(self, camera: str, state: str, detail: str) -> None:
        """Any thread (capture threads call it)."""
        for worker in self._by_kind["state"]:
            worker.put("state", (camera, state, detail))

    def on_stats(self, snapshot: StatsView) -> None:
        for worker in self._by_kind["stats"]:
            worker.put("stats", snapshot)

    def _all(self, kind: str, timeout: float) -> bool:
        deadline = time.monotonic() + max(0.0, timeout)
        controls = [(w, w.put_control(kind, deadline)) for w in self._workers]
        ok = True
        for worker, control in controls:
            if control is None:
                continue
            if not control.done.wait(max(0.0, deadline - time.monotonic())):
                log.warning("output %s: %s did not finish within %.1f s", worker.output.name, kind, timeout)
                ok = False
            else:
                ok = ok and control.result
        return ok

    def flush(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s in all) until every output has handled what it was given and flushed."""
        if not self._started:
            return True
        return self._all("flush", timeout)

    def close(self, timeout: float) -> bool:
        """Drain, flush and close every output (bounded); later hand-overs are dropped and counted.

        A runner that never started closes its outputs here, on the caller's thread, without starting them."""
        if self._closed:
            return True
        self._closed = True
        if not self._started:
            for worker in self._workers:
                worker.put_control("close", 0.0)  # marks it closed; the queued control is never run
                try:
                    worker.output.close()
                except Exception as exc:
                    worker.report_error("close", exc)
            return True
        ok = self._all("close", timeout)
        for worker in self._workers:
            if worker.thread.is_alive():
                worker.thread.join(timeout=0.05)
        return ok

    def stats(self) -> list[OutputStats]:
        return [w.stats() for w in self._workers]

    def sections(self) -> dict[str, Mapping[str, Any]]:
        """The top-level stats sections the outputs add (MQTT's ``mqtt``), read now; any thread."""
        found: dict[str, Mapping[str, Any]] = {}
        for output in self.outputs:
            try:
                section = output.stats_section()
            except Exception:
                log.exception("output %s: its stats could not be read", output.name)
                continue
            if section is not None:
                found[section[0]] = section[1]
        return found

"""The daemon's data flow: capture threads -> one inference worker -> tracker -> event policy -> sinks.

Data flows one way. Each camera has its own capture thread and bounded queue; the worker (the thread
that calls :meth:`Pipeline.run`, normally the main thread, so that systemd's watchdog is fed from the
loop that does the work) takes at most one frame per camera per turn, so cameras share it fairly.
When no frame comes the loop still turns every ``IDLE_WAIT`` seconds: the watchdog is fed and a
missing camera is reported, not killed.

Shutdown (the one stop event is set, the last file ended, or ``max_frames`` was reached): capture
stops, frames already queued are processed, open tracks get their ``end`` events, sinks flush with a
bounded wait and close (the video writer finishes its file), then systemd hears STOPPING=1.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from edge_fer.capture import CaptureThread, Frame, FrameQueue, ReconnectPolicy, open_source
from edge_fer.config.settings import CameraConfig, Config
from edge_fer.events import EventPolicy, FaceEvent, ModelInfo, PolicyConfig, iso_utc_ms
from edge_fer.runtime.stats import CameraMeters, camera_stats, stats_line
from edge_fer.tracking.tracker import Tracker, TrackerConfig
from edge_fer.vision.gated import FaceGate, make_gate
from edge_fer.vision.types import Face

log = logging.getLogger("edge_fer.pipeline")

IDLE_WAIT = 0.25
SNAPSHOT_INTERVAL = 1.0  # how fresh the stats seen by the HTTP page and STATUS= are
JOIN_TIMEOUT = 1.5
FLUSH_TIMEOUT = 2.0

FrameConsumer = Callable[[str, Frame, np.ndarray], None]


@dataclass
class Camera:
    """Everything the worker keeps for one camera."""

    config: CameraConfig
    capture: CaptureThread
    tracker: Tracker
    policy: EventPolicy
    meters: CameraMeters = field(default_factory=CameraMeters)
    last_t: float | None = None  # stream time of the last processed frame
    gate: FaceGate | None = None  # detection gated by this camera's faces (detector.roi_detection)

    def stream_time(self, frame: Frame) -> float:
        """The clock tracking runs on: capture time for live and paced sources; for a file read as fast
        as possible, its own timeline (index / fps), so that max_age, smoothing and update intervals
        mean the same in batch work as at real time."""
        source = self.capture.source
        if source.paced or not source.fps:
            return frame.t_mono
        return frame.index / source.fps

    @property
    def name(self) -> str:
        return self.config.safe_name


class Pipeline:
    """Owns the cameras and the worker loop; sinks and frame consumers are given to it."""

    def __init__(
        self,
        config: Config,
        analyzer,
        sinks,
        stop: threading.Event,
        *,
        run_id: str,
        notifier=None,
        frame_consumers: Sequence[FrameConsumer] = (),
        frames_wanted: Callable[[str], bool] | None = None,
        on_camera_state: Callable[[str, str, str], None] | None = None,
        on_stats: Callable[[dict], None] | None = None,
        max_frames: int | None = None,
    ) -> None:
        self.config = config
        self.analyzer = analyzer
        self.sinks = sinks
        self.stop = stop
        self.run_id = run_id
        self.notifier = notifier
        self.frame_consumers = list(frame_consumers)
        self.frames_wanted = frames_wanted
        self.on_camera_state = on_camera_state
        self.on_stats = on_stats
        self.max_frames = max_frames
        self.processed_total = 0
        self.started_mono = time.monotonic()
        self.wakeup = threading.Event()
        classifier = analyzer.classifier
        self.model = ModelInfo(name=classifier.name, sha256=classifier.sha256_id)
        self.cameras = [self._camera(cam) for cam in config.cameras]
        self._next_stats = time.monotonic() + config.stats.interval
        self._next_snapshot = 0.0
        self.latest_stats: dict | None = None  # replaced whole, so other threads may read it
        self._turn = 0

    def _camera(self, cam: CameraConfig) -> Camera:
        source = open_source(
            cam.source,
            width=cam.width,
            height=cam.height,
            fps=cam.fps,
            fourcc=cam.fourcc,
            realtime=cam.realtime,
            loop=cam.loop,
        )
        capture = CaptureThread(
            cam.safe_name,
            source,
            self.stop,
            queue=FrameQueue(cam.queue_size, wakeup=self.wakeup),
            detect_every=cam.detect_every,
            max_fps=cam.max_fps,
            stall_timeout=cam.stall_timeout,
            on_state=self._camera_state,
            reconnect=ReconnectPolicy(
                initial_delay=cam.reconnect.initial_delay,
                max_delay=cam.reconnect.max_delay,
                max_attempts=cam.reconnect.max_attempts,
            ),
        )
        t = self.config.tracking
        tracker = Tracker(
            TrackerConfig(
                iou_threshold=t.iou_threshold,
                min_hits=t.min_hits,
                max_age=t.max_age,
                min_face_size=t.min_face_size,
                min_det_score=t.min_det_score,
                smoothing_tau=t.smoothing_tau,
                hysteresis_margin=t.hysteresis_margin,
                min_change_duration=t.min_change_duration,
            )
        )
        policy = EventPolicy(
            PolicyConfig(mode=self.config.events.mode, update_interval=self.config.events.update_interval),
            device=self.config.safe_device,
            camera=cam.safe_name,
            run_id=self.run_id,
            model=self.model,
        )
        d = self.config.detector
        gate = make_gate(self.analyzer.detector, d.roi_detection, d.full_scan_interval)
        return Camera(cam, capture, tracker, policy, gate=gate)

    def _camera_state(self, camera: str, state: str, detail: str) -> None:
        log.debug("camera %s: %s%s", camera, state, f" ({detail})" if detail else "")  # capture logs it too
        if self.on_camera_state is not None:
            try:
                self.on_camera_state(camera, state, detail)
            except Exception:
                log.exception("camera state callback failed")

    # -- the worker loop -------------------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; returns the process exit code (0 clean, 1 when every camera failed)."""
        for cam in self.cameras:
            cam.capture.start()
        if self.notifier is not None:
            self.notifier.ready(f"running {len(self.cameras)} camera(s)")
        log.info("pipeline running: %s", ", ".join(f"{c.name}={c.capture.source.describe()}" for c in self.cameras))
        try:
            while not self.stop.is_set():
                if self.notifier is not None:
                    self.notifier.maybe_watchdog()
                got = self._take_frames()
                for cam, frame in got:
                    self._process(cam, frame)
                if self.max_frames is not None and self.processed_total >= self.max_frames:
                    log.info("processed %d frames (--max-frames): stopping", self.processed_total)
                    break
                if not got:
                    if all(c.capture.queue.drained for c in self.cameras):
                        break  # every source ended or failed, and everything queued was processed
                    self.wakeup.wait(IDLE_WAIT)
                self._maybe_stats()
        finally:
            self.shutdown()
        failed = [c.name for c in self.cameras if c.capture.state == "failed"]
        return 1 if failed and len(failed) == len(self.cameras) else 0

    def _take_frames(self) -> list[tuple[Camera, Frame]]:
        """At most one frame per camera, starting from a rotating camera so none is favoured."""
        self.wakeup.clear()
        n = len(self.cameras)
        got = []
        for i in range(n):
            cam = self.cameras[(self._turn + i) % n]
            frame = cam.capture.queue.get_nowait()
            if frame is not None:
                got.append((cam, frame))
        self._turn = (self._turn + 1) % n
        return got

    def _process(self, cam: Camera, frame: Frame) -> None:
        try:
            t = cam.stream_time(frame)
            faces = self._analyze(cam, frame.image, t)
            cam.last_t = t
            update = cam.tracker.update(faces, cam.last_t, frame.index)
            events = cam.policy.events(update, faces, frame.t_wall)
            self._emit(events)
            done = time.monotonic()
            cam.meters.latency_ms.add((done - frame.t_mono) * 1000.0)
            cam.meters.faces_now = len(update.present) if self.config.events.mode == "tracks" else len(faces)
            if self.frame_consumers and self._wants_frames(cam.name):
                self._offer_frame(cam, frame, faces, update)
        except Exception:
            # One bad frame must not stop a daemon that runs for months: log it, count it, go on.
            log.exception("camera %s: frame %d could not be processed", cam.name, frame.index)
        finally:
            cam.capture.queue.mark_processed()
            cam.meters.processed.tick()
            cam.meters.last_processed_mono = time.monotonic()
            self.processed_total += 1

    def _analyze(self, cam: Camera, image: np.ndarray, t: float) -> list[Face]:
        a = self.analyzer
        t0 = time.perf_counter()
        detections = a.detector.detect(image) if cam.gate is None else cam.gate.detect(image, t)
        t1 = time.perf_counter()
        cam.meters.detect_ms.add((t1 - t0) * 1000.0)
        if not detections:
            return []
        crops = a.aligner.align_all(image, detections)
        emotions = a.classifier.classify(crops)
        cam.meters.classify_ms_per_face.add((time.perf_counter() - t1) * 1000.0 / len(detections))
        return [Face(d, e) for d, e in zip(detections, emotions)]

    def _emit(self, events: list[FaceEvent]) -> None:
        for event in events:
            self.sinks.publish(event)

    def _wants_frames(self, camera: str) -> bool:
        return self.frames_wanted is None or self.frames_wanted(camera)

    def _offer_frame(self, cam: Camera, frame: Frame, faces: list[Face], update) -> None:
        from edge_fer.outputs.annotate import annotate, faces_for_annotation

        # The overlay shows the last snapshot's rate: asking the meter itself would reset its interval.
        snapshot = (self.latest_stats or {}).get("cameras", {}).get(cam.name, {})
        fps = snapshot.get("fps_processed")
        image = annotate(frame.image, faces_for_annotation(faces, update), fps=fps, blur=self.config.output.blur_faces)
        for consumer in self.frame_consumers:
            try:
                consumer(cam.name, frame, image)
            except Exception:
                log.exception("frame consumer failed")

    # -- stats -----------------------------------------------------------------------------------

    def stats(self) -> dict:
        now = time.monotonic()
        payload = {
            "schema": 1,
            "device": self.config.safe_device,
            "run_id": self.run_id,
            "ts": iso_utc_ms(time.time()),
            "uptime_s": round(now - self.started_mono, 1),
            "model": {"name": self.model.name, "sha256": self.model.sha256},
            "cameras": {c.name: camera_stats(c.meters, c.capture.stats(), now, c.gate) for c in self.cameras},
            "sinks": {s.name: s.to_dict() for s in self.sinks.stats()},
            "mqtt": None,
        }
        return payload

    def _maybe_stats(self, force: bool = False) -> None:
        """Refresh the snapshot every second (on this thread: the meters are not shared) and report
        it every ``stats.interval`` seconds."""
        now = time.monotonic()
        if force or now >= self._next_snapshot:
            self._next_snapshot = now + SNAPSHOT_INTERVAL
            self.latest_stats = self.stats()
        if not force and now < self._next_stats:
            return
        self._next_stats = now + self.config.stats.interval
        payload = self.latest_stats
        if self.on_stats is not None:
            try:
                self.on_stats(payload)
            except Exception:
                log.exception("stats callback failed")
        log.info("stats: %s", stats_line(payload))
        if self.notifier is not None:
            self.notifier.status(stats_line(payload))

    def health(self) -> tuple[bool, dict]:
        """Frames flow on every camera that should deliver them: for ``/healthz`` (any thread)."""
        now = time.monotonic()
        cameras = {}
        for cam in self.cameras:
            state = cam.capture.state
            last = cam.meters.last_processed_mono
            age = None if last is None else round(now - last, 1)
            stalled = state != "ended" and (state != "connected" or age is None or age > cam.config.stall_timeout)
            cameras[cam.name] = {"state": state, "last_frame_age_s": age, "ok": not stalled}
        return all(c["ok"] for c in cameras.values()), {"cameras": cameras}

    # -- shutdown --------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop capture, drain queued frames, end open tracks, flush and close sinks. Bounded in time."""
        if self.notifier is not None:
            self.notifier.stopping("stopping")
        self.stop.set()
        deadline = time.monotonic() + JOIN_TIMEOUT
        for cam in self.cameras:
            cam.capture.join(max(0.0, deadline - time.monotonic()))
            if cam.capture.is_alive():
                log.warning("camera %s: capture thread did not stop within %.1f s", cam.name, JOIN_TIMEOUT)
        for cam in self.cameras:
            while (frame := cam.capture.queue.get_nowait()) is not None:
                self._process(cam, frame)
        now_mono, now_wall = time.monotonic(), time.time()
        for cam in self.cameras:
            update = cam.tracker.flush(now_mono if cam.last_t is None or cam.capture.source.paced else cam.last_t)
            self._emit(cam.policy.events(update, [], now_wall))
        self._maybe_stats(force=True)
        if not self.sinks.flush(FLUSH_TIMEOUT):
            log.warning("sinks did not flush within %.1f s; unsent events are counted in the stats", FLUSH_TIMEOUT)
        self.sinks.close(FLUSH_TIMEOUT)

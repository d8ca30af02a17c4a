"""The daemon's data flow: capture threads -> one inference worker -> tracker -> event policy -> outputs.

Data flows one way. Each camera has its own capture thread and bounded queue; the worker (the thread
that calls :meth:`Pipeline.run`, normally the main thread, so that systemd's watchdog is fed from the
loop that does the work) takes at most one frame per camera per turn, so cameras share it fairly.
When no frame comes the loop still turns every ``IDLE_WAIT`` seconds: the watchdog is fed and a
missing camera is reported, not killed.

Shutdown (the one stop event is set, the last file ended, or ``max_frames`` was reached): capture
stops, frames already queued are processed, open tracks get their ``end`` events, outputs flush with a
bounded wait and close (the video writer finishes its file), then systemd hears STOPPING=1.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from edge_fer.capture import CaptureThread, Frame, FrameQueue, Source, open_source
from edge_fer.config.settings import CameraConfig, Config
from edge_fer.events import EventPolicy, FaceEvent, ModelInfo, iso_utc_ms
from edge_fer.outputs.runner import OutputRunner
from edge_fer.runtime.stats import REQUIRED_SECTIONS, CameraMeters, StatsSnapshot, camera_stats, stats_line
from edge_fer.tracking.tracker import Tracker
from edge_fer.vision.analyzer import Analysis, FaceAnalyzer
from edge_fer.vision.gated import FaceGate, make_gate
from edge_fer.vision.quality import ClaimRule

log = logging.getLogger("edge_fer.pipeline")

IDLE_WAIT = 0.25
SNAPSHOT_INTERVAL = 1.0  # how fresh the stats seen by the HTTP page and STATUS= are
JOIN_TIMEOUT = 1.5
FLUSH_TIMEOUT = 2.0

SourceFactory = Callable[[CameraConfig], Source]


def source_from_config(cam: CameraConfig) -> Source:
    """The source a ``cameras:`` entry names, constructed but not opened (its capture thread opens it)."""
    return open_source(
        cam.source,
        width=cam.width,
        height=cam.height,
        fps=cam.fps,
        fourcc=cam.fourcc,
        realtime=cam.realtime,
        loop=cam.loop,
    )


@dataclass
class Camera:
    """Everything the worker keeps for one camera."""

    config: CameraConfig
    capture: CaptureThread
    tracker: Tracker
    policy: EventPolicy
    meters: CameraMeters = field(default_factory=CameraMeters)
    stop: threading.Event = field(default_factory=threading.Event)  # this camera's capture (set at shutdown)
    last_t: float | None = None  # stream time of the last processed frame
    gate: FaceGate | None = None  # detection gated by this camera's faces (detector.roi_detection)
    scale: tuple[float, float] = (1.0, 1.0)  # the last frame's source pixels per frame pixel (max_frame_pixels)

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
    """Owns the cameras and the worker loop. Its analyzer, its outputs (one runner) and where its frames come
    from (``sources``, a factory from a camera's config to a not-yet-opened source) are given to it, so tests
    and ``edge-fer bench`` inject them instead of patching. Constructing it opens and starts nothing."""

    def __init__(
        self,
        config: Config,
        analyzer: FaceAnalyzer,
        outputs: OutputRunner,
        stop: threading.Event,
        *,
        run_id: str,
        sources: SourceFactory = source_from_config,
        notifier=None,
        max_frames: int | None = None,
        between_frames: Callable[[], None] | None = None,
    ) -> None:
        """``between_frames`` is called on the worker thread once a turn, between frames: where a config
        reload (:mod:`edge_fer.runtime.reload`) swaps models and adds or removes cameras."""
        self.config = config
        self.between_frames = between_frames
        self.analyzer = analyzer
        self.outputs = outputs
        self.stop = stop
        self.run_id = run_id
        self.sources = sources
        self.notifier = notifier
        self.max_frames = max_frames
        self.processed_total = 0
        self.started_mono = time.monotonic()
        self.wakeup = threading.Event()
        classifier = analyzer.classifier
        self.model = ModelInfo(name=classifier.name, sha256=classifier.sha256_id)
        self.cameras = [self._camera(cam) for cam in config.cameras]
        self._next_stats = time.monotonic() + config.stats.interval
        self._next_snapshot = 0.0
        self.latest_stats: StatsSnapshot | None = None  # immutable, replaced whole: any thread may read it
        self._turn = 0

    def _camera(self, cam: CameraConfig, policy: EventPolicy | None = None) -> Camera:
        """One camera, not started. Its capture has a stop event of its own (set for all at shutdown), so one
        camera can be removed on a reload; ``policy`` carries on a camera's ``seq`` when it comes back."""
        source = self.sources(cam)
        stop = threading.Event()
        capture = CaptureThread(
            cam.safe_name,
            source,
            stop,
            queue=FrameQueue(cam.queue_size, wakeup=self.wakeup),
            detect_every=cam.detect_every,
            max_fps=cam.max_fps,
            stall_timeout=cam.stall_timeout,
            on_state=self._camera_state,
            reconnect=cam.reconnect,
            max_frame_pixels=cam.max_frame_pixels,
        )
        tracker = Tracker(self.config.tracking, ClaimRule.from_settings(self.config.classifier.claim))
        policy = policy or EventPolicy(
            self.config.events,
            device=self.config.safe_device,
            camera=cam.safe_name,
            run_id=self.run_id,
            model=self.model,
        )
        gate = make_gate(self.analyzer.detector, self.config.detector)
        return Camera(cam, capture, tracker, policy, stop=stop, gate=gate)

    def add_camera(self, cam: CameraConfig, policy: EventPolicy | None = None) -> Camera:
        """Start one more camera while running (worker thread only)."""
        camera = self._camera(cam, policy)
        self.cameras.append(camera)
        camera.capture.start()
        return camera

    def remove_camera(self, name: str) -> Camera:
        """Stop one camera while running (worker thread only): its queued frames are processed and its open
        tracks get their ``end`` events, as at shutdown; the others go on untouched."""
        cam = next(c for c in self.cameras if c.name == name)
        cam.stop.set()
        cam.capture.join(JOIN_TIMEOUT)
        while (frame := cam.capture.queue.get_nowait()) is not None:
            self._process(cam, frame)
        self._end_tracks(cam, time.monotonic(), time.time())
        self.cameras.remove(cam)
        self._turn = 0
        return cam

    def _camera_state(self, camera: str, state: str, detail: str) -> None:
        log.debug("camera %s: %s%s", camera, state, f" ({detail})" if detail else "")  # capture logs it too
        self.outputs.on_camera_state(camera, state, detail)  # never blocks the capture thread calling it

    # -- the worker loop -------------------------------------------------------------------------

    def run(self) -> int:
        """Start the outputs (if the caller has not) and the capture threads, then work until stopped;
        returns the process exit code (0 clean, 1 when every camera failed)."""
        try:
            self.outputs.start()
        except Exception:
            self.outputs.close(FLUSH_TIMEOUT)  # what did start is stopped again; capture never started
            raise
        self.started_mono = time.monotonic()  # uptime and the first stats interval count from here
        self._next_stats = self.started_mono + self.config.stats.interval
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
                if self.between_frames is not None:
                    self.between_frames()
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
            analysis = self.analyzer.analyze(frame.image, self._detector_for(cam, t))
            self._measure(cam, analysis)
            faces = list(analysis.faces)
            cam.last_t = t
            update = cam.tracker.update(faces, cam.last_t, frame.index)
            events = cam.policy.events(update, faces, frame.t_wall)
            cam.scale = frame.scale
            self._emit(events, cam.scale)
            done = time.monotonic()
            cam.meters.latency_ms.add((done - frame.t_mono) * 1000.0)
            cam.meters.faces_now = len(update.present) if self.config.events.mode == "tracks" else len(faces)
            if self.outputs.wants_frames(cam.name):
                self._offer_frame(cam, frame, faces, update)
        except Exception:
            # One bad frame must not stop a daemon that runs for months: log it, count it, go on.
            log.exception("camera %s: frame %d could not be processed", cam.name, frame.index)
        finally:
            cam.capture.queue.mark_processed()
            cam.meters.processed.tick()
            cam.meters.last_processed_mono = time.monotonic()
            self.processed_total += 1

    @staticmethod
    def _detector_for(cam: Camera, t: float):
        """The camera's gated detection at stream time ``t``, or None for the analyzer's full scan."""
        gate = cam.gate
        return None if gate is None else (lambda image: gate.detect(image, t))

    @staticmethod
    def _measure(cam: Camera, analysis: Analysis) -> None:
        cam.meters.detect_ms.add(analysis.detect_ms)
        per_face = analysis.classify_ms_per_face
        if per_face is not None:
            cam.meters.classify_ms_per_face.add(per_face)
        cam.meters.faces_found += len(analysis.faces)

    def _emit(self, events: list[FaceEvent], scale: tuple[float, float] = (1.0, 1.0)) -> None:
        """Events to the outputs, their boxes in the source's pixels when the capture shrank the frame."""
        for event in events:
            if scale != (1.0, 1.0):
                event = replace(event, box=event.box.scaled(*scale))
            self.outputs.on_event(event)

    def _offer_frame(self, cam: Camera, frame: Frame, faces, update) -> None:
        from edge_fer.outputs.annotate import annotate, faces_for_annotation

        # The overlay shows the last snapshot's rate: asking the meter itself would reset its interval.
        fps = self.latest_stats.camera(cam.name).get("fps_processed") if self.latest_stats else None
        image = annotate(frame.image, faces_for_annotation(faces, update), fps=fps, blur=self.config.output.blur_faces)
        self.outputs.on_frame(frame, image)

    # -- stats -----------------------------------------------------------------------------------

    def stats(self) -> dict:
        """A fresh stats payload: this worker's meters, the runner's counters and each output's own section."""
        now = time.monotonic()
        payload = {
            "schema": 1,
            "device": self.config.safe_device,
            "run_id": self.run_id,
            "ts": iso_utc_ms(time.time()),
            "uptime_s": round(now - self.started_mono, 1),
            "model": {"name": self.model.name, "sha256": self.model.sha256},
            "cameras": {c.name: camera_stats(c.meters, c.capture.stats(), now, c.gate) for c in self.cameras},
            "sinks": {s.name: s.to_dict() for s in self.outputs.stats()},
            **dict.fromkeys(REQUIRED_SECTIONS),
            **self.outputs.sections(),
        }
        return payload

    def _maybe_stats(self, force: bool = False) -> None:
        """Refresh the snapshot every second (on this thread: the meters are not shared) and report
        it every ``stats.interval`` seconds."""
        now = time.monotonic()
        due = force or now >= self._next_stats
        if not due and now < self._next_snapshot:
            return
        self._next_snapshot = now + SNAPSHOT_INTERVAL
        self.latest_stats = snapshot = StatsSnapshot.of(self.stats(), due=due)
        self.outputs.on_stats(snapshot)
        if not due:
            return
        self._next_stats = now + self.config.stats.interval
        line = stats_line(snapshot.data)
        log.info("stats: %s", line)
        if self.notifier is not None:
            self.notifier.status(line)

    def health(self) -> tuple[bool, dict]:
        """Frames flow on every camera that should deliver them: for ``/healthz`` (any thread)."""
        now = time.monotonic()
        cameras = {}
        for cam in self.cameras:
            state = cam.capture.state
            last = cam.meters.last_processed_mono
            age = None if last is None else round(now - last, 1)
            # A camera that max_fps limits hands over a frame only every 1/max_fps s: that wait is not a stall.
            # (A source that stops delivering is caught by the capture watchdog, which leaves "connected".)
            limit = cam.config.stall_timeout + (1.0 / cam.config.max_fps if cam.config.max_fps else 0.0)
            stalled = state != "ended" and (state != "connected" or age is None or age > limit)
            cameras[cam.name] = {"state": state, "last_frame_age_s": age, "ok": not stalled}
        return all(c["ok"] for c in cameras.values()), {"cameras": cameras}

    # -- shutdown --------------------------------------------------------------------------------

    def _end_tracks(self, cam: Camera, now_mono: float, now_wall: float) -> None:
        update = cam.tracker.flush(now_mono if cam.last_t is None or cam.capture.source.paced else cam.last_t)
        self._emit(cam.policy.events(update, [], now_wall), cam.scale)

    def shutdown(self) -> None:
        """Stop capture, drain queued frames, end open tracks, flush and close outputs. Bounded in time."""
        if self.notifier is not None:
            self.notifier.stopping("stopping")
        self.stop.set()
        for cam in self.cameras:
            cam.stop.set()
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
            self._end_tracks(cam, now_mono, now_wall)
        self._maybe_stats(force=True)
        if not self.outputs.flush(FLUSH_TIMEOUT):
            log.warning("outputs did not flush within %.1f s; unsent events are counted in the stats", FLUSH_TIMEOUT)
        self.outputs.close(FLUSH_TIMEOUT)

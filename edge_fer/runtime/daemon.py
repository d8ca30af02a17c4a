"""Assemble the daemon from a config: models, sinks, frame consumers, systemd, signals; then run it.

Kept apart from :mod:`edge_fer.runtime.pipeline` so the data flow reads on its own and this file holds only
the wiring and the start-up errors (each one line, with the exit code that tells systemd whether a
restart could help).
"""

from __future__ import annotations

import logging
import threading

from edge_fer import exitcodes
from edge_fer.config.settings import Config
from edge_fer.events import new_run_id
from edge_fer.outputs.base import Sink

log = logging.getLogger("edge_fer.daemon")


class DaemonError(RuntimeError):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def build_analyzer(config: Config):
    """Detector, aligner and classifier as configured; ModelError (one line) when a model won't load."""
    from edge_fer.vision.align import DEFAULT_MARGIN, FaceAligner
    from edge_fer.vision.analyzer import FaceAnalyzer
    from edge_fer.vision.emotion import EmotionClassifier
    from edge_fer.vision.mtcnn import DetectorConfig, MtcnnDetector

    d, c = config.detector, config.classifier
    classifier = EmotionClassifier(list(c.models) or None, flip=c.flip, threads=c.threads)
    detector = MtcnnDetector(
        DetectorConfig(
            min_face_size=d.min_face_size, thresholds=d.thresholds, scale_factor=d.scale_factor, threads=d.threads
        )
    )
    margin = DEFAULT_MARGIN if c.margin is None else c.margin
    aligner = FaceAligner(size=max(classifier.input_size), mode=c.align, margin=margin)
    return FaceAnalyzer(detector, aligner, classifier)


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        mqtt_url: str | None = None,
        preview: bool = False,
        max_frames: int | None = None,
        stop: threading.Event | None = None,
        notifier=None,
    ) -> None:
        from edge_fer.runtime.service import Notifier
        from edge_fer.vision.onnx_session import ModelError

        self.config = config
        self.stop = stop or threading.Event()
        self.run_id = new_run_id()
        self.notifier = notifier if notifier is not None else Notifier()
        self.max_frames = max_frames
        self.preview = None
        if preview:
            from edge_fer.outputs.window import LocalPreview, PreviewUnavailable

            try:
                self.preview = LocalPreview(self.stop)
            except PreviewUnavailable as exc:
                raise DaemonError(str(exc), exitcodes.USAGE) from None
        try:
            self.analyzer = build_analyzer(config)
        except ModelError as exc:
            raise DaemonError(str(exc), exitcodes.UNAVAILABLE) from None
        self.http = self._http_server()
        self.mqtt = self._mqtt_sink(mqtt_url)
        self.sinks = self._sink_runner()
        self.pipeline = None

    def _mqtt_sink(self, url: str | None):
        from edge_fer.config.comms import mqtt_settings

        try:
            settings = mqtt_settings(self.config.mqtt, self.config.safe_device, url=url)
        except ValueError as exc:
            where, code = ("--mqtt", exitcodes.USAGE) if url else ("mqtt", exitcodes.CONFIG)
            raise DaemonError(f"{where}: {exc}", code) from None
        if settings is None:
            return None
        if settings.password is not None:  # a --mqtt URL's password was not in the config: mask it in logs too
            from edge_fer.redact import register_secrets

            register_secrets([settings.password.reveal()])
        from edge_fer.outputs.mqtt.sink import MqttSink

        cameras = [c.safe_name for c in self.config.cameras]
        return MqttSink(settings, cameras, run_id=self.run_id, device_name=self.config.device)

    def _http_server(self):
        if not self.config.http.enabled:
            return None
        from edge_fer.config.comms import http_settings
        from edge_fer.outputs.web.server import PreviewServer

        return PreviewServer(
            http_settings(self.config.http),
            lambda: (self.pipeline.latest_stats if self.pipeline else None) or {},
            lambda: self.pipeline.health() if self.pipeline else (False, {"starting": True}),
            cameras=[c.safe_name for c in self.config.cameras],
        )

    def _sink_runner(self):
        from edge_fer.outputs.base import SinkRunner

        sinks = []
        mode = self.config.output.stdout
        if mode == "on" or (mode == "auto" and self.mqtt is None):
            from edge_fer.outputs.stdout import StdoutSink

            sinks.append(StdoutSink())
        if self.mqtt is not None:
            sinks.append(self.mqtt)
        if self.http is not None:
            sinks.append(_PreviewEvents(self.http))
        video = self.config.output.video
        if video.path is not None:
            from edge_fer.outputs.video import VideoSink, VideoSinkConfig

            try:
                cfg = VideoSinkConfig(
                    path=video.path,
                    segment_seconds=video.segment_seconds,
                    segment_mb=video.segment_mb,
                    max_total_mb=video.max_total_mb,
                )
            except ValueError as exc:
                raise DaemonError(f"output.video.path: {exc}", exitcodes.CONFIG) from None
            fps = {c.safe_name: float(c.fps or 30.0) for c in self.config.cameras}
            sinks.append(VideoSink(cfg, fps))
        return SinkRunner(sinks)

    def _frames_wanted(self, camera: str) -> bool:
        watched = self.http is not None and self.http.watchers(camera) > 0
        return watched or self.preview is not None or self.sinks.wants_frames

    def run(self) -> int:
        from edge_fer.capture import SourceError
        from edge_fer.runtime.pipeline import Pipeline
        from edge_fer.runtime.service import install_signal_handlers

        if threading.current_thread() is threading.main_thread():
            install_signal_handlers(self.stop)
        consumers = []
        if self.sinks.wants_frames:
            consumers.append(lambda camera, frame, image: self.sinks.publish_frame(frame, image))
        if self.preview is not None:
            consumers.append(self.preview.show)
        if self.http is not None:
            consumers.append(lambda camera, frame, image: self.http.offer_frame(camera, image, frame.t_mono))
            from edge_fer.outputs.web.server import PreviewError

            try:
                self.http.start()
            except PreviewError as exc:
                log.error("%s", exc)
                return exitcodes.CONFIG
        self.sinks.start()
        try:
            self.pipeline = pipeline = Pipeline(
                self.config,
                self.analyzer,
                self.sinks,
                self.stop,
                run_id=self.run_id,
                notifier=self.notifier,
                frame_consumers=consumers,
                frames_wanted=self._frames_wanted,
                on_camera_state=self.mqtt.camera_status if self.mqtt is not None else None,
                on_stats=self._publish_stats,
                max_frames=self.max_frames,
            )
        except (SourceError, ValueError) as exc:
            self.sinks.close(2.0)
            if self.http is not None:
                self.http.stop(1.0)
            log.error("%s", exc)
            return exitcodes.CONFIG
        try:
            return pipeline.run()
        finally:
            if self.http is not None:
                self.http.stop(1.0)
            if self.preview is not None:
                self.preview.close()
            self.notifier.close()

    def _publish_stats(self, payload: dict) -> None:
        if self.mqtt is not None:
            payload["mqtt"] = self.mqtt.mqtt_stats()
            self.mqtt.stats(payload)


class _PreviewEvents(Sink):
    """Feeds the latest events to the browser preview, on its own sink thread like any output."""

    name = "http"
    queue_size = 100

    def __init__(self, server) -> None:
        self.server = server

    def handle(self, event) -> None:
        self.server.offer_event(event.to_dict())

"""Assemble the daemon from a config: models, outputs, sources and the pipeline; then run it.

Kept apart from :mod:`edge_fer.runtime.pipeline` so the data flow reads on its own and this file holds only
the wiring and the start-up errors (each one line, with the exit code that tells systemd whether a
restart could help). Constructing a :class:`Daemon` loads the models and builds every object ``run`` uses
(sources constructed, not opened) and starts nothing: no thread, no socket, no broker connection. So a
config that builds here is one that ``run`` can start, and ``close`` releases a daemon that never ran.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from edge_fer import exitcodes
from edge_fer.config.settings import Config
from edge_fer.events import new_run_id
from edge_fer.outputs.base import Output

log = logging.getLogger("edge_fer.daemon")

CLOSE_TIMEOUT = 2.0
METRIC_WINDOWS = ("detect_ms", "classify_ms_per_face", "latency_ms")  # CameraMeters windows /metrics shows


class DaemonError(RuntimeError):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


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
        reload: tuple[threading.Event, Callable[[], Config]] | None = None,
    ) -> None:
        """``reload``: the event SIGHUP sets and how to read the config again (see runtime/reload.py)."""
        from edge_fer.capture import SourceError
        from edge_fer.outputs.runner import OutputRunner
        from edge_fer.runtime.pipeline import Pipeline
        from edge_fer.runtime.service import Notifier
        from edge_fer.vision.analyzer import FaceAnalyzer
        from edge_fer.vision.onnx_session import ModelError

        self.config = config
        self.stop = stop or threading.Event()
        self.run_id = new_run_id()
        self.notifier = notifier if notifier is not None else Notifier()
        # Outputs first: a queue held by another daemon or an unusable path fails before seconds of model loading.
        self.outputs = OutputRunner(self._outputs(mqtt_url, preview))
        try:
            self.analyzer = FaceAnalyzer.from_settings(config.detector, config.classifier)
        except ModelError as exc:
            self.outputs.close(CLOSE_TIMEOUT)
            raise DaemonError(str(exc), exitcodes.UNAVAILABLE) from None
        try:
            self.pipeline = Pipeline(
                config,
                self.analyzer,
                self.outputs,
                self.stop,
                run_id=self.run_id,
                notifier=self.notifier,
                max_frames=max_frames,
            )
        except (SourceError, ValueError) as exc:
            self.outputs.close(CLOSE_TIMEOUT)
            raise DaemonError(str(exc), exitcodes.CONFIG) from None
        self.reloader = None
        if reload is not None:
            from edge_fer.runtime.reload import Reloader

            build = lambda c: FaceAnalyzer.from_settings(c.detector, c.classifier)  # noqa: E731
            self.reloader = Reloader(self.pipeline, reload[0], reload[1], build, self.notifier)
            self.pipeline.between_frames = self.reloader.between_frames
        self._ran = False

    # -- outputs, from the config ------------------------------------------------------------------------

    def _outputs(self, mqtt_url: str | None, preview: bool) -> list[Output]:
        """Every output the config asks for, in a fixed order; none of them started.

        MQTT comes first: it stores each event (a commit to the durable outbox) on the caller's thread before
        any other output is handed it, so no event shown elsewhere can be missing from the outbox after a kill."""
        outputs: list[Output] = []
        mqtt = self._mqtt(mqtt_url)
        if mqtt is not None:
            outputs.append(mqtt)
        elif self.config.output.snapshots.publishing:
            raise DaemonError(
                "output.snapshots.publish is on but no MQTT broker is set: set mqtt.url (or --mqtt), "
                "or turn publish off",
                exitcodes.CONFIG,
            )
        mode = self.config.output.stdout
        if mode == "on" or (mode == "auto" and mqtt is None):
            from edge_fer.outputs.stdout import StdoutSink

            outputs.append(StdoutSink())
        if self.config.http.enabled:
            outputs.append(self._http())
        if self.config.metrics.enabled:
            outputs.append(self._metrics())
        try:
            video = self._video()
        except DaemonError:
            for built in outputs:
                built.close()  # none started; this lets go of the MQTT outbox file
            raise
        if video is not None:
            outputs.append(video)
        if self.config.output.snapshots.saving:
            outputs.append(self._snapshots())
        if preview:
            from edge_fer.outputs.window import LocalPreview, PreviewUnavailable

            try:
                outputs.append(LocalPreview(self.stop))
            except PreviewUnavailable as exc:
                for built in outputs:
                    built.close()  # none started; this lets go of the MQTT outbox file
                raise DaemonError(str(exc), exitcodes.USAGE) from None
        if len(outputs) == 1 and outputs[0].name == "stdout":
            outputs[0].stop_when_gone = self.stop  # a Unix filter: `edge-fer | head -1` ends when head does
        return outputs

    def _mqtt(self, url: str | None) -> Output | None:
        from edge_fer.config.comms import MqttSettings

        settings = self.config.mqtt  # validated with the config: address and password already resolved
        if url:  # --mqtt replaces the section's broker; the rest of the section still applies
            fields = settings.model_dump(exclude={"url", "host", "port"})
            try:
                settings = MqttSettings.from_url(url, device=self.config.safe_device, **fields)
            except ValueError as exc:
                raise DaemonError(f"--mqtt: {exc}", exitcodes.USAGE) from None
        if not settings.enabled:
            return None
        from edge_fer.outputs.mqtt.queuefile import OutboxStoreError
        from edge_fer.outputs.mqtt.sink import MqttSink

        cameras = [c.safe_name for c in self.config.cameras]
        try:
            return MqttSink(
                settings,
                cameras,
                run_id=self.run_id,
                device_name=self.config.device,
                snapshots=self.config.output.snapshots,
            )
        except OutboxStoreError as exc:  # a second daemon on this device's queue, or a path that cannot be used
            raise DaemonError(str(exc), exitcodes.CONFIG) from None

    def _http(self) -> Output:
        from edge_fer.outputs.web.output import PreviewOutput

        return PreviewOutput(
            self.config.http,
            self._health,
            cameras=[c.safe_name for c in self.config.cameras],
        )

    def _health(self):
        return self.pipeline.health() if self._ran else (False, {"starting": True})

    def _metrics(self) -> Output:
        from edge_fer.runtime.metrics_server import MetricsOutput

        def histograms() -> dict:
            pipeline = getattr(self, "pipeline", None)
            if pipeline is None:
                return {}
            return {
                cam.name: {key: getattr(cam.meters, key).histogram.counts() for key in METRIC_WINDOWS}
                for cam in pipeline.cameras
            }

        def outbox_age() -> float | None:
            runner = getattr(self, "outputs", None)  # the runner is built from this very list
            sink = next((o for o in runner.outputs if o.name == "mqtt"), None) if runner is not None else None
            return sink.outbox_oldest_age() if sink is not None else None

        return MetricsOutput(self.config.metrics, self._health, histograms, outbox_age)

    def _snapshots(self) -> Output:
        from edge_fer.outputs.mqtt.queuefile import state_directory
        from edge_fer.outputs.snapshots import SnapshotSink

        settings = self.config.output.snapshots
        return SnapshotSink(settings, settings.path or state_directory() / "snapshots")

    def _video(self) -> Output | None:
        video = self.config.output.video
        if video.path is None:
            return None
        _probe_writable(video.path.parent if video.single_file else video.path)
        from edge_fer.config.sources import parse_source
        from edge_fer.outputs.video import VideoSink
        from edge_fer.outputs.video_encoders import EncoderError

        fps = {c.safe_name: float(c.fps or 30.0) for c in self.config.cameras}
        # Read as fast as inference goes: every frame belongs in the file, placed by its index.
        batch = {
            c.safe_name: not c.realtime and parse_source(c.source).kind in ("file", "demo") for c in self.config.cameras
        }
        try:
            return VideoSink(video, fps, batch=batch)
        except EncoderError as exc:  # codec: h264 without PyAV installed
            raise DaemonError(f"output.video: {exc}", exitcodes.CONFIG) from None

    # -- running -----------------------------------------------------------------------------------------

    def run(self) -> int:
        """Start the outputs, then the pipeline; return the exit code once it has stopped and shut down."""
        from edge_fer.outputs.web.server import PreviewError
        from edge_fer.runtime.metrics_server import MetricsError

        if self._ran:
            raise RuntimeError("a Daemon runs once; build a new one to run again")
        self._ran = True
        try:
            try:
                self.outputs.start()
            except (PreviewError, MetricsError) as exc:
                log.error("%s", exc)
                self.outputs.close(CLOSE_TIMEOUT)
                return exitcodes.CONFIG
            return self._delivery_status(self.pipeline.run())
        finally:
            self.notifier.close()

    def _delivery_status(self, code: int) -> int:
        """A clean stop that lost MQTT messages (dropped over the outbox's bound, or left undelivered by the
        memory outbox) exits 75, so a supervisor or script sees the loss the log line states; messages the
        durable outbox keeps for the next start are not lost."""
        sink = next((o for o in self.outputs.outputs if o.name == "mqtt"), None)
        if code != exitcodes.OK or sink is None:
            return code
        lost = sink.ledger()["lost"]
        if lost:
            log.warning("exiting with status %d: %d MQTT messages were lost", exitcodes.TEMPFAIL, lost)
            return exitcodes.TEMPFAIL
        return code

    def close(self) -> None:
        """Release a daemon that never ran (a run releases everything itself on its way out)."""
        if not self._ran:
            self._ran = True
            self.outputs.close(CLOSE_TIMEOUT)
            self.analyzer.detector.close()
            self.notifier.close()


def _probe_writable(directory: Path) -> None:
    """Create and remove a file in ``directory``'s nearest existing ancestor, as the recorder will create its
    files: ``os.access`` says yes to root on a read-only file system or under /proc, and a recording that
    cannot start must fail the start (exit 78), not leave a daemon running without the recording it was asked
    for. Nothing is left behind (the directory itself is created when the first segment opens)."""
    probe = directory
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".edge-fer-probe-"):
            pass
    except OSError as exc:
        raise DaemonError(
            f"output.video.path (--output): cannot write to {directory}: {exc.strerror or exc}; choose a writable "
            "directory (under systemd: below /var/lib/edge-fer)",
            exitcodes.CONFIG,
        ) from None

"""The remote preview server: lifecycle, connection limits, and the JSON the page polls.

The pipeline owns one ``PreviewServer``: it calls ``offer_frame`` for every processed frame and
``offer_event`` for every event; both only store a reference, so a browser never slows inference.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from edge_fer.config.comms import HttpSettings
from edge_fer.outputs.web.frames import FrameHub
from edge_fer.outputs.web.listener import EXTRA_CONNECTIONS, PreviewHTTPServer
from edge_fer.outputs.web.page import load_assets, render_page
from edge_fer.outputs.web.timeline import EmotionTimeline

log = logging.getLogger("edge_fer.http")

EVENT_HISTORY = 50
# A face whose track sent no event for this long is taken as gone even without its "end" event.
FACE_TTL_S = 30.0
# The page's per-face table holds at most this many faces per camera, the most recently seen, and this many
# cameras: with events on every frame (events.mode every_frame) and tracks that never end, it stays small.
MAX_FACES_PER_CAMERA = 64
MAX_CAMERAS = 64
StatsProvider = Callable[[], dict]
HealthProvider = Callable[[], "tuple[bool, dict]"]


class PreviewError(RuntimeError):
    """The preview cannot start (for example the port is taken); the message says what to change."""


class PreviewServer:
    """Live annotated MJPEG streams, stats, events and health over HTTP, for machines without a screen.

    ``stats_provider`` returns a JSON-able dict, the same payload as the stats topic
    (``edge_fer/schema/stats.schema.json``): the page shows each ``cameras[name]`` entry
    (``fps_processed``, ``latency_ms_p50``/``_p95``, ``faces``, ``state`` and any other keys) and the
    top-level keys. Each face's emotion comes from the events given to ``offer_event``.
    ``health_provider`` returns ``(ok, details)``; ``/healthz`` answers 200 when ok, else 503.
    Both are called on request threads, so they must be thread-safe and quick.
    """

    def __init__(
        self,
        settings: HttpSettings,
        stats_provider: StatsProvider,
        health_provider: HealthProvider,
        *,
        cameras: Iterable[str] = (),
    ) -> None:
        self.settings = settings
        self._stats_provider = stats_provider
        self._health_provider = health_provider
        self.hub = FrameHub(settings.max_fps, settings.jpeg_quality)
        for camera in cameras:
            self.hub.add(camera)
        self._template, self.assets = load_assets()
        self._events: deque[dict] = deque(maxlen=EVENT_HISTORY)
        self.timeline = EmotionTimeline(ttl_s=FACE_TTL_S)
        self._faces: dict[str, dict[Any, tuple[Any, Any, float]]] = {}
        self._faces_lock = threading.Lock()
        self._viewer_lock = threading.Lock()
        self._viewers = 0
        self.dropped_viewers = 0
        self.refused_viewers = 0
        self._httpd: PreviewHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._httpd is not None or self.hub.stop_event.is_set():
            raise RuntimeError("a PreviewServer starts once; build a new one to serve again")
        host, port = self.settings.host, self.settings.port
        try:
            httpd = PreviewHTTPServer((host, port), self, self.settings.max_clients + EXTRA_CONNECTIONS)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise PreviewError(
                f"HTTP preview cannot listen on {host}:{port}: {reason}; set http.port to a free port "
                "or http.host to an address of this machine"
            ) from None
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="http-serve", daemon=True
        )
        self._thread.start()
        log.info("HTTP preview at http://%s:%d/", host if ":" not in host else f"[{host}]", self.port)
        if not self.settings.is_loopback and self.settings.token is None:
            log.warning("HTTP preview listens on %s without a token: anyone who can reach it sees the faces", host)

    @property
    def port(self) -> int:
        """The bound port (the real one when the settings asked for port 0)."""
        if self._httpd is None:
            raise RuntimeError("the preview server is not started")
        return int(self._httpd.server_address[1])

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop accepting, end streams and encoders; True when every thread ended within ``timeout``."""
        deadline = time.monotonic() + timeout
        self.hub.stop_event.set()
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return self.hub.stop(timeout)
        if thread.is_alive():
            httpd.shutdown()
        httpd.server_close()
        encoders_done = self.hub.stop(max(0.0, deadline - time.monotonic()))
        connections_done = httpd.end_connections(max(0.0, deadline - time.monotonic()))
        thread.join(max(0.0, deadline - time.monotonic()))
        done = encoders_done and connections_done and not thread.is_alive()
        if not done:
            log.warning("HTTP preview: some connections were still open after %.1f s", timeout)
        return done

    # -- feeding (called by the pipeline) ------------------------------------------------------------------

    def offer_frame(self, camera: str, image_bgr: np.ndarray, t_mono: float) -> None:
        """Keep a reference to the newest frame; the array must not be written to afterwards."""
        self.hub.offer(camera, image_bgr, t_mono)

    def offer_event(self, event: dict) -> None:
        """Keep the event for /events.json and note its face's current emotion for the page."""
        self._events.append(event)
        self.timeline.add(event)
        camera, track, kind = event.get("camera"), event.get("track_id"), event.get("type")
        if camera is None or track is None:
            return
        with self._faces_lock:
            if str(camera) not in self._faces and len(self._faces) >= MAX_CAMERAS:
                return
            faces = self._faces.setdefault(str(camera), {})
            faces.pop(track, None)  # re-inserted below: the dict's order is the order last seen
            if kind != "end":
                faces[track] = (event.get("emotion"), event.get("confidence"), time.monotonic())
                while len(faces) > MAX_FACES_PER_CAMERA:
                    del faces[next(iter(faces))]

    def watchers(self, camera: str) -> int:
        feed = self.hub.get(camera)
        return feed.watchers if feed is not None else 0

    # -- used by request handlers ---------------------------------------------------------------------------

    def acquire_viewer(self) -> bool:
        with self._viewer_lock:
            if self._viewers >= self.settings.max_clients:
                self.refused_viewers += 1
                return False
            self._viewers += 1
            return True

    def release_viewer(self) -> None:
        with self._viewer_lock:
            self._viewers -= 1

    def count_dropped_viewer(self) -> None:
        with self._viewer_lock:
            self.dropped_viewers += 1

    def page_html(self) -> bytes:
        return render_page(self._template, self.hub.cameras(), self.settings.token)

    def faces_now(self) -> dict[str, list[dict]]:
        """Per camera, each present face's latest emotion, from the events (tracks that have not ended)."""
        oldest = time.monotonic() - FACE_TTL_S
        with self._faces_lock:
            for faces in self._faces.values():
                for track in [t for t, (_e, _c, seen) in faces.items() if seen < oldest]:
                    del faces[track]
            return {
                camera: [{"track_id": t, "emotion": e, "confidence": c} for t, (e, c, _seen) in faces.items()]
                for camera, faces in self._faces.items()
            }

    def preview_stats(self) -> dict:
        reader = self._httpd.head_reader if self._httpd is not None else None
        return {
            "viewers": self._viewers,
            "max_clients": self.settings.max_clients,
            "dropped_viewers": self.dropped_viewers,
            "refused_viewers": self.refused_viewers,
            # connections that sent no complete request: closed for newer ones, or answered 408
            "idle_connections_closed": reader.evicted if reader else 0,
            "request_heads_timed_out": reader.timed_out if reader else 0,
            "max_fps": self.settings.max_fps,
            "cameras": self.hub.snapshot(),
            "faces": self.faces_now(),
        }

    def stats_json(self) -> bytes:
        try:
            pipeline = self._stats_provider()
        except Exception:
            log.exception("HTTP preview: the stats provider failed")
            pipeline = {"error": "stats provider failed; see the daemon log"}
        return _dumps({"time": time.time(), "pipeline": pipeline, "preview": self.preview_stats()})

    def events_json(self) -> bytes:
        return _dumps({"events": list(reversed(self._events))})

    def timeline_json(self) -> bytes:
        return _dumps(self.timeline.snapshot())

    def health_json(self) -> tuple[bool, bytes]:
        try:
            ok, details = self._health_provider()
        except Exception:
            log.exception("HTTP preview: the health provider failed")
            ok, details = False, {"error": "health provider failed; see the daemon log"}
        return bool(ok), _dumps({"ok": bool(ok), "details": details})


def _jsonable(value: Any) -> Any:
    """Strict JSON for browsers: NaN/inf become null, numpy scalars and arrays become numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, deque)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _dumps(value: Any) -> bytes:
    return json.dumps(_jsonable(value), separators=(",", ":")).encode("utf-8")

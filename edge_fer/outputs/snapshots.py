"""Event snapshots: a JPEG of the face when its track starts, and one at its strongest emotion.

The pictures come from the annotated frames the pipeline already makes for the preview and the recorder
(so blurred when ``blur_faces`` is on), and only while a snapshot is waiting for one: the output asks for a
camera's frames after a ``start`` event or a new peak of a track, takes the next frame, and stops asking.
The events of a frame reach this output before that frame does (one queue per output, in order), so the
picture is of the frame of the event or, when the pipeline asked before this output had seen the event, of
the next one, cropped at the track's latest box.

The peak is kept in memory as JPEG bytes, replaced whenever the track's confidence in its published emotion
rises, and given out when the track ends: one snapshot per track and reason, at most ``MAX_TRACKS`` tracks
held per camera. :class:`SnapshotTaker` makes the pictures and hands each to a callback; the file output
here (:class:`SnapshotSink`) and the MQTT output (``output.snapshots.publish``) each own one, so a picture
published over MQTT goes out through the MQTT output's thread, ordered with its flush and close. Files are
``<camera>_<YYYYmmdd-HHMMSS>_<track>_<start|peak>_<emotion>.jpg`` (UTC); past
``max_mb`` the oldest snapshots in the directory are deleted, those of earlier runs included.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_fer.config.settings import MB, SnapshotSettings
from edge_fer.events import EventType, FaceEvent
from edge_fer.outputs.base import FrameInfo, Output
from edge_fer.vision.types import Box

log = logging.getLogger("edge_fer.sinks.snapshots")

MAX_TRACKS = 64  # open tracks held per camera
PEAK_STEP = 0.02  # a new peak must beat the last by this much confidence: no snapshot per tiny wobble
SNAPSHOT_NAME = re.compile(r"^.+_\d{8}-\d{6}_\d+_(start|peak)_[a-z]+\.jpg$")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One picture: ``reason`` is ``start`` or ``peak``; ``t_wall`` the time of the frame it was cut from."""

    camera: str
    track_id: int
    reason: str
    emotion: str
    t_wall: float
    jpeg: bytes


@dataclass(slots=True)
class _Track:
    box: Box
    emotion: str
    confidence: float = 0.0
    best: float = -1.0  # confidence of the kept peak
    peak_jpeg: bytes | None = None
    peak_emotion: str = ""
    peak_t: float = 0.0
    wants: str | None = None  # "start" or "peak": the next frame is to be cropped for it


class SnapshotTaker:
    """Which frames to cut and when: fed events and frames, gives each :class:`Snapshot` to ``emit``.
    Not thread-safe: its owner calls it from one thread, or under a lock."""

    def __init__(self, config: SnapshotSettings, emit: Callable[[Snapshot], None]) -> None:
        self.config, self.emit = config, emit
        self._tracks: dict[str, OrderedDict[int, _Track]] = {}
        self._waiting: dict[str, int] = {}  # camera -> tracks waiting for a frame (read by the pipeline thread)
        self.stopped = False

    def stop(self) -> None:
        """Take no more pictures (the owner cannot use them)."""
        self.stopped = True
        self._waiting.clear()

    def on_event(self, event: FaceEvent) -> None:
        if self.stopped or event.track_id <= 0:
            return
        tracks = self._tracks.setdefault(event.camera, OrderedDict())
        track = tracks.get(event.track_id)
        if event.type is EventType.END:
            if track is not None:
                self._end(event.camera, event.track_id, track)
            return
        if track is None:
            if event.type is not EventType.START and event.type is not EventType.FACE:
                return  # a track that started before this output existed
            track = tracks[event.track_id] = _Track(event.box, event.emotion)
            self._want(event.camera, track, "start")
            while len(tracks) > MAX_TRACKS:
                _, dropped = tracks.popitem(last=False)
                self._unwant(event.camera, dropped)
        track.box, track.emotion, track.confidence = event.box, event.emotion, event.confidence
        if event.confidence >= track.best + PEAK_STEP and track.wants is None:
            track.best = event.confidence
            self._want(event.camera, track, "peak")

    def wants_frames(self, camera: str) -> bool:
        return not self.stopped and self._waiting.get(camera, 0) > 0

    def on_frame(self, frame: FrameInfo, image: np.ndarray) -> None:
        if self.stopped:
            return
        tracks = self._tracks.get(frame.camera, {})
        for track_id, track in list(tracks.items()):
            reason = track.wants
            if reason is None:
                continue
            self._unwant(frame.camera, track)
            sx, sy = frame.scale  # event boxes are in the source's pixels, the image may be shrunk
            jpeg = self._crop_jpeg(image, track.box.scaled(1 / sx, 1 / sy))
            if jpeg is None:
                continue
            if reason == "start":
                self.emit(Snapshot(frame.camera, track_id, "start", track.emotion, frame.t_wall, jpeg))
                track.best = track.confidence  # the start is the first peak, from the next frame
                self._want(frame.camera, track, "peak")
            else:
                track.peak_jpeg, track.peak_emotion, track.peak_t = jpeg, track.emotion, frame.t_wall

    def _end(self, camera: str, track_id: int, track: _Track) -> None:
        self._unwant(camera, track)
        del self._tracks[camera][track_id]
        if track.peak_jpeg is not None and not self.stopped:
            self.emit(Snapshot(camera, track_id, "peak", track.peak_emotion, track.peak_t, track.peak_jpeg))

    def _want(self, camera: str, track: _Track, reason: str) -> None:
        if track.wants is None:
            self._waiting[camera] = self._waiting.get(camera, 0) + 1
        track.wants = reason

    def _unwant(self, camera: str, track: _Track) -> None:
        if track.wants is not None:
            self._waiting[camera] -= 1
            track.wants = None

    def _crop_jpeg(self, image: np.ndarray, box: Box) -> bytes | None:
        import cv2

        height, width = image.shape[:2]
        m = self.config.margin
        grown = Box(box.x - m * box.w, box.y - m * box.h, box.w * (1 + 2 * m), box.h * (1 + 2 * m))
        c = grown.clip(width, height)
        x0, y0, x1, y1 = int(c.x), int(c.y), round(c.x2), round(c.y2)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        ok, data = cv2.imencode(".jpg", image[y0:y1, x0:x1], [cv2.IMWRITE_JPEG_QUALITY, self.config.quality])
        return data.tobytes() if ok else None

    def close(self) -> None:
        """Tracks still open give their peak: the process is stopping and their end events may not come."""
        for camera, tracks in list(self._tracks.items()):
            for track_id, track in list(tracks.items()):
                if track.peak_jpeg is not None and not self.stopped:
                    self.emit(Snapshot(camera, track_id, "peak", track.peak_emotion, track.peak_t, track.peak_jpeg))
            tracks.clear()
        self._waiting.clear()


class SnapshotSink(Output):
    """The files: one JPEG per snapshot in ``directory``, the oldest deleted past ``max_mb``."""

    name = "snapshots"

    def __init__(self, config: SnapshotSettings, directory: Path) -> None:
        self.config, self.directory = config, directory
        self.taker = SnapshotTaker(config, self._save)
        self._problem: str | None = None
        self._sizes: OrderedDict[Path, int] | None = None  # our files, oldest first
        self.written: list[Path] = []

    def on_event(self, event: FaceEvent) -> None:
        self.taker.on_event(event)

    def wants_frames(self, camera: str) -> bool:
        return self.taker.wants_frames(camera)

    def on_frame(self, frame: FrameInfo, image: np.ndarray) -> None:
        self.taker.on_frame(frame, image)

    def _save(self, shot: Snapshot) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(shot.t_wall))
        safe = re.sub(r"[^A-Za-z0-9.-]+", "-", shot.camera).strip(".-") or "camera"
        path = self.directory / f"{safe}_{stamp}_{shot.track_id}_{shot.reason}_{shot.emotion}.jpg"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            sizes = self._known_files()
            path.write_bytes(shot.jpeg)
        except OSError as exc:
            self._problem = f"cannot write {path}: {exc.strerror or exc}"
            log.error("snapshots: %s; snapshots stopped, inference and events continue", self._problem)
            self.taker.stop()
            return
        sizes[path] = len(shot.jpeg)
        self.written.append(path)
        self._enforce_cap(sizes)

    def _known_files(self) -> OrderedDict[Path, int]:
        """Our files in the directory, oldest first: listed once, then kept up to date as we write."""
        if self._sizes is None:
            found = [(p, p.stat()) for p in self.directory.iterdir() if SNAPSHOT_NAME.match(p.name) and p.is_file()]
            found.sort(key=lambda item: (item[1].st_mtime, item[0].name))
            self._sizes = OrderedDict((p, st.st_size) for p, st in found)
        return self._sizes

    def _enforce_cap(self, sizes: OrderedDict[Path, int]) -> None:
        cap, total = int(self.config.max_mb * MB), sum(sizes.values())
        while total > cap and len(sizes) > 1:
            path, size = sizes.popitem(last=False)
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("snapshots: cannot delete %s to stay under %g MB: %s", path, self.config.max_mb, exc)
            total -= size

    @property
    def problem(self) -> str | None:
        return self._problem

    def close(self) -> None:
        """Tracks still open keep their peak: the process is stopping and their end events may not come."""
        self.taker.close()

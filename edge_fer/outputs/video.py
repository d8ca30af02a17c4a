"""Annotated frames to video files, in segments, under a disk cap that holds, readable after a crash.

Two encodings (:mod:`edge_fer.outputs.video_encoders`): H.264 in fragmented MP4 when PyAV is installed (the
``video`` extra), MJPEG in AVI through OpenCV otherwise. Both were chosen because a killed recording stays
playable: we killed writers with SIGTERM and SIGKILL mid-recording and decoded what was left. The FFmpeg-backed
OpenCV writers buffer 256 KiB (MJPEG in ``.mkv`` lost 6 of 150 frames, MPEG-2 in ``.ts`` 40) and a plain
``.mp4`` was unreadable; OpenCV's own MJPEG writer lost at most the last frame, the fragmented MP4 at most its
last fragment (one second). MJPEG's price is size (about 90 kB per 640x480 frame at quality 75).

The cap (``max_total_mb``) counts every segment in the directory, the open ones included: each camera's open
segment may take at most half the cap divided by the cameras recording, and the oldest closed segments are
deleted until the rest fits. A single file stops at the cap.

Frames are placed at the source's rate: a live camera's on its capture clock (a skipped frame is filled by
repeating the previous one, so the file plays in real time); a file or demo read as fast as possible
(``realtime: false``, ``batch``) by its frame index, so every frame it delivered is written.

Encoders report no error while the disk fills, so every ``check_every`` frames the file size is compared
with the bytes the encoder says it produced; when the file stops growing (disk full, file size limit, file
removed) the sink logs one error line and stops recording. Inference and events go on.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_fer.config.settings import MB, VideoSettings
from edge_fer.outputs.base import FrameInfo, Output
from edge_fer.outputs.video_encoders import EncoderError, writer_class

log = logging.getLogger("edge_fer.sinks.video")

CHECK_EVERY = 15  # frames between two checks that the file still grows (a test may check more often)
SEGMENT_NAME = re.compile(r"^.+_\d{8}-\d{6}_\d+\.(avi|mp4)$")
_GROWTH_SLACK = 1 * MB  # the writer's own buffering, well above what it holds back


@dataclass(slots=True, eq=False)
class _Segment:
    path: Path
    writer: object
    size: tuple[int, int]
    t0: float
    fps: float
    index0: int = 0  # the first frame's index: batch sources are placed by index
    by_index: bool = False
    frames: int = 0
    encoded: int = 0  # bytes the encoder reported
    last_size: int = -1
    last_frame_bytes: int = 0
    checked_at: int = 0
    skipped: int = 0
    duplicated: int = 0

    def copies(self, t: float, index: int) -> int:
        """How many times to write a frame taken at ``t`` (frame ``index``) so the file plays at ``fps`` in real
        time: 0 when it comes early, more than 1 to fill a short gap (skipped frames), at most one second.
        A batch source's frames are placed by index: all of them come early on the capture clock."""
        if self.by_index:
            slot = index - self.index0
            n = slot - self.frames + 1
            return max(0, min(n, max(1, math.ceil(self.fps))))
        slot = round((t - self.t0) * self.fps)
        if slot < self.frames:
            return 0
        n = slot - self.frames + 1
        if n > max(1, math.ceil(self.fps)):  # a long pause: restart the clock rather than freeze for seconds
            self.t0 = t - self.frames / self.fps
            return 1
        return n


class VideoSink(Output):
    """Writes annotated frames; one segment series per camera. ``fps``: the source rate (per camera).
    ``batch``: the cameras (or all, when True) whose frames come as fast as they are read, placed by index.

    ``config`` is the ``output.video`` settings model as it is (path, segments, cap, quality, codec), with a
    path. EncoderError (one line) when the codec asked for is not installed.
    """

    def __init__(
        self,
        config: VideoSettings,
        fps: float | Mapping[str, float],
        *,
        batch: bool | Mapping[str, bool] = False,
        name: str = "video",
        check_every: int = CHECK_EVERY,
    ) -> None:
        if config.path is None:
            raise ValueError("output.video.path is not set: there is nothing to record to")
        self.name, self.config, self._fps, self.check_every = name, config, fps, max(1, check_every)
        self._batch = batch
        self._writer = writer_class(config.codec, config.path.suffix.lower() if config.single_file else None)
        self._segments: dict[str, _Segment] = {}
        self._counters: dict[str, int] = {}
        self._problem: str | None = None
        self._ignored_cameras: set[str] = set()
        self.paths: list[Path] = []  # every file opened, in order
        self.frames_written = 0

    def wants_frames(self, camera: str) -> bool:
        """Every camera's frames until recording stops (then annotating for it would be wasted work)."""
        return self._problem is None

    @property
    def problem(self) -> str | None:
        return self._problem

    def _fps_for(self, camera: str) -> float:
        fps = self._fps.get(camera) if isinstance(self._fps, Mapping) else self._fps
        if fps is None or not fps > 0:
            raise ValueError(f"video: no frame rate for camera {camera!r}")
        return float(fps)

    def on_frame(self, frame: FrameInfo, image: np.ndarray) -> None:
        if self._problem is not None:
            return
        camera, cfg = frame.camera, self.config
        limit = self._segment_limit()
        if cfg.single_file and self._segments.keys() - {camera}:
            if camera not in self._ignored_cameras:
                self._ignored_cameras.add(camera)
                log.warning("video: %s records one camera; frames of camera %r are not written", cfg.path, camera)
            return
        size = (int(image.shape[1]), int(image.shape[0]))
        seg = self._segments.get(camera)
        if seg is not None and cfg.single_file:
            if seg.encoded >= limit:
                self._fail(f"{seg.path} reached its size cap of {limit / MB:.3g} MB", error=False)
                return
            if size != seg.size:
                image = _resize(image, seg.size)
                size = seg.size
        elif seg is not None and (
            size != seg.size
            or seg.encoded >= limit
            or (cfg.segment_seconds is not None and frame.t_mono - seg.t0 >= cfg.segment_seconds)
        ):
            self._close_segment(camera)
            seg = None
        if seg is None:
            seg = self._open(camera, frame, size)
            if seg is None:
                return
        self._write(seg, image, seg.copies(frame.t_mono, frame.index))

    def _segment_limit(self) -> int:
        """Bytes one open segment may take: its share of half the cap, so that all cameras' open segments
        together stay within that half and the cap can always be met by deleting closed ones."""
        cfg = self.config
        if cfg.single_file or cfg.max_total_mb is None:
            return cfg.segment_bytes
        cameras = max(len(self._fps) if isinstance(self._fps, Mapping) else 1, len(self._segments), 1)
        return max(1, cfg.segment_bytes // cameras)

    def _is_batch(self, camera: str) -> bool:
        batch = self._batch
        return bool(batch.get(camera, False) if isinstance(batch, Mapping) else batch)

    def _open(self, camera: str, frame: FrameInfo, size: tuple[int, int]) -> _Segment | None:
        cfg = self.config
        if cfg.single_file:
            path = cfg.path
            directory = path.parent
        else:
            directory = cfg.path
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(frame.t_wall))
            safe = re.sub(r"[^A-Za-z0-9.-]+", "-", camera).strip(".-") or "camera"
            n = self._counters.get(camera, 0)
            while (path := directory / f"{safe}_{stamp}_{n}{self._writer.suffix}").exists():
                n += 1
            self._counters[camera] = n + 1
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._fail(f"cannot create the video directory {directory}: {exc.strerror or exc}")
            return None
        fps = self._fps_for(camera)
        try:
            writer = self._writer(path, size, fps, cfg.quality)
        except EncoderError as exc:
            self._fail(str(exc))
            return None
        seg = _Segment(path, writer, size, frame.t_mono, fps, frame.index, self._is_batch(camera))
        self._segments[camera] = seg
        self.paths.append(path)
        log.info("video: recording camera %r to %s (%dx%d at %.3g fps)", camera, path, size[0], size[1], fps)
        self._enforce_total_cap()
        return seg

    def _write(self, seg: _Segment, image: np.ndarray, copies: int) -> None:
        if copies == 0:
            seg.skipped += 1
            return
        image = np.ascontiguousarray(image)
        for _ in range(copies):
            try:
                produced = seg.writer.write(image)
            except EncoderError as exc:
                self._fail(f"writing {seg.path} failed: {exc}")
                return
            if produced:  # H.264 holds frames back for its look-ahead: 0 bytes now, more later
                seg.last_frame_bytes = produced
            seg.encoded += produced
            seg.frames += 1
            self.frames_written += 1
        seg.duplicated += copies - 1
        if seg.frames - seg.checked_at >= self.check_every:
            seg.checked_at = seg.frames
            self._check_growth(seg)
            if self._problem is None:
                self._enforce_total_cap()

    def _check_growth(self, seg: _Segment) -> None:
        try:
            on_disk = os.stat(seg.path).st_size
        except OSError as exc:
            self._fail(f"{seg.path} can no longer be read back ({exc.strerror or exc})")
            return
        # The encoder says what it produced; the file must keep up, give or take what the writer holds back
        # (an MP4 fragment is written whole, up to HOLDS_S seconds of frames).
        held = seg.last_frame_bytes * (2 + math.ceil(getattr(seg.writer, "HOLDS_S", 0.0) * seg.fps))
        stalled = seg.encoded - on_disk > _GROWTH_SLACK + held
        seg.last_size = on_disk
        if stalled:
            self._fail(
                f"{seg.path} stopped growing at {on_disk} bytes although {seg.encoded} were encoded "
                "(disk full or file size limit?)"
            )

    def _enforce_total_cap(self) -> None:
        cfg = self.config
        if cfg.single_file or cfg.max_total_mb is None:
            return
        cap = int(cfg.max_total_mb * MB)
        open_paths = {seg.path for seg in self._segments.values()}
        try:
            files = [(p, p.stat()) for p in cfg.path.iterdir() if SEGMENT_NAME.match(p.name) and p.is_file()]
        except OSError as exc:
            log.warning("video: cannot list %s to enforce the disk cap: %s", cfg.path, exc)
            return
        total = sum(st.st_size for _, st in files)  # open segments included: they count against the cap
        for path, st in sorted(files, key=lambda item: (item[1].st_mtime, item[0].name)):
            if total <= cap:
                break
            if path in open_paths:
                continue
            try:
                path.unlink()
            except OSError as exc:
                log.warning("video: cannot delete %s to stay under %.0f MB: %s", path, cfg.max_total_mb, exc)
                continue
            total -= st.st_size
            log.info("video: deleted %s (%d bytes) to stay under %.0f MB", path, st.st_size, cfg.max_total_mb)

    def _close_segment(self, camera: str) -> None:
        seg = self._segments.pop(camera, None)
        if seg is None:
            return
        try:
            seg.writer.close()
        except Exception as exc:  # a failing disk can make the final index write fail too
            log.debug("video: releasing %s failed: %s", seg.path, exc)
        log.info(
            "video: closed %s: %d frames (%d repeated to fill gaps, %d early frames skipped)",
            seg.path,
            seg.frames,
            seg.duplicated,
            seg.skipped,
        )

    def _fail(self, reason: str, *, error: bool = True) -> None:
        self._problem = reason
        (log.error if error else log.warning)("video: %s; recording stopped, inference and events continue", reason)
        for camera in list(self._segments):
            self._close_segment(camera)

    def close(self) -> None:
        for camera in list(self._segments):
            self._close_segment(camera)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

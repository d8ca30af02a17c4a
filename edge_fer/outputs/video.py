"""Annotated frames to MJPEG ``.avi`` files, in segments, under a disk cap, readable after a crash.

Why MJPEG in AVI through OpenCV's own writer (``cv2.CAP_OPENCV_MJPEG``): we killed writers with SIGTERM
and SIGKILL mid-recording and decoded what was left. This writer puts every JPEG frame on disk as it
goes, and FFmpeg (hence ``cv2.VideoCapture``, ffplay, VLC) reads an AVI without its closing index, so a
killed recording lost at most its last frame (149 of 150 decoded). The FFmpeg-backed writers buffer
256 KiB: MJPEG in ``.mkv``/``.avi`` lost 6 of 150 frames, MPEG-2 in ``.ts`` 40 of 150 at 320x240, and
``.mp4`` was unreadable; no H.264 encoder is available in the opencv-python wheels. The price is size
(about 90 kB per 640x480 frame at quality 75): segments and the total cap keep it bounded. A player
that insists on an index can get one with ``ffmpeg -i killed.avi -c copy fixed.avi``.

``cv2.VideoWriter.write`` reports no error, so every ``check_every`` frames the file size is compared
with the bytes the encoder says it produced; when the file stops growing (disk full, file size limit,
file removed) the sink logs one error line and stops recording. Inference and events go on.
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

log = logging.getLogger("edge_fer.sinks.video")

CHECK_EVERY = 15  # frames between two checks that the file still grows (a test may check more often)
SEGMENT_NAME = re.compile(r"^.+_\d{8}-\d{6}_\d+\.avi$")
_GROWTH_SLACK = 1 * MB  # the writer's own buffering, well above what it holds back


@dataclass(slots=True, eq=False)
class _Segment:
    path: Path
    writer: object
    size: tuple[int, int]
    t0: float
    fps: float
    frames: int = 0
    encoded: int = 0  # bytes the encoder reported
    last_size: int = -1
    last_frame_bytes: int = 0
    checked_at: int = 0
    skipped: int = 0
    duplicated: int = 0

    def copies(self, t: float) -> int:
        """How many times to write a frame taken at ``t`` so the file plays at ``fps`` in real time:
        0 when it comes early, more than 1 to fill a short gap (skipped frames), at most one second."""
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

    ``config`` is the ``output.video`` settings model as it is (path, segments, cap, quality), with a path.
    """

    def __init__(
        self,
        config: VideoSettings,
        fps: float | Mapping[str, float],
        *,
        name: str = "video",
        check_every: int = CHECK_EVERY,
    ) -> None:
        if config.path is None:
            raise ValueError("output.video.path is not set: there is nothing to record to")
        self.name, self.config, self._fps, self.check_every = name, config, fps, max(1, check_every)
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
        if cfg.single_file and self._segments.keys() - {camera}:
            if camera not in self._ignored_cameras:
                self._ignored_cameras.add(camera)
                log.warning("video: %s records one camera; frames of camera %r are not written", cfg.path, camera)
            return
        size = (int(image.shape[1]), int(image.shape[0]))
        seg = self._segments.get(camera)
        if seg is not None and cfg.single_file:
            if seg.encoded >= cfg.segment_bytes:
                self._fail(f"{seg.path} reached its size cap of {cfg.segment_bytes / MB:.0f} MB", error=False)
                return
            if size != seg.size:
                image = _resize(image, seg.size)
                size = seg.size
        elif seg is not None and (
            size != seg.size
            or seg.encoded >= cfg.segment_bytes
            or (cfg.segment_seconds is not None and frame.t_mono - seg.t0 >= cfg.segment_seconds)
        ):
            self._close_segment(camera)
            seg = None
        if seg is None:
            seg = self._open(camera, frame, size)
            if seg is None:
                return
        self._write(seg, image, seg.copies(frame.t_mono))

    def _open(self, camera: str, frame: FrameInfo, size: tuple[int, int]) -> _Segment | None:
        import cv2

        cfg = self.config
        if cfg.single_file:
            path = cfg.path
            directory = path.parent
        else:
            directory = cfg.path
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(frame.t_wall))
            safe = re.sub(r"[^A-Za-z0-9.-]+", "-", camera).strip(".-") or "camera"
            n = self._counters.get(camera, 0)
            while (path := directory / f"{safe}_{stamp}_{n}.avi").exists():
                n += 1
            self._counters[camera] = n + 1
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._fail(f"cannot create the video directory {directory}: {exc.strerror or exc}")
            return None
        fps = self._fps_for(camera)
        writer = cv2.VideoWriter(str(path), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
        if not writer.isOpened():
            self._fail(f"cannot open {path} for writing: check that the directory is writable and has space")
            return None
        writer.set(cv2.VIDEOWRITER_PROP_QUALITY, float(cfg.quality))
        seg = _Segment(path=path, writer=writer, size=size, t0=frame.t_mono, fps=fps)
        self._segments[camera] = seg
        self.paths.append(path)
        log.info("video: recording camera %r to %s (%dx%d at %.3g fps)", camera, path, size[0], size[1], fps)
        self._enforce_total_cap()
        return seg

    def _write(self, seg: _Segment, image: np.ndarray, copies: int) -> None:
        import cv2

        if copies == 0:
            seg.skipped += 1
            return
        image = np.ascontiguousarray(image)
        for _ in range(copies):
            try:
                seg.writer.write(image)
            except cv2.error as exc:
                self._fail(f"writing {seg.path} failed: {str(exc).strip().splitlines()[-1]}")
                return
            seg.last_frame_bytes = int(seg.writer.get(cv2.VIDEOWRITER_PROP_FRAMEBYTES))
            seg.encoded += max(0, seg.last_frame_bytes)
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
        if seg.last_frame_bytes > 0:  # the encoder tells us what it produced: compare with the file
            stalled = seg.encoded - on_disk > _GROWTH_SLACK + 2 * seg.last_frame_bytes
        else:  # no byte count from this backend: at least the file must move
            stalled = on_disk == seg.last_size
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
        total = sum(st.st_size for _, st in files)
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
            seg.writer.release()
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

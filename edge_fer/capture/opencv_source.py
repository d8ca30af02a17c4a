"""Sources backed by ``cv2.VideoCapture``: V4L2 cameras, video files and network streams.

OpenCV is imported when a source is opened, never at module import. Its own warnings are
turned down to errors on first use (unless ``OPENCV_LOG_LEVEL`` / ``OPENCV_FFMPEG_LOGLEVEL``
are set): a camera that fails every second would otherwise print a backend warning each time,
bypassing our rate-limited log. RTSP over TCP instead of UDP is an FFmpeg option:
``OPENCV_FFMPEG_CAPTURE_OPTIONS="rtsp_transport;tcp"``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from edge_fer.capture.source import Pacer, Source, SourceError
from edge_fer.clock import SYSTEM_CLOCK, Clock
from edge_fer.redact import mask_url_passwords

log = logging.getLogger("edge_fer.capture")

_quieted = False


def _cv2():
    global _quieted
    if not _quieted:
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # read when FFmpeg first opens something
    import cv2

    if not _quieted:
        if "OPENCV_LOG_LEVEL" not in os.environ:
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        _quieted = True
    return cv2


def _release(cap) -> None:
    if cap is not None:
        try:
            cap.release()
        except Exception:  # a broken backend must not turn close() into a crash
            log.debug("VideoCapture.release failed", exc_info=True)


def _nominal_fps(cap) -> float | None:
    cv2 = _cv2()
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if 0.5 <= fps <= 1000.0 else None


class _OpenCvSource(Source):
    """What every VideoCapture-backed source shares: the handle, reading from it, releasing it."""

    _cap = None
    _no_frame = "no frame"  # how a failed read is described, per kind of source

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            raise SourceError(f"{self.describe()}: read before open")
        ok, image = self._cap.read()
        if not ok or image is None:
            raise SourceError(f"{self.describe()}: {self._no_frame}")
        return image

    def close(self) -> None:
        cap, self._cap = self._cap, None
        _release(cap)


class CameraSource(_OpenCvSource):
    """A V4L2 camera by index (``0``) or device path (``/dev/video0``, ``/dev/v4l/by-id/...``).

    Symlinks are resolved at every open, so a by-id path follows the camera to whatever
    ``/dev/videoN`` it gets after being re-plugged. ``fourcc`` (e.g. ``MJPG``) is applied
    before the size, since many UVC cameras offer large sizes at full rate only in MJPG. What
    the driver actually granted is logged at open and reported by :attr:`negotiated`.
    """

    is_live = True

    def __init__(
        self,
        device: int | str,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        fourcc: str | None = None,
        read_timeout: float = 5.0,
    ) -> None:
        super().__init__()
        if fourcc is not None and len(fourcc) != 4:
            raise ValueError(f"fourcc must be four characters like MJPG or YUYV, got {fourcc!r}")
        self.device = device
        self.width, self.height, self.requested_fps, self.fourcc = width, height, fps, fourcc
        self.read_timeout = read_timeout
        self.fps = fps
        self.negotiated: str | None = None
        self._cap = None

    def path(self) -> Path:
        return Path(f"/dev/video{self.device}") if isinstance(self.device, int) else Path(self.device)

    def describe(self) -> str:
        path = self.path()
        return f"camera {self.device}" if isinstance(self.device, int) else f"camera {path}"

    def open(self) -> None:
        self.close()
        path = self.path()
        if not path.exists():
            hint = "is it plugged in? `ls /dev/video* /dev/v4l/by-id` lists the cameras"
            raise SourceError(f"{self.describe()}: device not found; {hint}")
        real = path.resolve()
        if not os.access(real, os.R_OK | os.W_OK):
            raise SourceError(f"{self.describe()}: permission denied on {real}; add the user to the 'video' group")
        cv2 = _cv2()
        cap = cv2.VideoCapture(str(real), cv2.CAP_V4L2)
        if not cap.isOpened():
            _release(cap)
            raise SourceError(f"{self.describe()}: cannot open {real} with V4L2 (busy, or not a capture device?)")
        if self.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*self.fourcc))
        if self.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.requested_fps:
            cap.set(cv2.CAP_PROP_FPS, self.requested_fps)
        cap.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.read_timeout * 1000)  # ignored by backends without it
        code = int(cap.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF
        granted = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00") or "?"
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.fps = _nominal_fps(cap) or self.requested_fps
        self.negotiated = f"{w}x{h} {granted} @ {self.fps or '?'} fps"
        log.info("%s: opened %s, driver granted %s", self.describe(), real, self.negotiated)
        self._cap = cap

    @property
    def _no_frame(self) -> str:
        return f"no frame (unplugged, or no data within {self.read_timeout:g} s)"


class FileSource(_OpenCvSource):
    """A video file, paced at its own frame rate like a camera, or as fast as it decodes.

    ``realtime=True`` sleeps until each frame is due (falling behind skips the wait, it does
    not build up a burst); ``realtime=False`` is for batch analysis, where the capture thread
    waits for queue room so no frame is lost. ``loop=True`` starts over at the end. ``fps`` is
    only a fallback for files that do not state their rate (raw MJPEG, some AVIs). ``clock``
    is what the real-time pacing waits on (tests pass a fake one). A file that stops decoding
    short of the frame count its header states fails (:func:`cut_off`) instead of ending, unless
    ``check_length`` is off (``analyze`` reports it itself, with the rows it kept).
    """

    is_live = False

    def __init__(
        self,
        path: str | Path,
        *,
        realtime: bool = True,
        loop: bool = False,
        fps: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
        check_length: bool = True,
    ):
        super().__init__(clock)
        self.path = Path(path)
        self.realtime, self.loop, self.check_length = realtime, loop, check_length
        self._fps_fallback = fps
        self.fps = fps
        self.frame_count: int | None = None
        self._cap = None
        self._pacer: Pacer | None = None
        self._delivered_since_open = 0

    @property
    def paced(self) -> bool:
        return self.realtime

    def describe(self) -> str:
        return f"video file {self.path}"

    def open(self) -> None:
        self.close()
        if not self.path.is_file():
            what = "is a directory" if self.path.is_dir() else "not found"
            raise SourceError(f"{self.describe()}: {what}; check the camera source path", permanent=True)
        cv2 = _cv2()
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            _release(cap)
            raise SourceError(f"{self.describe()}: FFmpeg cannot decode it; is it a video file?", permanent=True)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 else None
        self.fps = _nominal_fps(cap) or self._fps_fallback
        if self.realtime and self._pacer is None:  # kept across loop restarts: no hiccup at the seam
            if self.fps is None:
                log.warning("%s: no frame rate in the file or the config; pacing at 30 fps", self.describe())
            self._pacer = Pacer(self.fps or 30.0, self.clock)
        self._cap = cap
        self._delivered_since_open = 0

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            raise SourceError(f"{self.describe()}: read before open")
        ok, image = self._cap.read()
        if not ok and self.loop and self._delivered_since_open > 0:
            self.open()  # reopening is more reliable than seeking to 0 across containers
            ok, image = self._cap.read()
        if not ok or image is None:
            if self._delivered_since_open == 0:
                raise SourceError(f"{self.describe()}: contains no decodable frames", permanent=True)
            problem = cut_off(self.describe(), self._delivered_since_open, self.frame_count)
            if problem is not None and self.check_length:  # not the promised end: `run` fails as `analyze` (exit 1)
                raise SourceError(problem, permanent=True)
            return None
        self._delivered_since_open += 1
        if self._pacer is not None:
            self._pause(self._pacer.delay())
        return image


def short_by(expected: int | None, got: int) -> bool:
    """Decoded fewer frames than the header promises, beyond what containers that estimate their count
    (from duration x rate) get wrong."""
    return expected is not None and got + max(2, expected // 100) < expected


def cut_off(name: str, got: int, expected: int | None) -> str | None:
    """The one line for a video file that stopped decoding before its end (``run`` and ``analyze``), or None."""
    if not short_by(expected, got):
        return None
    return f"{name}: decoding stopped after {got} of {expected} frames (the file is cut off or corrupt)"


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``, for logs and MQTT state messages."""
    return mask_url_passwords(url)


class UrlSource(_OpenCvSource):
    """An RTSP or HTTP(S) stream (MJPEG, HLS, a served video file) through OpenCV's FFmpeg.

    Always live: when the stream ends or stalls it is reconnected. Both timeouts are passed
    to FFmpeg so neither a dead host nor a silent stream can block the capture thread.
    """

    is_live = True

    def __init__(self, url: str, *, open_timeout: float = 10.0, read_timeout: float = 10.0) -> None:
        super().__init__()
        self.url = url
        self.open_timeout, self.read_timeout = open_timeout, read_timeout
        self._cap = None

    def describe(self) -> str:
        return f"stream {mask_url(self.url)}"

    def open(self) -> None:
        self.close()
        cv2 = _cv2()
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(self.open_timeout * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(self.read_timeout * 1000),
        ]
        cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            _release(cap)
            raise SourceError(
                f"{self.describe()}: cannot open (unreachable, refused, or no answer within {self.open_timeout:g} s)"
            )
        self.fps = _nominal_fps(cap)
        self._cap = cap

    @property
    def _no_frame(self) -> str:
        return f"stream ended or sent nothing for {self.read_timeout:g} s"

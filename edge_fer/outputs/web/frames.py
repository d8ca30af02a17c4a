"""Latest-frame hub between the inference worker and the MJPEG viewers.

The worker hands over every processed frame, so ``offer`` only swaps a reference. JPEG encoding
happens on one encoder thread per camera that exists only while someone watches that camera, runs at
most ``max_fps`` times a second, and encodes each frame once for all of its viewers. Viewers never
queue: they take whichever part is newest when they are ready to send. The ``max_fps`` cap is kept
on a :class:`~edge_fer.clock.Clock` (the real one unless a test passes a fake one).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from edge_fer.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("edge_fer.http")

BOUNDARY = "edgeferframe"
_IDLE_CHECK_S = 0.5


@dataclass(frozen=True, slots=True)
class JpegPart:
    """One encoded frame as the exact bytes every viewer sends: part headers, JPEG, next boundary."""

    seq: int
    frame_id: int
    t_mono: float
    jpeg_size: int
    payload: bytes


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of a BGR (or gray) uint8 image; ValueError names what is wrong with the image."""
    import cv2

    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"preview frame must be a uint8 numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)) or 0 in image.shape:
        raise ValueError(f"preview frame must be HxW or HxWx(1|3|4), got shape {image.shape}")
    ok, buf = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError(f"OpenCV could not encode a preview frame of shape {image.shape}")
    return buf.tobytes()


def multipart_part(jpeg: bytes) -> bytes:
    """A part followed at once by the next boundary, so browsers show the frame without waiting."""
    head = f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode("ascii")
    return b"".join((head, jpeg, f"\r\n--{BOUNDARY}\r\n".encode("ascii")))


class CameraFeed:
    """One camera's latest frame, its watcher count and, while watched, its encoder thread."""

    def __init__(
        self, name: str, max_fps: float, jpeg_quality: int, stop: threading.Event, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.name = name
        self._clock = clock
        self._interval = 1.0 / max_fps
        self._quality = jpeg_quality
        self._stop = stop
        self._latest: tuple[int, np.ndarray, float] | None = None
        self._offered = 0
        self._fresh = threading.Event()
        self._cond = threading.Condition()
        self._part: JpegPart | None = None
        self._encoded_id = 0
        self._watchers = 0
        self._encoder: threading.Thread | None = None
        self.encoded = 0
        self.encode_errors = 0

    def offer(self, image: np.ndarray, t_mono: float) -> None:
        # Single producer (the inference worker): a counter bump and a tuple swap, no lock.
        self._offered += 1
        self._latest = (self._offered, image, t_mono)
        if self._watchers:
            self._fresh.set()

    @property
    def watchers(self) -> int:
        return self._watchers

    @property
    def offered(self) -> int:
        return self._offered

    def attach(self) -> None:
        """Count a viewer in; the first one starts the encoder."""
        with self._cond:
            self._watchers += 1
            if self._encoder is None:
                self._encoder = threading.Thread(
                    target=self._encode_loop, name=f"http-encode-{self.name}"[:60], daemon=True
                )
                self._encoder.start()
        self._fresh.set()

    def detach(self) -> None:
        with self._cond:
            self._watchers = max(0, self._watchers - 1)

    def latest_part(self) -> JpegPart | None:
        return self._part

    def wait_part(self, after_seq: int, timeout: float) -> JpegPart | None:
        """The newest part if it is newer than ``after_seq``, waiting up to ``timeout`` for one."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._stop.is_set() or (self._part is not None and self._part.seq != after_seq), timeout
            )
            part = self._part
        return part if part is not None and part.seq != after_seq else None

    def wake(self) -> None:
        self._fresh.set()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float) -> bool:
        thread = self._encoder
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _encode_loop(self) -> None:
        next_at = 0.0
        while not self._stop.is_set():
            with self._cond:
                if self._watchers == 0:
                    self._encoder = None
                    return
            if not self._fresh.wait(_IDLE_CHECK_S):
                continue
            delay = next_at - self._clock.monotonic()
            if delay > 0 and self._clock.wait(self._stop, delay):
                break
            self._fresh.clear()
            latest = self._latest
            if latest is None or latest[0] == self._encoded_id:
                continue
            frame_id, image, t_mono = latest
            next_at = self._clock.monotonic() + self._interval
            self._publish(frame_id, image, t_mono)
        with self._cond:
            self._encoder = None

    def _publish(self, frame_id: int, image: np.ndarray, t_mono: float) -> None:
        try:
            jpeg = encode_jpeg(image, self._quality)
        except (ValueError, TypeError) as exc:
            self.encode_errors += 1
            level = logging.WARNING if self.encode_errors == 1 else logging.DEBUG
            log.log(level, "camera %r: preview frame skipped: %s", self.name, exc)
            self._encoded_id = frame_id
            return
        with self._cond:
            seq = self._part.seq + 1 if self._part is not None else 1
            self._part = JpegPart(seq, frame_id, t_mono, len(jpeg), multipart_part(jpeg))
            self._encoded_id = frame_id
            self.encoded += 1
            self._cond.notify_all()

    def snapshot(self) -> dict:
        part = self._part
        return {
            "watchers": self._watchers,
            "frames_offered": self._offered,
            "frames_encoded": self.encoded,
            "encode_errors": self.encode_errors,
            "last_jpeg_bytes": part.jpeg_size if part is not None else None,
        }


class FrameHub:
    """All cameras' feeds. Cameras appear on their first frame or when declared up front."""

    def __init__(self, max_fps: float, jpeg_quality: int, clock: Clock = SYSTEM_CLOCK) -> None:
        self._max_fps = max_fps
        self._clock = clock
        self._quality = jpeg_quality
        self._feeds: dict[str, CameraFeed] = {}
        self._lock = threading.Lock()
        self.stop_event = threading.Event()

    def add(self, camera: str) -> CameraFeed:
        with self._lock:
            feed = self._feeds.get(camera)
            if feed is None:
                feed = CameraFeed(camera, self._max_fps, self._quality, self.stop_event, self._clock)
                # Copy-on-write so readers and ``offer`` never need the lock.
                self._feeds = {**self._feeds, camera: feed}
            return feed

    def offer(self, camera: str, image: np.ndarray, t_mono: float) -> None:
        feed = self._feeds.get(camera)
        if feed is None:
            feed = self.add(camera)
        feed.offer(image, t_mono)

    def get(self, camera: str) -> CameraFeed | None:
        return self._feeds.get(camera)

    def cameras(self) -> list[str]:
        return list(self._feeds)

    def snapshot(self) -> dict[str, dict]:
        return {name: feed.snapshot() for name, feed in self._feeds.items()}

    def stop(self, timeout: float) -> bool:
        """Stop every encoder and wake every waiting viewer; True when all encoders ended in time."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        feeds = list(self._feeds.values())
        for feed in feeds:
            feed.wake()
        return all(feed.join(max(0.0, deadline - time.monotonic())) for feed in feeds)

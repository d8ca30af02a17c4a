"""One thread per camera: read frames, decide which to keep, hand them to inference, survive loss.

The thread never waits for inference: for paced sources (cameras, streams, real-time files)
a full queue loses its oldest frame; only unpaced sources (``realtime=False`` files, batch
work) wait for room, so nothing is lost there. Use::

    stop = threading.Event()                      # one per process
    cap = CaptureThread("door", open_source("/dev/video0", width=640, height=480), stop,
                        detect_every=2, on_state=publish_state)
    cap.start()
    while (frame := cap.queue.get(timeout=0.5)) or not cap.queue.exhausted:
        if frame is not None:
            ...                                   # inference
            cap.queue.mark_processed()

States (:data:`STATES`): ``connecting`` (first open), ``connected``, ``reconnecting`` (lost, or
open failed; backing off), then one terminal state: ``failed`` (permanent error, or gave up
after ``reconnect.max_attempts``), ``ended`` (a file reached its end), ``stopped`` (the stop
event was set). ``on_state(camera, state, detail)`` is called from this thread at each change.

A companion thread ``capture-<camera>-watchdog`` interrupts a read when the stop event is
set, and when a connected live source has delivered no usable frame for ``stall_timeout``
seconds, which makes the source reconnect. OpenCV reads cannot be interrupted; they end at
their own timeouts, so shutdown can take up to that long while a backend is blocked.

Time is kept on a :class:`~edge_fer.clock.Clock` (the source's, unless ``clock=`` says
otherwise): frame timestamps, ``max_fps``, the stall timeout, backoff waits and
``stable_after`` all read it, so tests can drive them with a fake clock. The watchdog's poll
interval stays on real time: it only sets how soon a stall is noticed.
"""

from __future__ import annotations

import logging
import random
import threading
import time

from edge_fer.capture.backoff import Backoff
from edge_fer.capture.frame import BadFrame, Frame, as_bgr, fit_pixels
from edge_fer.capture.queue import FrameQueue
from edge_fer.capture.select import FrameSelector
from edge_fer.capture.source import Source, SourceError
from edge_fer.capture.status import (
    CONNECTED,
    CONNECTING,
    ENDED,
    FAILED,
    RECONNECTING,
    STOPPED,
    CaptureStats,
    StateCallback,
)
from edge_fer.clock import Clock
from edge_fer.config.settings import ReconnectSettings
from edge_fer.logs import Throttle

log = logging.getLogger("edge_fer.capture")


class _Outcome:
    STOP, EOF, LOST, FATAL = "stop", "eof", "lost", "fatal"


class CaptureThread(threading.Thread):
    """Feeds one camera's :class:`FrameQueue` (``.queue``) until stopped, failed or ended."""

    def __init__(
        self,
        camera: str,
        source: Source,
        stop: threading.Event,
        *,
        queue: FrameQueue | None = None,
        queue_size: int = 2,
        detect_every: int = 1,
        max_fps: float | None = None,
        policy: str | None = None,
        reconnect: ReconnectSettings | None = None,
        stall_timeout: float | None = 10.0,
        on_state: StateCallback | None = None,
        log_interval: float = 60.0,
        rng: random.Random | None = None,
        clock: Clock | None = None,
        max_frame_pixels: int | None = None,
    ) -> None:
        """``policy``: "drop_oldest" or "wait"; None picks by ``source.paced``.
        ``max_fps`` limits the average queued rate (real-time clock for paced sources, the
        stream's own clock ``index / fps`` for unpaced ones, so batch results do not depend on
        machine speed). ``stall_timeout=None`` disables the watchdog. ``clock`` defaults to the
        source's, so a test hands one fake clock to the source and the thread follows it. Frames of more than
        ``max_frame_pixels`` are shrunk to it (:func:`~edge_fer.capture.frame.fit_pixels`), with one line per
        size seen (rate-limited); None keeps every frame as the source sends it."""
        super().__init__(name=f"capture-{camera}", daemon=True)
        if not camera:
            raise ValueError("camera name must not be empty")
        if stall_timeout is not None and not stall_timeout > 0:
            raise ValueError(f"stall_timeout must be > 0 or None, got {stall_timeout}")
        policy = policy or ("drop_oldest" if source.paced else "wait")
        if policy not in ("drop_oldest", "wait"):
            raise ValueError(f"queue policy must be 'drop_oldest' or 'wait', got {policy!r}")
        self.camera, self.source, self.stop_event = camera, source, stop
        self._clock = clock if clock is not None else source.clock
        self.queue = queue if queue is not None else FrameQueue(queue_size)
        self._selector = FrameSelector(detect_every, max_fps)
        self.detect_every, self.max_fps, self.policy = detect_every, max_fps, policy
        self.reconnect = reconnect or ReconnectSettings()
        self.stall_timeout = stall_timeout
        self.max_frame_pixels = max_frame_pixels
        self._oversize: tuple[int, int] | None = None  # the last over-size frame size that was logged
        self._on_state = on_state
        self._rl = Throttle(log_interval, logger=log, clock=self._clock.monotonic)
        self._backoff = Backoff(self.reconnect, rng)
        self._lock = threading.Lock()  # state vs. the watchdog
        self._state, self._detail = CONNECTING, ""
        self._errors = self._reconnects = 0
        self._index = 0
        self._last_good = self._clock.monotonic()
        self._stalled = self._waiting_for_room = False
        self._done = threading.Event()

    # ---- what the rest of the process reads -------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    @property
    def detail(self) -> str:
        return self._detail

    @property
    def finished(self) -> bool:
        """The thread has exited and the consumer has processed everything it queued."""
        return self._done.is_set() and self.queue.drained

    def mark_processed(self, count: int = 1) -> None:
        self.queue.mark_processed(count)

    def stats(self) -> CaptureStats:
        with self.queue.lock:
            c = self.queue.counts()
            return CaptureStats(
                self.camera, self._state, c.captured, c.processed, c.skipped, c.dropped, c.queued, c.waiting,
                self._errors, self._reconnects,
            )  # fmt: skip

    # ---- the thread ------------------------------------------------------------------

    def run(self) -> None:
        watchdog = threading.Thread(target=self._watch, name=f"capture-{self.camera}-watchdog", daemon=True)
        watchdog.start()
        self._set_state(CONNECTING, self.source.describe(), announce=True)
        try:
            state, detail = self._supervise()
        except Exception as exc:  # a bug must not leave the pipeline waiting for frames forever
            log.exception("%s: capture thread crashed", self.camera)
            state, detail = FAILED, f"internal error: {type(exc).__name__}: {exc}"
        finally:
            self._close_source()
        self._rl.flush()
        self._set_state(state, detail)
        self.queue.close()
        self._done.set()
        watchdog.join(timeout=1.0)

    def _supervise(self) -> tuple[str, str]:
        ever_connected = False
        while True:
            if self.stop_event.is_set():
                return STOPPED, "stop requested"
            with self._lock:
                self._stalled = False
                self.source.clear_interrupt()
            try:
                self.source.open()
            except Exception as exc:  # a backend's own exception (cv2.error) is a failed open too
                err = exc if isinstance(exc, SourceError) else self._unexpected(exc, "open")
                self._count_error("open", err, log_it=self._state == RECONNECTING)
                if err.permanent:
                    return FAILED, str(err)
                verdict = self._back_off(str(err))
                if verdict is not None:
                    return verdict
                continue
            connected_at = self._clock.monotonic()
            if ever_connected:
                with self.queue.lock:
                    self._reconnects += 1
            ever_connected = True
            with self._lock:
                self._last_good = connected_at
            self._rl.flush()  # the summary of the failures belongs before the line that says they are over
            self._set_state(CONNECTED, self.source.describe())
            outcome, detail = self._stream()
            self._close_source()
            if outcome == _Outcome.STOP:
                return STOPPED, "stop requested"
            if outcome == _Outcome.FATAL:
                return FAILED, detail
            if outcome == _Outcome.EOF and not self.source.is_live:
                return ENDED, f"end of stream after {self._index} frames"
            if self._clock.monotonic() - connected_at >= self.reconnect.stable_after:
                self._backoff.reset()
            verdict = self._back_off(detail)
            if verdict is not None:
                return verdict

    def _back_off(self, reason: str) -> tuple[str, str] | None:
        """Wait before the next attempt; a terminal (state, detail) when it is time to stop trying."""
        delay = self._backoff.next_delay()
        if self._backoff.exhausted:
            return FAILED, f"{reason}; gave up after {self._backoff.attempts} attempts"
        self._set_state(RECONNECTING, f"{reason}; retrying in {delay:.1f} s")
        if self._clock.wait(self.stop_event, delay):
            return STOPPED, "stop requested"
        return None

    def _stream(self) -> tuple[str, str]:
        source, live = self.source, self.source.is_live
        while not self.stop_event.is_set():
            try:
                image = source.read()
            except SourceError as exc:
                if self.stop_event.is_set():
                    break
                err = exc
                if self._stalled:
                    err = SourceError(f"{source.describe()}: no frame for {self.stall_timeout:g} s (stalled)")
                self._count_error("read", err, log_it=False)  # the state change that follows says it
                return (_Outcome.FATAL if err.permanent or not live else _Outcome.LOST), str(err)
            except Exception as exc:  # a backend raising something unexpected counts as a failed read
                if self.stop_event.is_set():
                    break
                err = self._unexpected(exc, "read")
                self._count_error("read", err, log_it=False)  # the state change that follows says it
                return (_Outcome.LOST if live else _Outcome.FATAL), str(err)
            now = self._clock.monotonic()
            if self.stop_event.is_set():
                break
            if image is None:
                return _Outcome.EOF, f"{source.describe()}: stream ended"
            try:
                image = as_bgr(image)
            except BadFrame as exc:
                self._count_error("bad-frame", SourceError(f"{source.describe()}: rejected a frame: {exc}"))
                if self._stalled:
                    return _Outcome.LOST, f"{source.describe()}: no usable frame for {self.stall_timeout:g} s"
                continue
            with self._lock:
                self._last_good = now
                if self._stalled:  # the stall ended by itself before the interrupt took effect
                    self._stalled = False
                    source.clear_interrupt()
            image, scale = self._fit(image)
            frame = Frame(self.camera, self._index, now, time.time(), image, scale)
            self._index += 1
            self._offer(frame)
        return _Outcome.STOP, "stop requested"

    def _offer(self, frame: Frame) -> None:
        fps = self.source.fps
        t = frame.t_mono if (self.source.paced or not fps) else frame.index / fps
        if not self._selector.keep(frame.index, t):
            self.queue.count_skipped()
            return
        if self.policy == "wait":  # time spent waiting for room is not a stall of the source
            with self._lock:
                self._waiting_for_room = True
            self.queue.put_wait(frame, self.stop_event)
            with self._lock:
                self._waiting_for_room = False
                self._last_good = self._clock.monotonic()
        else:
            self.queue.put_drop_oldest(frame)

    def _fit(self, image):
        size = (image.shape[1], image.shape[0])
        fitted, scale = fit_pixels(image, self.max_frame_pixels)
        if scale != (1.0, 1.0) and size != self._oversize:
            self._oversize = size
            self._rl.log(
                f"{self.camera} over max_frame_pixels",
                logging.WARNING,
                f"{self.camera}: {size[0]}x{size[1]} frames are over max_frame_pixels ({self.max_frame_pixels}); "
                f"analysed at {fitted.shape[1]}x{fitted.shape[0]}, event boxes in the source's pixels",
            )
        return fitted, scale

    def _watch(self) -> None:
        poll = 0.1 if self.stall_timeout is None else min(0.1, self.stall_timeout / 4)
        while not self._done.wait(poll):
            if self.stop_event.is_set():
                self.source.interrupt()
                continue
            if self.stall_timeout is None or not self.source.is_live:
                continue
            with self._lock:
                if self._state != CONNECTED or self._stalled or self._waiting_for_room:
                    continue
                silent = self._clock.monotonic() - self._last_good
                fired = silent > self.stall_timeout
                if fired:
                    self._stalled = True
                    self.source.interrupt()
            if fired:
                log.warning("%s: no frame for %.1f s; reconnecting", self.camera, silent)

    # ---- helpers -----------------------------------------------------------------------

    def _set_state(self, state: str, detail: str, announce: bool = False) -> None:
        with self._lock:
            changed = announce or state != self._state
            self._state, self._detail = state, detail
        if not changed:
            return
        level = logging.INFO if state in (CONNECTING, CONNECTED, ENDED, STOPPED) else logging.WARNING
        self._rl.log(f"{self.camera} {state}", level, f"{self.camera}: {state} ({detail})")
        if self._on_state is not None:
            try:
                self._on_state(self.camera, state, detail)
            except Exception as exc:  # a broken publisher must not stop the camera
                self._rl.log(f"{self.camera} on_state raised", logging.ERROR, f"{self.camera}: on_state raised {exc!r}")

    def _unexpected(self, exc: Exception, action: str) -> SourceError:
        log.debug("%s: unexpected exception on %s", self.camera, action, exc_info=True)
        first_line = (str(exc).strip().splitlines() or [""])[0]
        return SourceError(f"{self.source.describe()}: {action} raised {type(exc).__name__}: {first_line}")

    def _count_error(self, kind: str, exc: SourceError, log_it: bool = True) -> None:
        """Count an error; log it (rate-limited) unless the state change it causes will carry it."""
        with self.queue.lock:
            self._errors += 1
        if log_it:
            self._rl.log(f"{self.camera} {kind}", logging.WARNING, f"{self.camera}: {exc}")

    def _close_source(self) -> None:
        try:
            self.source.close()
        except Exception:  # closing must never raise out of the capture thread
            log.debug("%s: close failed", self.camera, exc_info=True)

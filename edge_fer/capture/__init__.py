"""Capture: frame sources and the per-camera thread that feeds the inference queue.

Public API (importing this package does not import OpenCV; sources import it when opened):

- :class:`Frame` (``camera``, ``index``, ``t_mono``, ``t_wall``, ``image``) and :func:`as_bgr`;
- :class:`Source` (``open``, ``read``, ``close``, ``is_live``, ``paced``, ``fps``, ``describe``,
  ``interrupt``) and :class:`SourceError`; the kinds :class:`CameraSource`, :class:`FileSource`,
  :class:`UrlSource`, :class:`DemoSource`, and :func:`open_source`,
  which picks one from a config string;
- :class:`FrameQueue`, the bounded queue and per-camera ledger; :class:`CaptureThread`, its
  :class:`CaptureStats` and the state names in :data:`STATES`.

From a ``cameras:`` entry of the config (``cam``)::

    source = open_source(cam.source, width=cam.width, height=cam.height, fps=cam.fps,
                         fourcc=cam.fourcc, realtime=cam.realtime, loop=cam.loop)
    thread = CaptureThread(cam.name, source, stop, queue_size=cam.queue_size,
                           detect_every=cam.detect_every, max_fps=cam.max_fps,
                           stall_timeout=cam.stall_timeout, on_state=publish_state,
                           reconnect=cam.reconnect)
"""

from edge_fer.capture.demo import DemoSource
from edge_fer.capture.frame import BadFrame, Frame, as_bgr
from edge_fer.capture.opencv_source import CameraSource, FileSource, UrlSource, mask_url
from edge_fer.capture.queue import FrameQueue, QueueCounts
from edge_fer.capture.source import Pacer, Source, SourceError
from edge_fer.capture.sources import open_source
from edge_fer.capture.status import (
    CONNECTED,
    CONNECTING,
    ENDED,
    FAILED,
    RECONNECTING,
    STATES,
    STOPPED,
    TERMINAL_STATES,
    CaptureStats,
)
from edge_fer.capture.thread import CaptureThread

__all__ = [
    "CONNECTED",
    "CONNECTING",
    "ENDED",
    "FAILED",
    "RECONNECTING",
    "STATES",
    "STOPPED",
    "TERMINAL_STATES",
    "BadFrame",
    "CameraSource",
    "CaptureStats",
    "CaptureThread",
    "DemoSource",
    "FileSource",
    "Frame",
    "FrameQueue",
    "Pacer",
    "QueueCounts",
    "Source",
    "SourceError",
    "UrlSource",
    "as_bgr",
    "mask_url",
    "open_source",
]

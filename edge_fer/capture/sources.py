"""Turn a camera's ``source:`` string from the config or the command line into a Source.

==================================  ===========================================================
``demo``, ``demo:6``                :class:`~edge_fer.capture.demo.DemoSource` (no camera needed), with
                                    1 or N faces
``0``, ``2``                        V4L2 camera by index (``/dev/video0``)
``/dev/video0``, ``/dev/v4l/...``   V4L2 camera by path; by-id symlinks are followed at each open
``rtsp://``, ``http(s)://``, ...    network stream through FFmpeg (``rtsps``, ``rtmp``, ``udp``,
                                    ``tcp``, ``srt`` too)
``file://...`` or anything else     a video file
==================================  ===========================================================

Options that do not apply to the chosen kind (``loop`` for a camera, ``fourcc`` for a file)
are ignored, so one camera config section can be passed whole.
"""

from __future__ import annotations

import re
from pathlib import Path

from edge_fer.capture.demo import DemoSource
from edge_fer.capture.opencv_source import CameraSource, FileSource, UrlSource
from edge_fer.capture.source import Source, SourceError

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def open_source(
    spec: str | int,
    *,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    fourcc: str | None = None,
    realtime: bool = True,
    loop: bool = False,
    faces: int = 1,
    open_timeout: float = 10.0,
    read_timeout: float | None = None,
) -> Source:
    """A Source for ``spec``, not yet opened (the capture thread opens it, and reopens it).

    Raises SourceError right away only for what cannot come right by waiting: a video file
    that does not exist, an unknown URL scheme, an empty spec. A camera that is not plugged
    in yet is not an error here; the capture thread keeps trying to open it. ``read_timeout``
    defaults to 5 s for cameras and 10 s for streams.
    """
    if isinstance(spec, bool):
        raise SourceError(f"camera source {spec!r}: expected demo, a camera index, a device, a URL or a file")
    if isinstance(spec, int):
        return _camera(spec, width, height, fps, fourcc, read_timeout or 5.0)
    text = str(spec).strip()
    if not text:
        raise SourceError("camera source is empty: use demo, a camera index (0), /dev/videoN, a URL or a file")
    demo = re.fullmatch(r"demo(?::(\d+))?", text.lower())
    if demo:
        count = int(demo.group(1)) if demo.group(1) else faces
        if not 1 <= count <= 16:
            raise SourceError(f"camera source {text!r}: the demo shows 1 to 16 faces", permanent=True)
        return DemoSource(width=width or 640, height=height or 480, fps=fps or 30.0, faces=count, realtime=realtime)
    if text.isdigit():
        return _camera(int(text), width, height, fps, fourcc, read_timeout or 5.0)
    if text.startswith("/dev/"):
        return CameraSource(text, width=width, height=height, fps=fps, fourcc=fourcc, read_timeout=read_timeout or 5.0)
    match = _SCHEME.match(text)
    if match:
        scheme = match.group(1).lower()
        if scheme == "file":
            text = text[len("file://") :]
        elif scheme in STREAM_SCHEMES:
            return UrlSource(text, open_timeout=open_timeout, read_timeout=read_timeout or 10.0)
        else:
            known = ", ".join(STREAM_SCHEMES)
            raise SourceError(f"camera source {text!r}: unsupported URL scheme {scheme!r}; use one of {known}")
    path = Path(text).expanduser()
    if not path.is_file():
        what = "is a directory, not a video file" if path.is_dir() else "no such video file"
        raise SourceError(
            f"camera source {text!r}: {what}; use demo, a camera index, /dev/videoN, a URL or an existing file",
            permanent=True,
        )
    return FileSource(path, realtime=realtime, loop=loop, fps=fps)


def _camera(index: int, width, height, fps, fourcc, read_timeout: float) -> Source:
    if index < 0:
        raise SourceError(f"camera index {index}: must be 0 or more (0 is /dev/video0)")
    return CameraSource(index, width=width, height=height, fps=fps, fourcc=fourcc, read_timeout=read_timeout)

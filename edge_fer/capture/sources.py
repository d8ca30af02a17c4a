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

from edge_fer.capture.demo import DemoSource
from edge_fer.capture.opencv_source import CameraSource, FileSource, UrlSource
from edge_fer.capture.source import Source, SourceError
from edge_fer.config.sources import STREAM_SCHEMES, parse_source

__all__ = ["STREAM_SCHEMES", "open_source"]


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

    Raises SourceError right away only for what cannot come right by waiting (the rules of
    :func:`edge_fer.config.sources.parse_source`, which check-config applies too). A camera that is
    not plugged in yet is not an error here; the capture thread keeps trying to open it.
    ``read_timeout`` defaults to 5 s for cameras and 10 s for streams.
    """
    try:
        parsed = parse_source(spec, faces)
    except ValueError as exc:
        raise SourceError(str(exc), permanent=True) from None
    if parsed.kind == "demo":
        return DemoSource(
            width=width or 640, height=height or 480, fps=fps or 30.0, faces=parsed.faces, realtime=realtime
        )
    if parsed.kind == "camera":
        return CameraSource(
            parsed.target, width=width, height=height, fps=fps, fourcc=fourcc, read_timeout=read_timeout or 5.0
        )
    if parsed.kind == "stream":
        return UrlSource(str(parsed.target), open_timeout=open_timeout, read_timeout=read_timeout or 10.0)
    return FileSource(parsed.target, realtime=realtime, loop=loop, fps=fps)

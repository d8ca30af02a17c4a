"""What a camera's ``source:`` string names, decided once for the config check and for ``open_source``.

``check-config`` must refuse what ``run`` would refuse, without opening a device or a stream; the capture
layer then builds the source from the same :class:`SourceSpec`. So the rules live here, below both.

==================================  ===========================================================
``demo``, ``demo:6``                the built-in demo with 1 or N faces (no camera needed)
``0``, ``2``                        V4L2 camera by index (``/dev/video0``)
``/dev/video0``, ``/dev/v4l/...``   V4L2 camera by path; by-id symlinks are followed at each open
``rtsp://``, ``http(s)://``, ...    network stream through FFmpeg (``rtsps``, ``rtmp``, ``udp``,
                                    ``tcp``, ``srt`` too)
``file://...`` or anything else     a video file, which must exist
==================================  ===========================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
DEMO_FACES = (1, 16)  # the demo draws this many faces at most
DEMO_MIN_SIDE = 32  # the demo draws frames at least this wide and high
MAX_FRAME_SIZE = (7680, 4320)  # widest and tallest frame a camera may be asked for (8K UHD)
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_HELP = "use demo, a camera index (0), /dev/videoN, a URL or an existing file"


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``source:``: its kind and what to open (an index, a device path, a URL or a file path)."""

    kind: Literal["demo", "camera", "stream", "file"]
    target: str | int | Path
    faces: int = 1  # demo only


def parse_source(spec: str | int, faces: int = 1) -> SourceSpec:
    """The source ``spec`` names; ValueError (one line naming it) for what waiting cannot fix: an empty
    spec, a demo face count out of range, a negative index, an unsupported URL scheme, a missing file.
    A camera that is not plugged in yet is not an error: the capture thread keeps trying."""
    if isinstance(spec, bool):
        raise ValueError(f"camera source {spec!r}: expected demo, a camera index, a device, a URL or a file")
    if isinstance(spec, int):
        return _camera(spec)
    text = str(spec).strip()
    if not text:
        raise ValueError(f"camera source is empty: {_HELP}")
    demo = re.fullmatch(r"demo(?::(\d+))?", text.lower())
    if demo:
        count = int(demo.group(1)) if demo.group(1) else faces
        if not DEMO_FACES[0] <= count <= DEMO_FACES[1]:
            raise ValueError(f"camera source {text!r}: the demo shows {DEMO_FACES[0]} to {DEMO_FACES[1]} faces")
        return SourceSpec("demo", text, count)
    if text.isdigit():
        return _camera(int(text))
    if text.startswith("/dev/"):
        return SourceSpec("camera", text)
    match = _SCHEME.match(text)
    if match:
        scheme = match.group(1).lower()
        if scheme == "file":
            text = text[len("file://") :]
        elif scheme in STREAM_SCHEMES:
            return SourceSpec("stream", text)
        else:
            raise ValueError(
                f"camera source {text!r}: unsupported URL scheme {scheme!r}; use one of {', '.join(STREAM_SCHEMES)}"
            )
    path = Path(text).expanduser()
    try:
        is_file = path.is_file()
    except OSError as exc:  # a name longer than the file system allows
        raise ValueError(f"camera source {text[:60]!r}...: {exc.strerror or exc}; {_HELP}") from None
    if not is_file:
        what = "is a directory, not a video file" if path.is_dir() else "no such video file"
        raise ValueError(f"camera source {text!r}: {what}; {_HELP}")
    return SourceSpec("file", path)


def _camera(index: int) -> SourceSpec:
    if index < 0:
        raise ValueError(f"camera index {index}: must be 0 or more (0 is /dev/video0)")
    return SourceSpec("camera", index)

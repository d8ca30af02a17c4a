"""What ``edge-fer analyze`` was given: still images, a folder of them, video files or stream URLs.

Each path is looked at before anything decodes it. A FIFO or a device would block a decoder forever or
feed it without end, so only regular files (and folders of them) are accepted, plus URLs that say
``rtsp://`` or ``http(s)://`` explicitly. A file is a video when its first bytes are those of a video
container; the suffix only decides for files whose first bytes say nothing (a raw stream).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from edge_fer.imageio import IMAGE_SUFFIXES

URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".ts", ".mts", ".mpg", ".mpeg", ".flv", ".ogv")


class InputError(ValueError):
    """A path that cannot be analysed; the message is one line naming it and what to do."""


@dataclass(frozen=True, slots=True)
class Input:
    """One thing to analyse: ``kind`` is "image", "video" or "url"; ``name`` is as the user wrote it."""

    kind: str
    name: str


def container(head: bytes) -> str | None:
    """The video container the first bytes announce, or None."""
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free"):
        return "MP4/QuickTime"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "Matroska/WebM"
    if head[:3] == b"FLV":
        return "FLV"
    if head[:4] == b"OggS":
        return "Ogg"
    if head[:4] == b"\x00\x00\x01\xba":
        return "MPEG program stream"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "ASF/WMV"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "MPEG transport stream"
    return None


def classify(name: str) -> list[Input]:
    """The inputs ``name`` stands for (a folder stands for its images), or InputError."""
    if name.lower().startswith(URL_SCHEMES):
        return [Input("url", name)]
    path = Path(name)
    try:
        st = os.stat(path)  # follows links: a link to /dev/zero is a device
    except OSError:
        return [Input("image", name)]  # the image loader says what is wrong with it, as for any still
    if stat.S_ISDIR(st.st_mode):
        return _folder(path)
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode) else "not a file"
        raise InputError(
            f"{name}: is {kind}, not a regular file; analyze reads files, folders and rtsp:// or http(s):// URLs"
        )
    return [Input(_file_kind(path), name)]


def _file_kind(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if container(head) is not None:
        return "video"
    return "video" if path.suffix.lower() in VIDEO_SUFFIXES and not head.startswith(_IMAGE_MAGIC) else "image"


_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8", b"GIF8", b"BM", b"RIFF")


def _folder(path: Path) -> list[Input]:
    """The folder's images, by name, not recursing: a folder of stills is what people export from a session."""
    try:
        entries = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    except OSError as exc:
        raise InputError(f"{path}: cannot list it ({exc.strerror or exc})") from None
    if not entries:
        raise InputError(f"{path}: is a directory without images ({', '.join(IMAGE_SUFFIXES)}); name the files")
    return [Input("image", str(p)) for p in entries]

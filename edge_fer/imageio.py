"""Load still images from untrusted paths: one clear error per bad file, and no decompression bombs.

The path is checked before a byte is read (``edge_fer.readfile``): a FIFO, a device or a link to one is
refused, and so is a file larger than an image within the pixel limit could be (a sparse file claiming
gigabytes is not read for half a minute first).

The width and height are read from the file header *before* decoding, so a tiny file declaring a
gigapixel image is refused without allocating it. The header parse also checks that the file is
complete: OpenCV versions differ in whether a truncated JPEG decodes to a half-grey picture or to
nothing, and a half-grey picture silently skews whatever is computed from it.
"""

from __future__ import annotations

import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_fer.readfile import FileRefused, read_regular, read_stream

DEFAULT_MAX_PIXELS = 40_000_000
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".pgm", ".ppm", ".pbm")


class ImageError(ValueError):
    """An image could not be used. The message is one line that names the file."""


@dataclass(frozen=True)
class ImageHeader:
    """What the first bytes of a file say about it: ``complete`` is False for a cut-off file,
    ``corrupt`` True when its structure makes no sense."""

    format: str
    width: int
    height: int
    complete: bool = True
    corrupt: bool = False

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_header(data: bytes) -> ImageHeader | None:
    """Size and completeness for PNG, JPEG, GIF, BMP and WebP; None for other formats."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return _png(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack_from("<HH", data, 6)
            return ImageHeader("GIF", width, height)
        if data.startswith(b"BM"):
            width, height = struct.unpack_from("<ii", data, 18)
            return ImageHeader("BMP", abs(width), abs(height))
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
    except (struct.error, IndexError):  # ran out of bytes inside the headers
        return ImageHeader(_format_name(data), 0, 0, complete=False)
    except _Garbled:
        return ImageHeader(_format_name(data), 0, 0, corrupt=True)
    return None


class _Garbled(Exception):
    pass


_MAGIC = ((b"\x89PNG", "PNG"), (b"\xff\xd8", "JPEG"), (b"GIF8", "GIF"), (b"BM", "BMP"), (b"RIFF", "WebP"))


def _format_name(data: bytes) -> str:
    return next((name for magic, name in _MAGIC if data.startswith(magic)), "image")


def _png(data: bytes) -> ImageHeader:
    if data[12:16] != b"IHDR":
        raise _Garbled("no IHDR")
    width, height = struct.unpack_from(">II", data, 16)
    pos, complete = 8, False
    while pos + 8 <= len(data):  # walk the chunks: a complete file reaches IEND inside its length
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            complete = pos <= len(data)
            break
    return ImageHeader("PNG", width, height, complete)


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg(data: bytes) -> ImageHeader:
    pos, width, height = 2, 0, 0
    while True:
        if data[pos] != 0xFF:
            raise _Garbled("lost marker sync")
        while data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        marker = data[pos + 1]
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker == 0xD9:
            raise _Garbled("end of image before any scan")
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker in _SOF_MARKERS:
            height, width = struct.unpack_from(">HH", data, pos + 5)
        if marker == 0xDA:
            break
        pos += 2 + length
    # Entropy-coded data stuffs every 0xFF with 0x00, so an end-of-image marker after the first
    # scan can only be the real one (an EXIF thumbnail's sits before it).
    complete = data.rfind(b"\xff\xd9") > pos
    return ImageHeader("JPEG", width, height, complete)


def _webp(data: bytes) -> ImageHeader:
    (riff_size,) = struct.unpack_from("<I", data, 4)
    complete = riff_size + 8 <= len(data)
    chunk = data[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
    elif chunk == b"VP8L":
        (bits,) = struct.unpack_from("<I", data, 21)
        w, h = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b"VP8 ":
        w, h = struct.unpack_from("<HH", data, 26)
        w, h = w & 0x3FFF, h & 0x3FFF
    else:
        raise _Garbled("unknown WebP chunk")
    return ImageHeader("WebP", w, h, complete)


def max_file_bytes(max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """The largest file worth reading for an image of ``max_pixels``: 4 bytes a pixel (an uncompressed
    32-bit BMP; compressed formats are smaller) plus 1 MiB of metadata (EXIF, ICC profiles, thumbnails).
    A bigger file cannot hold an acceptable image, so it is refused before a byte of it is read."""
    return 4 * int(max_pixels) + (1 << 20)


def read_bytes(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """The file's bytes, or ImageError for anything but a readable, non-empty regular file of a plausible
    size (:func:`max_file_bytes`). ``-`` reads standard input, as much as an image may be."""
    limit = max_file_bytes(max_pixels)
    try:
        if str(path) == "-":
            data = read_stream(sys.stdin.buffer, limit, what="image")
        else:
            data = read_regular(path, limit, what="image")
    except FileRefused as exc:
        raise ImageError(str(exc)) from None
    if not data:
        raise ImageError(f"{path}: empty file (0 bytes), not an image")
    return data


def decode_image(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """BGR uint8 pixels of an encoded image; ImageError (naming ``name``) when it is unusable."""
    import cv2

    header = read_header(data)
    if header is not None:
        if header.corrupt:
            raise ImageError(f"{name}: corrupt {header.format} headers; check that the file is a valid image")
        if not header.complete:
            raise ImageError(f"{name}: truncated {header.format} file; the copy or download is incomplete")
        _check_size(name, header.width, header.height, max_pixels)  # before any pixel is allocated
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:  # OpenCV's own size guard (OPENCV_IO_MAX_IMAGE_PIXELS) raises instead
        if "MAX_IMAGE_PIXELS" in str(exc):
            raise ImageError(f"{name}: over OpenCV's pixel limit; raise --max-pixels to accept it") from None
        raise ImageError(f"{name}: OpenCV could not decode it; check that the file is a valid image") from None
    if image is None:
        what = f"corrupt {header.format} data" if header else "not an image format OpenCV can decode"
        raise ImageError(f"{name}: {what}; check that the file is a valid image")
    _check_size(name, image.shape[1], image.shape[0], max_pixels)  # formats without a header parse
    return image


def _check_size(name: str, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageError(
            f"{name}: {width}x{height} is {width * height / 1e6:.1f} megapixels, over the limit of "
            f"{max_pixels / 1e6:g}; raise --max-pixels to accept it"
        )


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read and decode an image file as BGR uint8, or raise ImageError with a one-line message."""
    return decode_image(read_bytes(path, max_pixels), str(path), max_pixels)


def prepare_opencv(max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Process-wide settings for commands that decode untrusted files.

    OpenCV reads ``OPENCV_IO_MAX_IMAGE_PIXELS`` once, when it loads, so this sets it only if cv2 is not
    imported yet: a second guard behind the header check, for formats the header parse does not know.
    OpenCV's own log lines are silenced because each bad file already gets one clear line from us.
    """
    if "cv2" not in sys.modules:
        os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(int(max_pixels)))
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

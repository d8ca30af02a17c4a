"""The two ways a recording is encoded: H.264 in fragmented MP4 (PyAV, the ``video`` extra) and MJPEG in AVI
(OpenCV, always there).

Both stay readable when the process is killed, which is why these two and no others. The AVI writer puts
every JPEG on disk as it goes and FFmpeg reads an AVI without its closing index. The MP4 is written with an
empty ``moov`` up front and one fragment (``moof`` + ``mdat``) per keyframe interval, flushed to the file
packet by packet, so a killed recording plays to its last complete fragment (one second, ``KEYFRAME_S``) —
a plain MP4 keeps its index in a ``moov`` written at the end and is unreadable without it. H.264 costs more
CPU per frame than MJPEG and is some 50 times smaller (``benchmarks/recording.py``).

PyAV's wheels bundle FFmpeg with libx264, which is GPL: installing the extra brings GPL code into the
installation (edge-fer itself does not link or ship it).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

KEYFRAME_S = 1.0  # one fragment per second: what a crash can lose
H264_PRESET = "veryfast"


def h264_available() -> bool:
    """PyAV is installed and its FFmpeg has libx264."""
    try:
        import av
    except ImportError:
        return False
    return "libx264" in av.codecs_available


def crf_for(quality: int) -> int:
    """The JPEG-style quality (1-100, 75 by default) as an x264 constant rate factor (75 -> 28)."""
    return int(min(51, max(0, round(18 + (100 - quality) * 0.4))))


class EncoderError(OSError):
    """Writing failed (disk full, file removed, encoder error); the message is one line."""


class MjpegWriter:
    suffix = ".avi"

    def __init__(self, path: Path, size: tuple[int, int], fps: float, quality: int) -> None:
        import cv2

        self._writer = cv2.VideoWriter(str(path), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
        if not self._writer.isOpened():
            raise EncoderError(f"cannot open {path} for writing: check that the directory is writable and has space")
        self._writer.set(cv2.VIDEOWRITER_PROP_QUALITY, float(quality))

    def write(self, image: np.ndarray) -> int:
        """Bytes the encoder produced for this frame."""
        import cv2

        try:
            self._writer.write(image)
        except cv2.error as exc:
            raise EncoderError(str(exc).strip().splitlines()[-1]) from None
        return max(0, int(self._writer.get(cv2.VIDEOWRITER_PROP_FRAMEBYTES)))

    def close(self) -> None:
        self._writer.release()


class H264Writer:
    suffix = ".mp4"
    HOLDS_S = 2 * KEYFRAME_S  # the fragment being built and the encoder's look-ahead

    def __init__(self, path: Path, size: tuple[int, int], fps: float, quality: int) -> None:
        import av

        if size[0] % 2 or size[1] % 2:
            raise EncoderError(f"H.264 needs an even frame size, got {size[0]}x{size[1]}")
        options = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
        try:
            self._container = av.open(str(path), mode="w", format="mp4", options=options)
        except (OSError, av.FFmpegError) as exc:
            raise EncoderError(f"cannot open {path} for writing ({exc}); check the directory") from None
        gop = max(1, round(fps * KEYFRAME_S))
        stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"preset": H264_PRESET, "crf": str(crf_for(quality)), "g": str(gop), "keyint_min": str(gop)}
        self._stream = stream
        try:
            self._container.start_encoding()  # the header now: the file exists before the first packet
        except (OSError, av.FFmpegError) as exc:
            self._container.close()
            raise EncoderError(f"cannot start {path} ({exc}); check the directory") from None

    def write(self, image: np.ndarray) -> int:
        import av

        try:
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            return self._mux(self._stream.encode(frame))
        except (OSError, av.FFmpegError) as exc:
            raise EncoderError(str(exc)) from None

    def _mux(self, packets) -> int:
        written = 0
        for packet in packets:
            self._container.mux(packet)
            written += packet.size
        return written

    def close(self) -> None:
        import av

        try:
            self._mux(self._stream.encode(None))  # the frames the encoder still holds (look-ahead)
        except (OSError, av.FFmpegError):
            pass  # a failing disk: the fragments already written stay playable
        finally:
            self._container.close()


def writer_class(codec: str, single_file_suffix: str | None = None):
    """The writer for the ``codec`` setting; a single file's suffix decides. EncoderError when H.264 was asked
    for and PyAV is missing."""
    if single_file_suffix is not None:
        codec = "h264" if single_file_suffix == ".mp4" else "mjpeg"
    if codec == "auto":
        codec = "h264" if h264_available() else "mjpeg"
    if codec == "h264" and not h264_available():
        raise EncoderError("H.264 recording needs PyAV: pip install 'edge-fer[video]' (or set codec: mjpeg)")
    return H264Writer if codec == "h264" else MjpegWriter

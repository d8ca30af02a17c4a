"""Read a file a user named, without hanging and without reading more than the caller can afford.

A path on a command line or in a config can name anything: a FIFO (a read waits for a writer that never
comes), a device (``/dev/zero`` never ends; opening some devices has side effects of its own), or a sparse
file that claims gigabytes. So the path is looked at with ``stat`` before it is opened, only regular files
are opened, the opened descriptor is checked again (the path may have been swapped in between), the size
is compared with the caller's limit, and at most ``limit + 1`` bytes are read even if the file grows.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class FileRefused(ValueError):
    """The file was not read. The message is one line naming the path and what to do."""


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words for an error line."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def size_text(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def check_regular(path: str | Path, limit: int | None = None, what: str = "file") -> os.stat_result:
    """The path's stat when it is a regular file no larger than ``limit``; FileRefused otherwise.

    Links are followed: a link to ``/dev/zero`` is a device. Nothing is opened.
    """
    name = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileRefused(f"{name}: no such file") from None
    except OSError as exc:
        raise FileRefused(f"{name}: cannot look at it ({_reason(exc)}); check the path and its permissions") from None
    _check_stat(name, st, limit, what)
    return st


def _check_stat(name: str, st: os.stat_result, limit: int | None, what: str) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise FileRefused(f"{name}: is {kind_of(st.st_mode)}, not a regular file; pass the {what} itself")
    if limit is not None and st.st_size > limit:
        raise FileRefused(
            f"{name}: is {size_text(st.st_size)}, over the limit of {size_text(limit)} for {what}s; "
            "check that it is the right file"
        )


def read_regular(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or FileRefused with one line.

    ``what`` names the kind of file in messages ("image", "config file").
    """
    name = str(path)
    check_regular(path, limit, what)
    try:
        # O_NONBLOCK: if the path became a FIFO since the stat, opening it must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileRefused(f"{name}: no such file") from None
    except OSError as exc:
        raise FileRefused(f"{name}: cannot read it ({_reason(exc)}); check its permissions") from None
    try:
        _check_stat(name, os.fstat(fd), limit, what)  # the file actually opened, not the one looked at
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise FileRefused(f"{name}: cannot read it ({_reason(exc)})") from None
    finally:
        os.close(fd)
    if total > limit:
        raise FileRefused(f"{name}: grew past the limit of {size_text(limit)} for {what}s while it was read")
    return b"".join(chunks)


def read_stream(stream, limit: int, name: str = "standard input", what: str = "file") -> bytes:
    """At most ``limit`` bytes from an open binary stream (``-`` for stdin), FileRefused past that."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise FileRefused(f"{name}: more than the limit of {size_text(limit)} for {what}s")
    return data


def _reason(exc: OSError) -> str:
    return exc.strerror or errno.errorcode.get(exc.errno or 0, "") or str(exc)

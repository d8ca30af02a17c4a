"""Files a user names are looked at before they are read: real FIFOs, devices, links, sockets and sparse files.

Each refusal runs in a thread with a deadline, so a regression that blocks on a FIFO or reads /dev/zero
fails here in seconds instead of hanging the suite.
"""

from __future__ import annotations

import io
import os
import socket
import threading

import pytest

from edge_fer.readfile import FileRefused, check_regular, read_regular, read_stream

DEADLINE = 5.0


def within_deadline(func, *args):
    """``func(*args)``'s result or exception, or a failure if it has not returned within DEADLINE."""
    outcome: dict = {}

    def call() -> None:
        try:
            outcome["value"] = func(*args)
        except BaseException as exc:  # handed back to the test, whatever it is
            outcome["error"] = exc

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(DEADLINE)
    assert not worker.is_alive(), f"{func.__name__}{args} still running after {DEADLINE} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def fifo(tmp_path):
    path = tmp_path / "photo.jpg"
    os.mkfifo(path)
    return path, "a FIFO"


def link_to_dev_zero(tmp_path):
    path = tmp_path / "zero.png"
    path.symlink_to("/dev/zero")
    return path, "a character device"


def dev_null(tmp_path):
    return "/dev/null", "a character device"


def directory(tmp_path):
    return tmp_path, "a directory"


def unix_socket(tmp_path):
    path = tmp_path / "s.png"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    return path, "a socket"


def huge_sparse_file(tmp_path):
    path = tmp_path / "sparse.png"
    with open(path, "wb") as f:
        f.truncate(4 << 30)  # 4 GB that take no disk: reading them whole took 27 s and 4.3 GB
    return path, "is 4.0 GB, over the limit of 1.0 MB for files"


@pytest.mark.parametrize("make", [fifo, link_to_dev_zero, dev_null, directory, unix_socket, huge_sparse_file])
def test_refused_at_once_with_one_line(tmp_path, make):
    path, words = make(tmp_path)
    with pytest.raises(FileRefused) as caught:
        within_deadline(read_regular, path, 1 << 20)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and words in message and "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(FileRefused, match=r"gone\.png: no such file"):
        read_regular(tmp_path / "gone.png", 100)


def test_dangling_link_is_missing(tmp_path):
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileRefused, match="no such file"):
        read_regular(tmp_path / "dangling", 100)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.png"
    path.write_bytes(b"x")
    path.chmod(0)
    with pytest.raises(FileRefused, match=r"cannot read it \(Permission denied\)"):
        read_regular(path, 100)


def test_a_regular_file_and_a_link_to_one_are_read_whole(tmp_path):
    path = tmp_path / "a.bin"
    data = os.urandom(3 << 20)  # more than one read's chunk
    path.write_bytes(data)
    (tmp_path / "link").symlink_to(path)
    assert read_regular(path, len(data)) == data
    assert read_regular(tmp_path / "link", len(data)) == data
    assert check_regular(path).st_size == len(data)


def test_one_byte_over_the_limit_is_refused(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 101)
    with pytest.raises(FileRefused, match="is 101 bytes, over the limit of 100 bytes for config files"):
        read_regular(path, 100, what="config file")


def test_a_stream_is_read_up_to_its_limit():
    assert read_stream(io.BytesIO(b"abc"), 3) == b"abc"
    with pytest.raises(FileRefused, match="standard input: more than the limit of 2 bytes for files"):
        read_stream(io.BytesIO(b"abc"), 2)

"""The daemon as a real process for fault tests: its output read as it comes, with arrival times.

A fault test has to say *when* something happened relative to the fault it injected (events still
arriving after the disk filled, the exit within so many seconds of SIGTERM), so both pipes are read on
their own threads and every line keeps the monotonic time it arrived. Also here: the systemd notify
socket the daemon reports READY to, config files, the moving-face clip, and the seq bookkeeping of
MQTT face events.

    with DaemonProcess("--config", str(path), env=notify.env) as daemon:
        daemon.wait_events(10)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.processes import edge_fer

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Line:
    t: float  # time.monotonic() when the line arrived
    text: str


class DaemonProcess:
    """``python -m edge_fer ARGS`` with stdout (events) and stderr (logs) collected line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, preexec_fn: Callable[[], None] | None = None):
        self.started = time.monotonic()
        self.proc = edge_fer(*args, env=env, preexec_fn=preexec_fn)
        self.out: list[Line] = []
        self.err: list[Line] = []
        self._cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(stream, into), name=f"test-daemon-{name}", daemon=True)
            for name, stream, into in (("stdout", self.proc.stdout, self.out), ("stderr", self.proc.stderr, self.err))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, into: list[Line]) -> None:
        for text in stream:
            with self._cond:
                into.append(Line(time.monotonic(), text.rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stderr(self) -> str:
        with self._cond:
            return "\n".join(line.text for line in self.err)

    def events(self) -> list[dict]:
        """Face events printed on stdout so far (every stdout line is one JSON event)."""
        with self._cond:
            return [json.loads(line.text) for line in self.out if line.text.strip()]

    def event_lines(self) -> list[Line]:
        with self._cond:
            return [line for line in self.out if line.text.strip()]

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: predicate() or self.proc.poll() is not None, timeout)
            if predicate():
                return
        state = f"exited with {self.proc.returncode}" if self.proc.poll() is not None else "still running"
        tail = "\n".join(line.text for line in self.err[-30:])
        raise AssertionError(f"timed out waiting for {what} (daemon {state}, waited={ok}); stderr tail:\n{tail}")

    def wait_events(self, n: int, timeout: float = 60.0) -> list[dict]:
        self._wait(lambda: sum(bool(line.text.strip()) for line in self.out) >= n, timeout, f"{n} events on stdout")
        return self.events()

    def wait_stderr(self, text: str, timeout: float = 30.0) -> Line:
        found: list[Line] = []

        def seen() -> bool:
            found[:] = [line for line in self.err if text in line.text]
            return bool(found)

        self._wait(seen, timeout, f"{text!r} on stderr")
        return found[0]

    def wait_stderr_count(self, text: str, n: int, timeout: float = 30.0) -> list[Line]:
        """Wait until ``text`` has appeared on ``n`` log lines (the second reconnect, say); those lines."""
        self._wait(lambda: sum(text in line.text for line in self.err) >= n, timeout, f"{n} x {text!r} on stderr")
        with self._cond:
            return [line for line in self.err if text in line.text]

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Wait for the exit and for both pipes to be read to their end; the exit code."""
        rc = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(10)
        return rc

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for reader in self._readers:
            reader.join(5)

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NotifySocket:
    """A stand-in for systemd's ``$NOTIFY_SOCKET`` (abstract namespace: no path length limits)."""

    def __init__(self) -> None:
        self.name = f"@edge-fer-test-{uuid.uuid4().hex[:12]}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(b"\0" + self.name[1:].encode())
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="test-notify", daemon=True)
        self._thread.start()

    @property
    def env(self) -> dict[str, str]:
        return {"NOTIFY_SOCKET": self.name}

    def _loop(self) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._cond:
                self.messages.append((time.monotonic(), data.decode(errors="replace")))
                self._cond.notify_all()

    def wait_for(self, field: str, timeout: float = 30.0) -> float:
        """When a datagram carrying ``field`` (e.g. ``READY=1``) arrived."""
        with self._cond:
            ok = self._cond.wait_for(lambda: any(field in m.split("\n") for _, m in self.messages), timeout)
            assert ok, f"no {field} from the daemon; got {[m for _, m in self.messages]}"
            return next(t for t, m in self.messages if field in m.split("\n"))

    def close(self) -> None:
        self._closed = True
        self._thread.join(2)
        self.sock.close()


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_face_clip(path: Path, frames: int = 300, fps: float = 30.0, size: tuple[int, int] = (320, 240)) -> Path:
    """A real clip: the astronaut's face (from the shipped photo) sliding across a photo background."""
    import cv2

    from tests.photos import moving_face_scenes

    width, height = size
    scenes = moving_face_scenes(
        frames, width, height, start=(width * 0.3, height * 0.5), end=(width * 0.7, height * 0.48), face_px=80
    )
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for scene in scenes:
        writer.write(scene.bgr)
    writer.release()
    return path


def face_events(payloads: Iterable[bytes]) -> list[dict]:
    return [json.loads(p) for p in payloads]


def check_seqs(received: list[int], expected_last: int) -> tuple[list[int], int]:
    """(missing seqs, duplicate count) of ``received`` against the full run 0..expected_last."""
    seen = set(received)
    missing = [s for s in range(expected_last + 1) if s not in seen]
    return missing, len(received) - len(seen)


def first_occurrences(seqs: Iterable[int]) -> list[int]:
    """Each seq at its first arrival, in arrival order: increasing when nothing came late."""
    seen: set[int] = set()
    out = []
    for s in seqs:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out

"""sd_notify datagrams on real sockets, watchdog pacing, and the stop signals in a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from edge_fer.runtime.service import Notifier
from tests.clock import FakeClock

ROOT = Path(__file__).resolve().parents[2]


class NotifySocket:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(2.0)

    def receive(self) -> str:
        return self.sock.recv(4096).decode()

    def drain(self, wait: float) -> list[str]:
        self.sock.settimeout(wait)
        out = []
        try:
            while True:
                out.append(self.sock.recv(4096).decode())
        except TimeoutError:
            return out


@pytest.fixture(params=["path", "abstract"])
def systemd(request, tmp_path):
    if request.param == "path":
        address, env_value = str(tmp_path / "notify"), str(tmp_path / "notify")
    else:
        name = f"edge-fer-test-{uuid.uuid4().hex}"
        address, env_value = b"\0" + name.encode(), "@" + name
    receiver = NotifySocket(address)
    yield receiver, env_value
    receiver.sock.close()


def test_ready_status_watchdog_stopping_arrive(systemd):
    receiver, env_value = systemd
    notifier = Notifier({"NOTIFY_SOCKET": env_value})
    assert notifier.enabled
    assert notifier.ready(status="2 cameras, 14.8 fps")
    assert receiver.receive() == "READY=1\nSTATUS=2 cameras, 14.8 fps"
    assert notifier.status("cam0 reconnecting\n(attempt 3)")
    assert receiver.receive() == "STATUS=cam0 reconnecting (attempt 3)"
    assert notifier.watchdog()
    assert receiver.receive() == "WATCHDOG=1"
    assert notifier.extend_timeout(20)
    assert receiver.receive() == "EXTEND_TIMEOUT_USEC=20000000"
    assert notifier.stopping()
    assert receiver.receive() == "STOPPING=1"
    notifier.close()


def test_everything_is_a_no_op_outside_systemd():
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.watchdog_interval() is None
    assert not notifier.ready() and not notifier.watchdog() and not notifier.maybe_watchdog(1e9)
    assert not notifier.status("x") and not notifier.stopping()


def test_send_failure_is_logged_once_and_never_raises(tmp_path, caplog):
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    with caplog.at_level("WARNING", logger="edge_fer.service"):
        assert not notifier.ready()
        assert not notifier.watchdog()
        assert not notifier.stopping()
    warnings = [r for r in caplog.records if r.name == "edge_fer.service"]
    assert len(warnings) == 1 and "cannot notify systemd" in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),  # meant for another process
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "x"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_parsing(env, expected):
    notifier = Notifier({"NOTIFY_SOCKET": "/run/systemd/notify", **env})
    assert notifier.watchdog_interval() == expected
    assert notifier.watchdog_period == (expected / 2 if expected else None)


def test_no_watchdog_interval_without_a_notify_socket():
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_interval() is None


def test_maybe_watchdog_pings_at_half_the_interval(systemd):
    receiver, env_value = systemd
    notifier = Notifier({"NOTIFY_SOCKET": env_value, "WATCHDOG_USEC": "10000000"})  # 10 s: ping every 5 s
    sent = [t for t in (x * 0.5 for x in range(41)) if notifier.maybe_watchdog(now=100.0 + t)]
    assert sent == [0.0, 5.0, 10.0, 15.0, 20.0]
    assert receiver.drain(0.2) == ["WATCHDOG=1"] * 5


def test_maybe_watchdog_is_cheap_enough_for_every_loop_turn(systemd):
    _, env_value = systemd
    notifier = Notifier({"NOTIFY_SOCKET": env_value, "WATCHDOG_USEC": "30000000"})
    notifier.maybe_watchdog()
    start = time.perf_counter()
    for _ in range(100_000):
        notifier.maybe_watchdog()
    assert (time.perf_counter() - start) / 100_000 < 20e-6  # well under a frame's time


def test_a_stalled_loop_stops_the_pings(systemd):
    receiver, env_value = systemd
    notifier = Notifier({"NOTIFY_SOCKET": env_value, "WATCHDOG_USEC": "100000"})  # ping every 50 ms
    clock = FakeClock(start=0.0)  # the loop's time: 10 ms turns, stepped by the test
    stall, hung, release = threading.Event(), threading.Event(), threading.Event()

    def loop():  # the inference loop's shape: wait for work with a timeout, ping, process
        while not release.is_set():
            notifier.maybe_watchdog(clock.monotonic())
            if stall.is_set():
                hung.set()
                release.wait()  # a hung camera read or a deadlock
            clock.sleep(0.01)

    worker = threading.Thread(target=loop, name="fake-inference")
    worker.start()
    try:
        clock.run_until(lambda: clock.monotonic() >= 0.5 - 1e-9)
        assert len(receiver.drain(0.05)) in (10, 11)  # pinging while healthy: every 50 ms for 0.5 s
        stall.set()
        clock.run_until(hung.is_set)  # at most one more ping from the turn that stalled
        receiver.drain(0.05)
        clock.advance(0.6)
        assert receiver.drain(0.6) == []  # stalled: silence, so systemd's watchdog fires
    finally:
        release.set()
        clock.run_until(lambda: not worker.is_alive())  # its last 10 ms turn, then it sees the release


def run_signal_child(tmp_path: Path, body: str, signals: list[int]) -> subprocess.CompletedProcess:
    """Run a child that installs the handlers, prints READY, then runs ``body``; send it ``signals``."""
    script = tmp_path / "child.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, threading, time
            from edge_fer.runtime.service import install_signal_handlers
            stop = threading.Event()
            install_signal_handlers(stop)
            print("READY", flush=True)
            """
        )
        + textwrap.dedent(body)
    )
    child = subprocess.Popen(
        [sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "READY"
        for signum in signals:
            child.send_signal(signum)
            time.sleep(0.3)
        out, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def test_first_signal_sets_the_stop_event(tmp_path):
    result = run_signal_child(
        tmp_path,
        """
        print("stopped" if stop.wait(10) else "timeout", flush=True)
        """,
        [signal.SIGTERM],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["stopped"]
    assert "SIGTERM received, stopping (send it again to exit at once)" in result.stderr


def test_second_signal_forces_exit_even_when_the_main_thread_is_stuck(tmp_path):
    # The main thread ignores the stop event and blocks in C (a read that never returns); only the
    # relay thread can act on the second signal.
    result = run_signal_child(
        tmp_path,
        """
        import os
        r, w = os.pipe()
        os.read(r, 1)
        print("not reached", flush=True)
        """,
        [signal.SIGINT, signal.SIGINT],
    )
    assert result.returncode == 128 + signal.SIGINT
    assert "not reached" not in result.stdout
    assert "second stop signal (SIGINT), exiting without cleanup" in result.stderr


def test_install_signal_handlers_refuses_other_threads():
    from edge_fer.runtime.service import install_signal_handlers

    errors = []

    def other():
        try:
            install_signal_handlers(threading.Event())
        except RuntimeError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=other, name="not-main")
    thread.start()
    thread.join()
    assert errors == ["install_signal_handlers must be called from the main thread"]

"""The network between the daemon and its broker fails: a silent stall (only the keepalive can tell) and a
cut (every connection reset, new ones refused). The daemon talks to the broker through a TCP proxy the test
partitions; a QoS 1 subscriber with a persistent session sits on the broker itself, on the healthy side."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time

import pytest

from tests.mosquitto import Subscriber
from tests.reliability.harness import DaemonProcess, check_seqs, first_occurrences, write_config
from tests.reliability.proxy import TcpProxy

DEVICE = "partitioned"
FACE = f"edge-fer/{DEVICE}/cam0/face"
KEEPALIVE = 2


def _echo(conn: socket.socket) -> None:
    with conn:
        try:
            while data := conn.recv(1024):
                conn.sendall(data)
        except OSError:  # the proxy reset us: that is the point of the test
            pass


def echo_server() -> tuple[socket.socket, int]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), name="test-echo-conn", daemon=True).start()

    threading.Thread(target=serve, name="test-echo", daemon=True).start()
    return server, server.getsockname()[1]


def test_the_proxy_really_stalls_and_cuts():
    server, port = echo_server()
    with TcpProxy(port) as proxy, socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as conn:
        conn.sendall(b"a")
        assert conn.recv(10) == b"a"
        proxy.stall()
        conn.sendall(b"b")
        conn.settimeout(0.5)
        with pytest.raises(TimeoutError):
            conn.recv(10)  # silence, and no close either
        proxy.heal()
        conn.settimeout(2)
        assert conn.recv(10) == b"b"  # what waited is delivered
        proxy.cut()
        with pytest.raises(ConnectionResetError):
            conn.recv(10)
        # refused at connect, at send or at receive, depending on timing: all are the cut
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as refused:
            refused.sendall(b"x")
            refused.recv(10)
    server.close()


def run_through(proxy: TcpProxy, tmp_path, fault) -> None:
    """Run the daemon through ``proxy``; ``fault(daemon)`` partitions and heals; then check every seq arrived."""
    broker_port = proxy.upstream_port
    sub = Subscriber(broker_port, [FACE], client_id=f"partition-{fault.__name__}").start()
    path = write_config(
        tmp_path / "edge-fer.yaml",
        {
            "device": DEVICE,
            "cameras": [{"name": "cam0", "source": "demo"}],
            "events": {"mode": "every_frame"},
            "output": {"stdout": "on"},
            "mqtt": {"url": f"mqtt://127.0.0.1:{proxy.port}", "keepalive": KEEPALIVE},
        },
    )
    try:
        with DaemonProcess("--config", str(path)) as daemon:
            daemon.wait_stderr("MQTT: connected to")
            sub.wait_count(FACE, 20, timeout=30)
            fault(daemon)
            daemon.wait_stderr_count("MQTT: connected to", 2, timeout=30)  # reconnected after the heal
            daemon.wait_events(len(daemon.events()) + 20)
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(20) == 0, daemon.stderr
        printed = daemon.events()
        n = len(printed)
        assert [e["seq"] for e in printed] == list(range(n))
        seqs = [json.loads(m.payload)["seq"] for m in sub.wait_count(FACE, n, timeout=20)]
    finally:
        sub.stop()
    missing, duplicates = check_seqs(seqs, n - 1)
    assert missing == [], f"lost seqs {missing[:20]}"
    assert first_occurrences(seqs) == list(range(n))
    assert duplicates <= 20, "only the unacknowledged in-flight window is sent twice"
    assert "Traceback" not in daemon.stderr


@pytest.mark.slow
def test_a_stalled_network_is_noticed_by_the_keepalive_and_nothing_is_lost(make_broker, tmp_path):
    def stall(daemon: DaemonProcess) -> None:
        proxy.stall()
        t0 = time.monotonic()
        lost = daemon.wait_stderr("connection lost", timeout=2 * KEEPALIVE + 5)
        # paho pings after one quiet keepalive and gives up after a second one without an answer
        assert lost.t - t0 <= 2 * KEEPALIVE + 2.0, f"noticed after {lost.t - t0:.1f} s"
        time.sleep(1.0)  # still silent: the first reconnect attempt hangs in the stall too
        proxy.heal()

    broker = make_broker()
    with TcpProxy(broker.port) as proxy:
        run_through(proxy, tmp_path, stall)


@pytest.mark.slow
def test_a_cut_connection_reconnects_after_the_network_heals_and_nothing_is_lost(make_broker, tmp_path):
    def cut(daemon: DaemonProcess) -> None:
        proxy.cut()
        daemon.wait_stderr("connection lost", timeout=5)
        time.sleep(2.0)  # reconnect attempts are refused meanwhile
        assert proxy.refusing
        proxy.heal()

    broker = make_broker()
    with TcpProxy(broker.port) as proxy:
        run_through(proxy, tmp_path, cut)

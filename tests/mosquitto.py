"""A real Mosquitto broker for tests, on a free loopback port, with start/stop/kill/restart.

Mosquitto cannot listen on port 0, so a free port is found by binding a socket and closing it again. The
broker runs as the current user (``user root`` when tests run as root: otherwise mosquitto switches to the
``mosquitto`` user, which cannot read files under pytest's private tmp directories).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

from tests.wait import wait_until

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")
OPENSSL = shutil.which("openssl")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class TlsFiles:
    """A CA and certificates signed by it; ``other_cert`` names a different host than 127.0.0.1."""

    ca: Path
    server_cert: Path
    server_key: Path
    other_cert: Path
    other_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {result.stderr.strip()}")


def _signed_cert(d: Path, name: str, subject: str, san: str | None, usage: str) -> None:
    ext = d / f"{name}.ext"
    lines = [f"extendedKeyUsage={usage}"] + ([f"subjectAltName={san}"] if san else [])
    ext.write_text("\n".join(lines) + "\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d)  # fmt: skip
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-out", f"{name}.crt", "-extfile", ext.name, cwd=d)  # fmt: skip


def make_tls_files(d: Path) -> TlsFiles:
    """Generate a throwaway CA, a server certificate for 127.0.0.1/localhost, one for another host, and a
    client certificate, with the openssl command line tool."""
    d.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=edge-fer test CA", cwd=d)  # fmt: skip
    _signed_cert(d, "server", "/CN=127.0.0.1", "IP:127.0.0.1,DNS:localhost", "serverAuth")
    _signed_cert(d, "other", "/CN=other.example", "DNS:other.example", "serverAuth")
    _signed_cert(d, "client", "/CN=edge-fer-client", None, "clientAuth")
    return TlsFiles(
        ca=d / "ca.crt",
        server_cert=d / "server.crt",
        server_key=d / "server.key",
        other_cert=d / "other.crt",
        other_key=d / "other.key",
        client_cert=d / "client.crt",
        client_key=d / "client.key",
    )


class Mosquitto:
    """One broker process. ``port`` is the plain listener; ``tls_port`` the TLS one when ``tls`` is given."""

    def __init__(
        self,
        workdir: Path,
        *,
        persistence: bool = False,
        users: dict[str, str] | None = None,
        tls: tuple[Path, Path, Path] | None = None,  # (ca, cert, key) for the TLS listener
        require_client_cert: bool = False,
    ) -> None:
        if MOSQUITTO is None:
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.log_path = workdir / "mosquitto.log"
        self.proc: subprocess.Popen | None = None
        lines = ["per_listener_settings false", f"allow_anonymous {'false' if users else 'true'}"]
        lines += [
            "max_queued_messages 100000",
            "max_inflight_messages 100",
            "log_type all",
            f"log_dest file {workdir / 'mosquitto.log'}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            lines.append("user root")
        if persistence:
            (workdir / "db").mkdir(exist_ok=True)
            lines += ["persistence true", f"persistence_location {workdir / 'db'}/", "autosave_interval 0"]
        if users:
            if MOSQUITTO_PASSWD is None:
                raise RuntimeError("mosquitto_passwd is not installed")
            pw = workdir / "passwords"
            pw.touch(mode=0o600)
            for user, password in users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(pw), user, password], check=True, capture_output=True)
            lines.append(f"password_file {pw}")
        lines.append(f"listener {self.port} 127.0.0.1")
        if tls:
            ca, cert, key = tls
            lines += [f"listener {self.tls_port} 127.0.0.1", f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
            lines.append(f"require_certificate {'true' if require_client_cert else 'false'}")
        self.config_path = workdir / "mosquitto.conf"
        self.config_path.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> Mosquitto:
        assert not self.running, "broker already running"
        with (self.workdir / "stderr.log").open("ab") as err:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.config_path)], stdout=err, stderr=err)
        ports = [p for p in (self.port, self.tls_port) if p]

        def listening() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited with {self.proc.returncode}:\n{self.log_text()[-2000:]}{self.stderr()}"
                )
            try:
                socket.create_connection(("127.0.0.1", ports[0]), timeout=0.2).close()
            except OSError:
                return False
            ports.pop(0)
            return not ports

        try:
            wait_until(listening, timeout, 0.05)
        except AssertionError:
            raise RuntimeError(f"mosquitto did not listen on {ports[0]}:\n{self.log_text()[-2000:]}") from None
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: a clean broker exit that saves the persistence database."""
        if self.running:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: the broker vanishes without saving anything."""
        if self.running:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def stderr(self) -> str:
        path = self.workdir / "stderr.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def tls_client_context(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


class Subscriber:
    """A test subscriber with a fixed client id, a persistent session and QoS 1, so the broker keeps its queue
    across a broker restart (with persistence) and a lost message is the publisher's fault, not the test's."""

    def __init__(
        self, port: int, topics: list[str], client_id: str | None = None, auth: tuple[str, str] | None = None
    ) -> None:
        self.client_id = client_id or f"test-sub-{uuid.uuid4().hex[:8]}"
        self.port = port
        self.topics = topics
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False, protocol=mqtt.MQTTv311
        )
        if auth is not None:
            self.client.username_pw_set(*auth)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 0.5)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client, userdata, msg) -> None:
        with self._cond:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def start(self) -> Subscriber:
        self.client.connect_async("127.0.0.1", self.port, keepalive=5)
        self.client.loop_start()
        assert self._subscribed.wait(10), "test subscriber did not subscribe"
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def on(self, topic: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 10.0) -> list[Received]:
        with self._cond:
            ok = self._cond.wait_for(lambda: predicate(self.messages), timeout)
            assert ok, f"timed out; got {len(self.messages)} messages: {[m.topic for m in self.messages[-5:]]}"
            return list(self.messages)

    def wait_count(self, topic: str, n: int, timeout: float = 10.0) -> list[Received]:
        self.wait_for(lambda ms: sum(m.topic == topic for m in ms) >= n, timeout)
        return self.on(topic)


def clear_retained(port: int, timeout: float = 5.0) -> list[str]:
    """Delete every retained message on the broker at ``port``; the topics that had one.

    Tests that share one broker must not see what an earlier test retained (an ``offline``
    availability, a camera state). Retained messages reach a new subscription before anything
    published after its SUBACK, so once our own marker message comes back, all of them have
    arrived: no waiting on a guess.
    """
    marker = f"test-wipe/{uuid.uuid4().hex}"
    retained: list[str] = []
    subscribed, seen_marker = threading.Event(), threading.Event()

    def on_message(client, userdata, msg) -> None:
        if msg.topic == marker:
            seen_marker.set()
        elif msg.retain and msg.payload:
            retained.append(msg.topic)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-wipe-{marker[-8:]}", protocol=mqtt.MQTTv311)
    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.connect("127.0.0.1", port, keepalive=5)
    client.loop_start()
    try:
        client.subscribe("#", qos=1)
        assert subscribed.wait(timeout), "clear_retained: no SUBACK"
        client.publish(marker, b"x", qos=1)
        assert seen_marker.wait(timeout), "clear_retained: the marker did not come back"
        for topic in retained:
            client.publish(topic, b"", qos=1, retain=True).wait_for_publish(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return retained

"""Security promises checked on the running daemon: the browser preview stays on this machine unless told
otherwise, its token is enforced, no URL reaches a file, and the MQTT password (from any of its sources) never
shows up in the logs at debug level nor in ``check-config``'s output."""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import ipaddress
import json
import re
import signal
import socket
import struct
import uuid
from pathlib import Path

import pytest

from edge_fer.cli import main
from tests.mosquitto import MOSQUITTO_PASSWD, Subscriber, free_port
from tests.reliability.harness import DaemonProcess, write_config

SIOCGIFADDR = 0x8915


def non_loopback_ipv4() -> str | None:
    """An IPv4 address of this machine that is not loopback (read from the interfaces, no traffic sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
            address = socket.inet_ntoa(packed[20:24])
            if not ipaddress.ip_address(address).is_loopback:
                return address
    return None


def start_preview(tmp_path: Path, **http) -> tuple[DaemonProcess, int]:
    path = write_config(
        tmp_path / "edge-fer.yaml",
        {"cameras": [{"name": "cam0", "source": "demo"}], "http": {"enabled": True, "port": 0, **http}},
    )
    daemon = DaemonProcess("--config", str(path), "--log-level", "debug")
    line = daemon.wait_stderr("HTTP preview at http://")
    port = int(re.search(r"HTTP preview at http://[^/]*:(\d+)/", line.text).group(1))
    daemon.wait_events(1)
    return daemon, port


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read() if not path.startswith("/stream/") else b""
    finally:
        conn.close()


def raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        with contextlib.suppress(OSError):
            while data := sock.recv(65536):
                chunks.append(data)
        return b"".join(chunks)


TRAVERSALS = [
    "/../../../../etc/passwd",
    "/static/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/..%2f..%2f..%2fetc%2fpasswd",
    "//etc/passwd",
    "/preview.js/../../../pyproject.toml",
    "/edge_fer/config/settings.py",
    "/stream/..%2f..%2fetc%2fpasswd.mjpg",
    "/stream/../../etc/passwd",
    "/static/preview.js%00.html",
    "/\\..\\..\\etc\\passwd",
]


def test_preview_listens_on_loopback_only_by_default_and_serves_no_files(tmp_path):
    address = non_loopback_ipv4()
    daemon, port = start_preview(tmp_path)
    with daemon:
        assert get(port, "/healthz")[0] == 200
        if address is not None:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((address, port), timeout=3).close()
        for path in TRAVERSALS:
            response = raw(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            status = int(response.split(b" ", 2)[1])
            assert status in (400, 404), (path, response[:200])
            assert b"root:" not in response and b"[project]" not in response and b"pydantic" not in response
        assert get(port, "/healthz")[0] == 200
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(20) == 0
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try the preview on (traversal checked)")


def test_the_token_guards_everything_but_health_and_never_reaches_the_log(tmp_path):
    token = f"tok-{uuid.uuid4().hex}"
    daemon, port = start_preview(tmp_path, token=token)
    with daemon:
        for path in ("/", "/stats.json", "/events.json", "/stream/cam0.mjpg", "/preview.js"):
            assert get(port, path)[0] == 401, path
            assert get(port, f"{path}?token=wrong-{token}")[0] == 401, path
            assert get(port, path, {"Authorization": f"Bearer {token[:-1]}"})[0] == 401, path
        assert get(port, f"/stats.json?token={token}")[0] == 200
        status, body = get(port, "/stats.json", {"Authorization": f"Bearer {token}"})
        assert status == 200 and "cameras" in json.loads(body)["pipeline"]
        assert get(port, "/healthz")[0] == 200
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(20) == 0
    assert "GET /stats.json" in daemon.stderr, "request lines are logged at debug level..."
    assert token not in daemon.stderr, "...but the token in them is masked"


# -- the MQTT password -----------------------------------------------------------------------------------------

USER = "edge"


@pytest.fixture
def password() -> str:
    return f"Pw/{uuid.uuid4().hex}@x"  # '/' and '@' defeat the URL masking patterns; the redactor must know it


@pytest.fixture
def secured_broker(make_broker, password):
    if MOSQUITTO_PASSWD is None:
        pytest.skip("needs mosquitto_passwd")
    return make_broker(users={USER: password, "reader": "reader-pw"})


def mqtt_section(kind: str, tmp_path: Path, broker, password: str) -> tuple[dict, dict[str, str], list[str]]:
    """The mqtt: section, environment and extra arguments for one way of giving the password."""
    base = {"url": f"mqtt://{USER}@127.0.0.1:{broker.port}", "keepalive": 5}
    if kind == "password_env":
        return {**base, "password_env": "RELIABILITY_MQTT_PW"}, {"RELIABILITY_MQTT_PW": password}, []
    if kind == "password_file":
        secret = tmp_path / "mqtt-password"
        secret.write_text(password + "\n")
        secret.chmod(0o600)
        return {**base, "password_file": str(secret)}, {}, []
    if kind == "credential":
        creds = tmp_path / "credentials"
        creds.mkdir()
        (creds / "mqtt-password").write_text(password)
        return {**base, "credential": "mqtt-password"}, {"CREDENTIALS_DIRECTORY": str(creds)}, []
    if kind == "url_substitution":
        url = f"mqtt://{USER}:${{RELIABILITY_MQTT_PW}}@127.0.0.1:{broker.port}"
        return {"url": url, "keepalive": 5}, {"RELIABILITY_MQTT_PW": password}, []
    assert kind == "command_line_url"
    return {"keepalive": 5}, {}, ["--mqtt", f"mqtt://{USER}:{password}@127.0.0.1:{broker.port}"]


@pytest.mark.parametrize(
    "kind", ["password_env", "password_file", "credential", "url_substitution", "command_line_url"]
)
def test_no_secret_reaches_the_log_at_debug_from_any_source(
    secured_broker, password, tmp_path, capsys, monkeypatch, kind
):
    """One run per way of giving the MQTT password, each also holding every other secret a config can: a camera
    URL's password from the environment, the preview token and the metrics token, both used by clients (in
    the query, as a bearer, %-encoded differently, and guessed short). Nothing of them in the debug log, nor
    in ``check-config``'s output."""
    section, env, args = mqtt_section(kind, tmp_path, secured_broker, password)
    camera_pw, token, metrics_token = (f"{what}-{uuid.uuid4().hex}" for what in ("cam", "tok", "met"))
    env = {**env, "RELIABILITY_CAM_PW": camera_pw}
    path = write_config(
        tmp_path / "edge-fer.yaml",
        {
            "device": "secure",
            "cameras": [
                {"name": "cam0", "source": "demo"},
                {"name": "gate", "source": f"http://viewer:${{RELIABILITY_CAM_PW}}@127.0.0.1:{free_port()}/mjpg"},
            ],
            "mqtt": section,
            "http": {"enabled": True, "port": 0, "token": token},
            "metrics": {"enabled": True, "port": 0, "token": metrics_token},
        },
    )
    sub = Subscriber(secured_broker.port, ["edge-fer/secure/#"], auth=("reader", "reader-pw")).start()
    try:
        with DaemonProcess("--config", str(path), "--log-level", "debug", *args, env=env) as daemon:
            sub.wait_for(lambda ms: any(m.topic.endswith("/face") for m in ms), timeout=30)  # authenticated
            daemon.wait_stderr("gate: reconnecting")  # the camera's URL, password and all, went through the log
            preview = int(re.search(r":(\d+)/", daemon.wait_stderr("HTTP preview at http://").text).group(1))
            metrics = int(re.search(r":(\d+)/", daemon.wait_stderr("metrics: /metrics").text).group(1))
            assert get(preview, f"/stats.json?token={token}")[0] == 200
            assert get(preview, "/stats.json", {"Authorization": f"Bearer {token}"})[0] == 200
            assert get(preview, f"/stats.json?token=%74{token[1:]}")[0] == 200  # 't' %-encoded
            assert get(preview, f"/stats.json?token={token[:-1]}")[0] == 401  # a guess one short
            assert get(metrics, "/metrics", {"Authorization": f"Bearer {metrics_token}"})[0] == 200
            assert get(metrics, "/metrics", {"Authorization": f"Bearer {metrics_token[:-1]}"})[0] == 401
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(20) == 0, daemon.stderr
    finally:
        sub.stop()
    assert "DEBUG" in daemon.stderr and "MQTT: connected to" in daemon.stderr
    assert "viewer:***@" in daemon.stderr  # the camera URL was logged, masked
    for secret in (password, camera_pw, token[:-1], metrics_token[:-1]):  # a guess's text is within the secret
        assert secret not in daemon.stderr
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["check-config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "mqtt:" in out
    for secret in (password, camera_pw, token, metrics_token):
        assert secret not in out + err

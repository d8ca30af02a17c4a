"""/metrics and /healthz on their own listener, against a real daemon: the Prometheus parser reads every line,
the counters are those of /stats.json's snapshot, no image or event is reachable there, a token is enforced,
and idle connections cannot keep the health check from being answered."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.mosquitto import free_port
from tests.reliability.harness import DaemonProcess
from tests.wait import wait_until

pytestmark = pytest.mark.slow


def get(port: int, path: str, token: str | None = None, timeout: float = 5.0) -> tuple[int, bytes, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers.get("Content-Type", "")


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def documented_prometheus() -> list[dict]:
    """The scrape config and alert rules in docs/metrics.md (blocks tagged ``yaml prometheus``)."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text(encoding="utf-8")
    return [yaml.safe_load(block) for block in re.findall(r"^```yaml prometheus\n(.*?)^```", text, re.M | re.S)]


def write_config(tmp_path: Path, metrics: dict, broker_url: str | None = None, http_port: int | None = None) -> Path:
    data = {
        "device": "metricsdev",
        "cameras": [{"name": "cam0", "source": "demo"}],
        "output": {"stdout": "off"},
        "stats": {"interval": 1.0},
        "metrics": {"enabled": True, "port": metrics.pop("port"), **metrics},
    }
    if broker_url:
        data["mqtt"] = {"url": broker_url}
    if http_port:
        data["http"] = {"enabled": True, "port": http_port}
    path = tmp_path / "edge-fer.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_metrics_parse_and_agree_with_stats_json_and_serve_nothing_else(broker, tmp_path):
    port, http_port = free_port(), free_port()
    config = write_config(tmp_path, {"port": port}, broker.url, http_port)
    with DaemonProcess("--config", str(config)) as daemon:
        daemon.wait_stderr("metrics: /metrics and /healthz on http://127.0.0.1:")
        wait_until(lambda: get(port, "/healthz")[0] == 200, 60, what="a healthy daemon")
        start = ("edge_fer_events_total", (("camera", "cam0"), ("type", "start")))
        wait_until(lambda: samples(get(port, "/metrics")[1].decode())[start] >= 1, 60, what="a start event counted")
        # The same snapshot on both listeners: equal uptime_s means equal counters.
        for _ in range(50):
            status, body, ctype = get(port, "/metrics")
            stats = json.loads(get(http_port, "/stats.json")[1])["pipeline"]
            metrics = samples(body.decode())
            if metrics[("edge_fer_uptime_seconds", ())] == stats["uptime_s"]:
                break
            time.sleep(0.1)
        else:
            pytest.fail("never caught both listeners on the same snapshot")
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
        cam = stats["cameras"]["cam0"]
        for key, name in (("captured", "captured"), ("processed", "processed"), ("dropped", "dropped"),
                          ("skipped", "skipped")):  # fmt: skip
            assert metrics[(f"edge_fer_frames_{name}_total", (("camera", "cam0"),))] == cam[key]
        mqtt = stats["mqtt"]
        assert metrics[("edge_fer_mqtt_published_total", ())] == mqtt["published"]
        assert metrics[("edge_fer_mqtt_acknowledged_total", ())] == mqtt["acked"]
        assert metrics[("edge_fer_mqtt_outbox_messages", ())] == mqtt["buffered"]
        assert metrics[("edge_fer_mqtt_connected", ())] == 1
        assert metrics[("edge_fer_mqtt_outbox_oldest_age_seconds", ())] < 5.0, "a connected outbox does not age"
        assert metrics[("edge_fer_healthy", ())] == 1
        assert metrics[("edge_fer_detection_seconds_count", (("camera", "cam0"),))] > 0
        kinds = {dict(k[1])["type"] for k in metrics if k[0] == "edge_fer_events_total"}
        assert kinds == {"start", "update", "change", "end", "face"}, "every type has a series from the start"
        rules = documented_prometheus()
        assert rules and rules[0]["scrape_configs"][0]["static_configs"][0]["targets"]
        used = set(re.findall(r"edge_fer_\w+", json.dumps(rules[1])))
        assert used and used <= {name for name, _ in metrics}, f"alert rules name unknown metrics: {used}"
        info = [k for k in metrics if k[0] == "edge_fer_info"]
        assert dict(info[0][1])["device"] == "metricsdev"
        for path in ("/", "/stream.mjpg?camera=cam0", "/snapshot.jpg", "/stats.json", "/events.json", "/x/../metrics"):
            code, body, _ = get(port, path)
            assert code == 404 and b"\xff\xd8" not in body, path
        assert get(port, "/metrics")[0] == 200
        daemon.signal(15)
        assert daemon.wait(20) == 0, daemon.stderr


def test_a_token_is_required_when_set_and_idle_connections_do_not_block_the_health_check(tmp_path):
    port = free_port()
    config = write_config(tmp_path, {"port": port, "token": "s3cret-token"})
    with DaemonProcess("--config", str(config)) as daemon:
        daemon.wait_stderr("metrics: /metrics and /healthz")
        assert get(port, "/metrics")[0] == 401
        assert get(port, "/metrics", token="wrong")[0] == 401
        wait_until(lambda: get(port, "/healthz", token="s3cret-token")[0] == 200, 60, what="healthy")
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]  # connect, say nothing
        try:
            t0 = time.monotonic()
            code, body, _ = get(port, "/healthz", token="s3cret-token")
            assert code == 200 and json.loads(body)["ok"] is True
            assert time.monotonic() - t0 < 2.0
            code, body, _ = get(port, "/metrics", token="s3cret-token")
            assert code == 200 and text_string_to_metric_families(body.decode())
        finally:
            for s in idle:
                s.close()
        daemon.signal(15)
        assert daemon.wait(20) == 0, daemon.stderr


def test_a_taken_port_is_one_line_and_exit_78(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with DaemonProcess("--config", str(write_config(tmp_path, {"port": port}))) as daemon:
            assert daemon.wait(60) == 78
    errors = [line.text for line in daemon.err if " INFO " not in line.text]
    assert len(errors) == 1 and f"metrics: cannot listen on 127.0.0.1:{port}" in errors[0], errors

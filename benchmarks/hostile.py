"""The attacks of issue 18, replayed against the real commands: what each does now, with peak memory and time.

Each case runs the real ``edge-fer`` command (or the real preview server) on files and sockets made for real:
a FIFO, a link to /dev/zero, a 4 GB sparse file, 16 all-black 40 MP PNGs, a dead camera, a junk model, a
70,000-character device name, 300 idle TCP connections with a dripping client, and 20,000 ``online``
messages on Home Assistant's status topic (when Mosquitto is installed). Peak memory is the child's own
``ru_maxrss`` (from ``wait4``), so it is exact for each command whatever else runs on the machine. The eval
case also runs the old way (every image of a batch decoded whole before any is shrunk) in the same run,
as the reference its memory is compared with.

    python benchmarks/hostile.py            # about a minute on a 2-core machine
    python benchmarks/hostile.py --quick    # skips the 40 MP eval and the MQTT flood

Times depend on the machine's load; the outcome (exit code, first line) and the memory figures do not.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OLD_EVAL = (
    "import sys; import edge_fer.offline.evaluate as e; e.SHRINK_MARGIN = 10**6\n"
    "from edge_fer.cli import main; sys.exit(main(sys.argv[1:]))"
)


def run(args: list[str], timeout: float = 120, python: str | None = None) -> dict:
    """Exit code, seconds, peak RSS (MB) and the first stderr line of one real command."""
    cmd = [sys.executable, "-c", python, *args] if python else [sys.executable, "-m", "edge_fer", *args]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    err = proc.stderr.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(proc.pid, 0)
    timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("eval: ")]  # no progress
    return {
        "rc": proc.returncode,
        "s": round(time.monotonic() - start, 1),
        "peak_mb": round(usage.ru_maxrss / 1024),
        "traceback": "Traceback" in err,
        "first_line": (lines[0][:150] if lines else ""),
    }


def hostile_files(d: Path) -> dict[str, Path]:
    fifo, zero, sparse = d / "fifo.png", d / "zero.png", d / "sparse.png"
    os.mkfifo(fifo)
    zero.symlink_to("/dev/zero")
    with open(sparse, "wb") as f:
        f.truncate(4 << 30)
    return {"FIFO": fifo, "link to /dev/zero": zero, "4 GB sparse file": sparse}


def file_cases(d: Path) -> list[tuple[str, dict]]:
    files = hostile_files(d)
    out = []
    for name, path in files.items():
        out.append((f"analyze on a {name}", run(["analyze", str(path)])))
        out.append((f"check-config on a {name}", run(["check-config", str(path)])))
    data = d / "data" / "happy"
    data.mkdir(parents=True)
    for path in files.values():
        (data / path.name).symlink_to(path)
    out.append(("eval on a dataset of all three", run(["eval", str(d / "data"), "--model", "mini_xception"])))
    return out


def bench_cases(d: Path) -> list[tuple[str, dict]]:
    junk = d / "junk.onnx"
    junk.write_bytes(b"not a model")
    config = d / "bad-model.yaml"
    config.write_text(f"classifier:\n  models: [{junk}]\n")
    long_name = d / "long-device.yaml"
    long_name.write_text("device: " + "x" * 70_000 + "\n")
    return [
        ("bench on a dead camera", run(["bench", "--frames", "5", "--source", "/dev/video99"])),
        ("bench on a missing file", run(["bench", "--frames", "5", "--source", str(d / "missing.mp4")])),
        ("bench with a junk model", run(["bench", "--frames", "5", "--config", str(config)])),
        ("check-config, 70,000-char device", run(["check-config", str(long_name)])),
    ]


def eval_cases(d: Path) -> list[tuple[str, dict]]:
    import cv2
    import numpy as np

    big = d / "black.png"
    cv2.imwrite(str(big), np.zeros((6300, 6300, 3), np.uint8))  # 39.7 MP, under the 40 MP limit
    happy = d / "big" / "happy"
    happy.mkdir(parents=True)
    for i in range(16):
        (happy / f"{i}.png").symlink_to(big)
    args = ["eval", str(d / "big"), "--json", "--model", "mini_xception"]
    return [
        ("eval, 16 x 40 MP PNG (now)", run(args)),
        ("eval, 16 x 40 MP PNG (old way, reference)", run(args, python=OLD_EVAL)),
    ]


def preview_case() -> list[tuple[str, dict]]:
    """300 idle connections (reopened when closed) and a dripping client, against 30 requests with the token."""
    from edge_fer.outputs.web import HttpSettings, PreviewServer

    token = "benchmark-token"
    server = PreviewServer(
        HttpSettings(enabled=True, port=0, token=token), lambda: {}, lambda: (True, {}), cameras=("cam0",)
    )
    server.start()
    stop = threading.Event()
    idle: list[socket.socket] = []

    def hold() -> None:
        while not stop.is_set():
            idle[:] = [s for s in idle if not _closed(s)]
            while len(idle) < 300 and not stop.is_set():
                idle.append(socket.create_connection(("127.0.0.1", server.port)))
            stop.wait(0.05)

    def drip() -> None:
        while not stop.is_set():
            with socket.create_connection(("127.0.0.1", server.port)) as sock:
                for byte in b"GET /stats.json HTTP/1.1\r\nX: " + b"z" * 400:
                    if stop.wait(0.2):
                        return
                    try:
                        sock.sendall(bytes([byte]))
                    except OSError:
                        break

    threads = [threading.Thread(target=f, daemon=True) for f in (hold, drip)]
    for t in threads:
        t.start()
    time.sleep(3)
    times, ok = [], 0
    for i in range(30):
        path = ("/healthz", "/stats.json", "/")[i % 3]
        start = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(f"GET {path} HTTP/1.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
                ok += sock.recv(64).startswith(b"HTTP/1.0 200 ")
        except OSError:
            pass
        times.append(time.monotonic() - start)
    preview = json.loads(server.stats_json())["preview"]
    stop.set()
    for t in threads:
        t.join(5)
    for s in idle:
        s.close()
    server.stop(5)
    result = {
        "answered_200": f"{ok} of 30",
        "slowest_s": round(max(times), 3),
        "idle_connections_closed": preview["idle_connections_closed"],
        "request_heads_timed_out": preview["request_heads_timed_out"],
    }
    return [("preview: 300 idle + a dripping client", result)]


def _closed(sock: socket.socket) -> bool:
    """Whether the server is done with an idle connection (it answered 503/408 or closed it); closes it then."""
    try:
        sock.setblocking(False)
        sock.recv(4096)
    except BlockingIOError:
        return False
    except OSError:
        pass
    sock.close()
    return True


def mqtt_case(d: Path) -> list[tuple[str, dict]]:
    """20,000 `online` on homeassistant/status against a reporter with discovery, on a private Mosquitto."""
    import logging

    import paho.mqtt.client as mqtt

    from edge_fer.config.comms import MqttSettings
    from edge_fer.outputs.mqtt.reporter import MqttReporter
    from tests.mosquitto import MOSQUITTO, Mosquitto

    if MOSQUITTO is None:
        return [("MQTT: 20,000 HA online", {"skipped": "mosquitto is not installed"})]
    broker = Mosquitto(d / "broker").start()
    lines: list[str] = []

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "Home Assistant came online" in record.getMessage():
                lines.append(record.getMessage())

    handler = Count()
    logging.getLogger("edge_fer.mqtt").addHandler(handler)
    logging.getLogger("edge_fer.mqtt").setLevel(logging.INFO)
    configs: list[str] = []
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    watcher.on_message = lambda c, u, m: configs.append(m.topic)
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe("homeassistant/sensor/#")
    watcher.loop_start()
    settings = MqttSettings.from_url(broker.url, device="bench", discovery=True)
    reporter = MqttReporter(settings, ["cam0"], run_id="hostile00000")
    reporter.start()
    flooder = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    flooder.connect("127.0.0.1", broker.port)
    flooder.loop_start()
    try:
        time.sleep(1)
        start = time.monotonic()
        for info in [flooder.publish("homeassistant/status", "online", qos=1) for _ in range(20_000)]:
            info.wait_for_publish(10)
        time.sleep(7)  # past the coalescing interval, so the one trailing republish is counted
        reporter.flush(5)
        stats = reporter.mqtt_stats()
        result = {
            "log_lines": len(lines),
            "discovery_configs_published": len(configs),
            "mqtt_dropped": stats["dropped"],
            "s": round(time.monotonic() - start, 1),
        }
    finally:
        flooder.loop_stop()
        watcher.loop_stop()
        reporter.close(2)
        broker.kill()
        logging.getLogger("edge_fer.mqtt").removeHandler(handler)
    return [("MQTT: 20,000 HA online", result)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the 40 MP eval and the MQTT flood")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        d = Path(tmp)
        results = file_cases(d) + bench_cases(d)
        if not args.quick:
            results += eval_cases(d)
        results += preview_case()
        if not args.quick:
            results += mqtt_case(d)
    width = max(len(name) for name, _ in results)
    for name, result in results:
        print(f"{name:<{width}}  " + "  ".join(f"{k}={v}" for k, v in result.items()))
    failed = [name for name, r in results if r.get("traceback") or r.get("s", 0) > 60]
    if failed:
        print("FAILED (a traceback or over 60 s): " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

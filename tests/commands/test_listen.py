"""``edge-fer listen`` against a real Mosquitto: it prints events, spots a lost one, and sums up at exit."""

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.publish as mqtt_publish
import pytest

from tests.mosquitto import MOSQUITTO
from tests.outputs.mqtt.face_events import happy_then_sad, play

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="needs the mosquitto broker (apt-get install mosquitto)")
ROOT = Path(__file__).resolve().parents[2]
TOPIC = "edge-fer/kiosk-1/cam0/face"


class Listener:
    """``python -m edge_fer listen`` in a subprocess, its stderr read on a thread so we can wait for lines."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge_fer", "listen", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.err: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="listen-stderr", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._cond:
                self.err.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_err(self, text: str, timeout: float = 10.0) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(text in line for line in self.err), timeout)
        assert ok, f"no {text!r} on stderr: {self.err}"

    def finish(self, sig: int | None = None, timeout: float = 10.0) -> tuple[int, list[str]]:
        if sig is not None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout)
        out = self.proc.stdout.read()  # stderr belongs to the reader thread
        self._reader.join(timeout)
        return self.proc.returncode, out.splitlines()


def events(n: int = 4):
    return [e for _, e in play(happy_then_sad())][:n]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_prints_events_reports_the_missing_seq_and_sums_up_at_exit(broker, sig):
    listener = Listener("--mqtt", broker.url)
    try:
        listener.wait_err("listening on")
        evs = events()
        msgs = [(TOPIC, e.to_json(), 1, False) for e in (evs[0], evs[1], evs[3])]  # seq 0, 1, 3
        mqtt_publish.multiple(msgs, hostname="127.0.0.1", port=broker.port)
        listener.wait_err("GAP")
        code, out = listener.finish(sig)
    finally:
        listener.proc.kill()
    assert code == 0
    assert len(out) == 3 and [line.split()[3] for line in out] == ["0", "1", "3"]
    assert "kiosk-1/cam0 seq 0 track 1 start  happy" in out[0]
    assert "GAP kiosk-1/cam0 run a1b2c3d4e5f6: missing seq 2 (1 event)" in listener.err
    assert "summary: 1 streams, 3 events, 1 missing, 0 duplicates" in listener.err
    assert any("kiosk-1/cam0 run a1b2c3d4e5f6: 3 events, seq 0-3, 1 missing (seq 2)" in line for line in listener.err)


def test_json_mode_prints_the_payloads_and_count_ends_it(broker):
    listener = Listener("--mqtt", broker.url, "--json", "--count", "3", "--device", "kiosk-1")
    listener.wait_err("listening on")
    evs = events(3)
    mqtt_publish.multiple(
        [("edge-fer/kiosk-1/availability", "online", 1, True)] + [(TOPIC, e.to_json(), 1, False) for e in evs],
        hostname="127.0.0.1",
        port=broker.port,
    )
    code, out = listener.finish(timeout=10)
    assert code == 0
    assert [json.loads(line) for line in out] == [e.to_dict() for e in evs]
    assert "kiosk-1 is online" in listener.err  # not on stdout, which stays pure JSON
    assert "summary: 1 streams, 3 events, 0 missing, 0 duplicates" in listener.err


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--mqtt", "http://u:hunter2@host"], "invalid MQTT URL 'http://u:***@host': unsupported scheme 'http'"),
        (["--mqtt", "mqtt://host:0"], "port 0 is outside 1-65535"),
        (["--device", "Kitchen Pi"], "did you mean 'kitchen_pi'"),
        (["--prefix", "a/#"], "MQTT topic prefix 'a/#'"),
        (["--count", "0"], "--count must be at least 1"),
        (
            ["--password-file", "/nonexistent/pw", "--username", "u"],
            "--password-file: file /nonexistent/pw does not exist",
        ),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args, problem):
    result = subprocess.run(
        [sys.executable, "-m", "edge_fer", "listen", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"edge-fer listen: {problem}" or problem in result.stderr
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr


def test_control_characters_from_the_broker_are_printed_as_escapes(broker):
    """Whoever may publish can put terminal escapes (ESC, the one-byte CSI U+009B, newlines, bidi overrides) in
    topics and payloads; listen used to print them raw, so a payload could clear the screen or forge lines."""
    listener = Listener("--mqtt", broker.url, "--topic", "edge-fer/#", "--topic", "evil/#", "--count", "1")
    try:
        listener.wait_err("listening on")
        event = events(1)[0].to_dict() | {"device": "kiosk\x1b[2J\x1b]0;owned\x07", "emotion": "happy\nFAKE LINE"}
        mqtt_publish.multiple(
            [
                ("edge-fer/kiosk-1/availability", "online\x1b[31m\u009b2J", 1, False),
                ("edge-fer/kiosk-1/cam0/status", b"not json \x1b[5m\r\x7f", 1, False),
                ("evil/\u202e/topic", "\u202eevil", 1, False),  # Mosquitto refuses C0/C1 controls in topics
                (TOPIC, json.dumps(event, ensure_ascii=False), 1, False),  # last: --count 1 ends the listener
            ],
            hostname="127.0.0.1",
            port=broker.port,
        )
        code, out = listener.finish()
    finally:
        listener.proc.kill()
    assert code == 0
    text = "\n".join(out + listener.err)
    unsafe = [c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F or c == "\u202e"]
    assert not unsafe, unsafe
    assert "kiosk\\x1b[2J\\x1b]0;owned\\x07/cam0 seq 0" in out[-1] and "happy\\nFAKE LINE" in out[-1]
    assert "online\\x1b[31m\\x9b2J" in text and "not json \\x1b[5m\\r\\x7f" in text
    assert "evil/\\u202e/topic \\u202eevil" in text
    assert not any(line.startswith("FAKE LINE") for line in out)


def test_json_mode_keeps_one_valid_json_line_per_event_whatever_the_payload_holds(broker):
    listener = Listener("--mqtt", broker.url, "--json", "--count", "2")
    listener.wait_err("listening on")
    first, second = events(2)
    evil = first.to_dict() | {"camera": "cam0\u009b\u2028", "emotion": "happy\x1b[0m"}
    raw = json.dumps(evil, ensure_ascii=False, indent=1)  # literal controls, and newlines between the keys
    mqtt_publish.multiple([(TOPIC, raw, 1, False), (TOPIC, second.to_json(), 1, False)], "127.0.0.1", broker.port)
    code, out = listener.finish(timeout=10)
    assert code == 0 and len(out) == 2
    assert json.loads(out[0]) == evil and "\\u009b\\u2028" in out[0] and "\\u001b[0m" in out[0]
    assert out[1] == second.to_json()  # a safe payload is printed exactly as sent


def test_a_topic_with_escapes_is_printed_escaped():
    """Mosquitto refuses control characters in topics; another broker may pass them on."""
    import io

    from edge_fer.commands.listen import Printer

    out, err = io.StringIO(), io.StringIO()
    Printer("edge-fer", False, out, err, None).message("evil/\x1b[8m\n/topic", "\u009b2J".encode())
    assert out.getvalue() == "evil/\\x1b[8m\\n/topic \\x9b2J\n"

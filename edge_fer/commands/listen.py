"""``edge-fer listen``: a small subscriber that prints events and notices lost ones.

It doubles as the reference consumer: QoS 1, a stream per (device, camera, run_id), seq gaps reported as they
happen and summed up at exit (Ctrl-C or SIGTERM). With ``--client-id`` it keeps a persistent session, so the
broker queues events for it while it is away, which is how a consumer that must not miss events connects.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import traceback
import uuid
from typing import TextIO

# Characters a terminal acts on instead of showing: C0 and C1 controls (ESC starts colour, cursor and title
# sequences; U+009B is a one-character CSI), DEL, line separators and bidirectional overrides. Topics and
# payloads come from whoever may publish on the broker, so these are printed as escapes, never raw.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on written as an escape (``\\x1b``, ``\\n``)."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def printable_json(payload: bytes, event: dict) -> str:
    """The payload as one JSON line: as sent when it is safe to print, else the same JSON value re-written
    with those characters as ``\\uXXXX`` escapes (valid inside JSON strings, where alone they can occur)."""
    text = payload.decode("utf-8", "replace")
    if not _UNSAFE.search(text):
        return text
    compact = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", compact)


NAME = "listen"
HELP = "print edge-fer events from an MQTT broker and report lost ones (seq gaps)"
DEFAULT_URL = "mqtt://127.0.0.1:1883"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mqtt", default=DEFAULT_URL, metavar="URL", help=f"broker URL (default {DEFAULT_URL})")
    p.add_argument("--device", metavar="D", help="only this device (its topic name)")
    p.add_argument("--prefix", default="edge-fer", help="topic prefix (default edge-fer)")
    p.add_argument(
        "--topic", action="append", metavar="TOPIC", help="subscribe to TOPIC instead of the defaults (repeatable)"
    )
    p.add_argument("--json", action="store_true", help="print face events as raw JSON lines; everything else on stderr")
    p.add_argument("--count", type=int, metavar="N", help="exit after N face events")
    p.add_argument("--client-id", help="fixed client id with a persistent session: the broker queues while away")
    p.add_argument("--username", help="broker user name")
    p.add_argument("--password-file", metavar="FILE", help="file holding the broker password")
    p.add_argument("--password-env", metavar="VAR", help="environment variable holding the broker password")
    p.add_argument("--ca-file", metavar="FILE", help="CA certificate for mqtts:// (default: the system's)")
    p.add_argument("--insecure", action="store_true", help="mqtts: do not check the broker's host name")


class Printer:
    """Turns messages into lines; thread-safe, because paho calls it from its own thread."""

    def __init__(self, prefix: str, raw_json: bool, out: TextIO, err: TextIO, count: int | None) -> None:
        from edge_fer.outputs.mqtt.seqcheck import SeqChecker

        self.prefix, self.raw_json, self.out, self.err = prefix, raw_json, out, err
        self.checker = SeqChecker()
        self.faces = 0
        self.bad = 0
        self.count = count
        self.done = threading.Event()
        self._lock = threading.Lock()

    def _print(self, line: str, *, info: bool = False, safe: bool = False) -> None:
        stream = self.err if (info and self.raw_json) else self.out
        try:
            stream.write((line if safe else printable(line)) + "\n")
            stream.flush()
        except (BrokenPipeError, ValueError):
            self.done.set()  # the reader went away (`edge-fer listen | head`)

    def warn(self, line: str, *, multiline: bool = False) -> None:
        """One line on stderr (``multiline``: several of our own, e.g. a traceback), escaped like stdout."""
        text = "\n".join(map(printable, line.split("\n"))) if multiline else printable(line)
        try:
            self.err.write(text + "\n")
            self.err.flush()
        except (BrokenPipeError, ValueError):
            self.done.set()

    def message(self, topic: str, payload: bytes) -> None:
        from edge_fer.outputs.mqtt.topics import parse_topic

        with self._lock:
            parts = parse_topic(topic, self.prefix)
            if parts is None:
                self._print(f"{topic} {payload.decode('utf-8', 'replace')}", info=True)
            elif parts.kind == "face":
                self._face(topic, payload)
            elif parts.kind == "availability":
                self._print(f"{parts.device} is {payload.decode('utf-8', 'replace') or '(cleared)'}", info=True)
            else:
                self._print(f"{parts.device}/{parts.camera or '-'} {parts.kind} {self._compact(payload)}", info=True)

    @staticmethod
    def _compact(payload: bytes) -> str:
        if not payload:
            return "(cleared)"
        try:
            return json.dumps(json.loads(payload), separators=(",", ":"))
        except ValueError:
            return payload.decode("utf-8", "replace")

    def _face(self, topic: str, payload: bytes) -> None:
        try:
            e = json.loads(payload)
            key = (str(e["device"]), str(e["camera"]), str(e["run_id"]), int(e["seq"]))
        except (ValueError, KeyError, TypeError):
            self.bad += 1
            self.warn(f"NOT A FACE EVENT on {topic}: {payload[:80]!r}")
            return
        note = self.checker.observe(*key)
        if self.raw_json:
            self._print(printable_json(payload, e), safe=True)
        else:
            self._print(self._readable(e))
        if note:
            self.warn(note)
        self.faces += 1
        if self.count is not None and self.faces >= self.count:
            self.done.set()

    @staticmethod
    def _readable(e: dict) -> str:
        box = ",".join(f"{v:g}" for v in e.get("box", []))
        line = (
            f"{e.get('ts', '?')} {e['device']}/{e['camera']} seq {e['seq']} track {e.get('track_id', '?')} "
            f"{e.get('type', '?'):<6} {e.get('emotion', '?')} {e.get('confidence', 0):.2f} box {box}"
        )
        if e.get("type") == "end":
            line += f" ({e.get('duration', 0):g} s, mostly {e.get('dominant_emotion', '?')})"
        return line

    def summary(self) -> None:
        for line in self.checker.summary():
            self.warn(line)
        if self.bad:
            self.warn(f"  {self.bad} messages on face topics were not face events")


def default_topics(prefix: str, device: str | None) -> list[str]:
    d = device or "+"
    return [f"{prefix}/{d}/+/face", f"{prefix}/{d}/availability", f"{prefix}/{d}/+/status"]


_OPTIONS = {
    "mqtt.url": "--mqtt",
    "mqtt.username": "--username",
    "mqtt.password_file": "--password-file",
    "mqtt.password_env": "--password-env",
    "mqtt.tls.ca_file": "--ca-file",
}


def _settings(args: argparse.Namespace):
    """The broker as the daemon's ``mqtt:`` settings model sees it: the same URL, password and TLS rules."""
    from edge_fer.config.comms import MqttSettings
    from edge_fer.outputs.mqtt.topics import check_prefix, safe_name

    check_prefix(args.prefix)
    if args.device is not None and args.device != safe_name(args.device):
        raise ValueError(f"--device {args.device!r} is not a topic name; did you mean {safe_name(args.device)!r}?")
    tls = {"ca_file": args.ca_file, "insecure": args.insecure} if args.ca_file else {"insecure": args.insecure}
    try:
        settings = MqttSettings.from_url(
            args.mqtt,
            username=args.username,
            password_file=args.password_file,
            password_env=args.password_env,
            tls=tls,
        )
    except ValueError as exc:  # name the command-line option, not the config key it stands for
        message = str(exc)
        for key, option in _OPTIONS.items():
            message = message.replace(key + ":", option + ":")
        raise ValueError(message) from None
    address = settings.address
    return address, address.username, settings.password, settings.tls if address.tls else None


def run(args: argparse.Namespace) -> int:
    import paho.mqtt.client as mqtt

    from edge_fer.outputs.mqtt.connection import guarded

    try:
        address, username, password, tls = _settings(args)
    except ValueError as exc:
        print(f"edge-fer listen: {exc}", file=sys.stderr)
        return 2
    if args.count is not None and args.count < 1:
        print("edge-fer listen: --count must be at least 1", file=sys.stderr)
        return 2
    printer = Printer(args.prefix, args.json, sys.stdout, sys.stderr, args.count)
    topics = args.topic or default_topics(args.prefix, args.device)
    persistent = args.client_id is not None
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=args.client_id or f"edge-fer-listen-{uuid.uuid4().hex[:8]}",
        clean_session=not persistent,
    )
    client.suppress_exceptions = True
    if username is not None:
        client.username_pw_set(username, password.reveal() if password is not None else None)
    try:
        if tls is not None:
            client.tls_set_context(tls.context())
    except ValueError as exc:
        print(f"edge-fer listen: {exc}", file=sys.stderr)
        return 2
    state = {"said": None}

    def say_once(line: str) -> None:
        if state["said"] != line:
            state["said"] = line
            printer.warn(line)

    def on_connect(c, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            say_once(f"edge-fer listen: {address.url} refused the connection: {reason_code}; retrying")
            return
        c.subscribe([(t, 1) for t in topics])

    def on_subscribe(c, userdata, mid, reason_codes, properties) -> None:
        refused = [f"{t} ({rc})" for t, rc in zip(topics, reason_codes) if rc.is_failure]
        if refused:
            say_once(f"edge-fer listen: the broker refused the subscription to {', '.join(refused)}")
        else:
            say_once(f"listening on {address.url}: {', '.join(topics)}")  # said once the broker confirmed

    def failed(name: str, exc: BaseException) -> None:
        # paho would swallow it (suppress_exceptions) and the listener would sit silent: say it, with the trace
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
        printer.warn(f"edge-fer listen: internal error in {name}: {type(exc).__name__}: {exc}\n{trace}", multiline=True)

    client.on_connect = guarded(on_connect, failed)
    client.on_subscribe = guarded(on_subscribe, failed)
    client.on_connect_fail = guarded(
        lambda c, u: say_once(f"edge-fer listen: cannot reach {address.url}; retrying"), failed
    )
    client.on_message = guarded(lambda c, u, msg: printer.message(msg.topic, bytes(msg.payload)), failed)
    client.reconnect_delay_set(1, 10)

    def stop(signum, frame) -> None:
        printer.done.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        client.connect_async(address.host, address.port, keepalive=30)
        client.loop_start()
        while not printer.done.wait(0.5):
            pass
    finally:
        client.disconnect()
        client.loop_stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    printer.summary()
    return 0

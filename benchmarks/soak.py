"""Soak: the daemon at real time for a long while, its broker restarted on a schedule; is anything lost or leaking?

Runs ``edge-fer`` on the ``demo`` source (every-frame events, so tens of events per second) publishing to a
private Mosquitto with persistence on, which is stopped (SIGTERM) and started again every
``--broker-restart-every`` seconds. A QoS 1 subscriber with a persistent session (registered before the
daemon starts) counts ``seq`` per run, and the daemon also writes every event to a file, so a lost event,
even the very last, shows up as a gap against what the daemon says it produced. Every ``--sample-every``
seconds the daemon's RSS, open file descriptors and threads are read from ``/proc/<pid>/status`` and
``/proc/<pid>/fd``.

    python benchmarks/soak.py --minutes 30 --broker-restart-every 300
    python benchmarks/soak.py --minutes 2 --broker-restart-every 40 --sample-every 5 --warmup 30 --json out.json

Expected: zero gaps; duplicates only from re-sends after a restart (at most one in-flight window, 20, per
restart); RSS at the end within 5% of RSS after warm-up (minute 5 by default); the same number of open
descriptors and threads at the end as after warm-up. The exit status is 0 when all of that holds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
import yaml  # noqa: E402

from edge_fer.outputs.mqtt.seqcheck import SeqChecker  # noqa: E402
from tests.mosquitto import Mosquitto  # noqa: E402

DEVICE = "soak"
MAX_INFLIGHT = 20  # the publisher's in-flight window: what one reconnect can send twice


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the daemon started
    rss_mb: float
    fds: int
    threads: int
    received: int


@dataclass
class Report:
    seconds: float
    broker_restarts: int
    produced: int  # events the daemon wrote to its own event file
    received: int  # face events the subscriber got, duplicates included
    distinct: int
    missing: int  # produced seqs never received
    duplicates: int
    runs: int
    exit_code: int | None
    daemon_warnings: int
    daemon_errors: int
    tracebacks: int
    rss_warm_mb: float
    rss_end_mb: float
    rss_growth: float  # (end - warm) / warm
    fds_warm: int
    fds_end: int
    threads_warm: int
    threads_end: int
    samples: list[Sample] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.missing == 0
            and self.exit_code == 0
            and self.tracebacks == 0
            and self.duplicates <= MAX_INFLIGHT * max(1, self.broker_restarts)
            and self.rss_growth <= 0.05
            and self.fds_end <= self.fds_warm
            and self.threads_end <= self.threads_warm
        )


class Counter:
    """The persistent-session QoS 1 subscriber: counts face events per (camera, run) without keeping them."""

    def __init__(self, port: int, client_id: str = "edge-fer-soak-counter") -> None:
        self.checker = SeqChecker()
        self.seen: dict[tuple[str, str], set[int]] = {}
        self.received = 0
        self.last_message = time.monotonic()
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, protocol=mqtt.MQTTv311
        )
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"edge-fer/{DEVICE}/+/face", qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1.0)
        self.port = port

    def start(self) -> Counter:
        self.client.connect_async("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("the soak subscriber could not subscribe")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, client, userdata, msg) -> None:
        event = json.loads(msg.payload)
        with self._lock:
            self.received += 1
            self.last_message = time.monotonic()
            self.checker.observe(event["device"], event["camera"], event["run_id"], event["seq"])
            self.seen.setdefault((event["camera"], event["run_id"]), set()).add(event["seq"])

    def wait_quiet(self, quiet: float, limit: float) -> None:
        """Until no message came for ``quiet`` seconds (the broker's queue is drained), at most ``limit``."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and time.monotonic() - self.last_message < quiet:
            time.sleep(0.2)


def proc_sample(pid: int) -> tuple[float, int, int]:
    """RSS in MB, open descriptors and threads of ``pid``."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss_mb = int(fields["VmRSS"].split()[0]) / 1024
    threads = int(fields["Threads"])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss_mb, fds, threads


def daemon_config(workdir: Path, broker: Mosquitto, mode: str) -> Path:
    config = {
        "device": DEVICE,
        "cameras": [{"name": "cam0", "source": "demo", "realtime": True}],
        "events": {"mode": mode},
        "output": {"stdout": "on"},
        "stats": {"interval": 10.0},
        "mqtt": {"url": broker.url, "keepalive": 5, "client_id": "edge-fer-soak"},
    }
    path = workdir / "edge-fer.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def produced_seqs(events_file: Path) -> dict[tuple[str, str], list[int]]:
    out: dict[tuple[str, str], list[int]] = {}
    with events_file.open() as f:
        for line in f:
            if line.strip():
                event = json.loads(line)
                out.setdefault((event["camera"], event["run_id"]), []).append(event["seq"])
    return out


def soak(args: argparse.Namespace, workdir: Path) -> Report:
    duration = args.minutes * 60.0
    broker = Mosquitto(workdir / "broker", persistence=True).start()
    counter = Counter(broker.port).start()
    counter.stop()  # the session stays registered: the broker queues for it from now on
    counter = Counter(broker.port).start()
    events_file, log_file = workdir / "events.jsonl", workdir / "daemon.log"
    # The durable outbox (the default) in the soak's own directory: its fds and the daemon's memory are sampled too.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "STATE_DIRECTORY": str(workdir / "state")}
    env.pop("NOTIFY_SOCKET", None)
    with events_file.open("w") as out, log_file.open("w") as err:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "edge_fer", "--config", str(daemon_config(workdir, broker, args.events))],
            stdout=out,
            stderr=err,
            cwd=ROOT,
            env=env,
        )
    started = time.monotonic()
    samples: list[Sample] = []
    restarts = 0
    next_sample, next_restart = 0.0, args.broker_restart_every
    print(f"soak: {args.minutes:g} min, broker restarted every {args.broker_restart_every:g} s, pid {daemon.pid}")
    print(f"{'t_s':>7} {'rss_mb':>8} {'fds':>5} {'threads':>7} {'received':>9}")
    try:
        while (elapsed := time.monotonic() - started) < duration:
            if daemon.poll() is not None:
                print(f"soak: the daemon exited early with {daemon.returncode}")
                break
            if elapsed >= next_sample:
                rss, fds, threads = proc_sample(daemon.pid)
                sample = Sample(round(elapsed, 1), round(rss, 1), fds, threads, counter.received)
                samples.append(sample)
                print(f"{sample.t:7.1f} {sample.rss_mb:8.1f} {sample.fds:5d} {sample.threads:7d} {sample.received:9d}")
                next_sample += args.sample_every
            if elapsed >= next_restart and duration - elapsed > args.broker_down + 10:
                print(f"soak: t={elapsed:.0f} s: broker stopped (SIGTERM), back in {args.broker_down:g} s")
                broker.stop()
                time.sleep(args.broker_down)
                broker.start()
                restarts += 1
                next_restart += args.broker_restart_every
            time.sleep(0.2)
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
        exit_code = daemon.wait(60)
        counter.wait_quiet(quiet=3.0, limit=60.0)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        counter.stop()
        broker.stop()
    return summarize(args, samples, restarts, exit_code, counter, events_file, log_file, time.monotonic() - started)


def summarize(args, samples, restarts, exit_code, counter, events_file, log_file, seconds) -> Report:
    produced = produced_seqs(events_file)
    missing = 0
    for key, seqs in produced.items():
        got = counter.seen.get(key, set())
        missing += sum(1 for s in set(seqs) if s not in got)
    distinct = sum(len(s) for s in counter.seen.values())
    log = log_file.read_text(errors="replace")
    warm = next((s for s in samples if s.t >= args.warmup), samples[0] if samples else None)
    last = samples[-1] if samples else None
    growth = (last.rss_mb - warm.rss_mb) / warm.rss_mb if warm and last else 0.0
    # Descriptors and threads are compared as the most seen in the first and the last third after warm-up:
    # a single sample may fall while the broker is down (one socket fewer), which is not a leak.
    settled = [s for s in samples if s.t >= args.warmup] or samples
    third = max(1, len(settled) // 3)
    first_part, last_part = settled[:third], settled[-third:]
    return Report(
        seconds=round(seconds, 1),
        broker_restarts=restarts,
        produced=sum(len(s) for s in produced.values()),
        received=counter.received,
        distinct=distinct,
        missing=missing,
        duplicates=counter.received - distinct,
        runs=len(produced),
        exit_code=exit_code,
        daemon_warnings=log.count(" WARNING "),
        daemon_errors=log.count(" ERROR "),
        tracebacks=log.count("Traceback"),
        rss_warm_mb=warm.rss_mb if warm else 0.0,
        rss_end_mb=last.rss_mb if last else 0.0,
        rss_growth=round(growth, 4),
        fds_warm=max((x.fds for x in first_part), default=0),
        fds_end=max((x.fds for x in last_part), default=0),
        threads_warm=max((x.threads for x in first_part), default=0),
        threads_end=max((x.threads for x in last_part), default=0),
        samples=samples,
    )


def print_summary(report: Report, warmup: float) -> None:
    r = report
    print("summary:")
    print(f"  ran {r.seconds:.0f} s, broker restarted {r.broker_restarts} times, daemon exit code {r.exit_code}")
    print(f"  events produced {r.produced}, received {r.received} ({r.distinct} distinct) over {r.runs} run(s)")
    print(f"  seq gaps (produced, never received): {r.missing}; duplicates: {r.duplicates}")
    print(
        f"  RSS {r.rss_warm_mb:.1f} MB at {warmup:g} s -> {r.rss_end_mb:.1f} MB at the end ({r.rss_growth:+.1%}); "
        f"fds {r.fds_warm} -> {r.fds_end}; threads {r.threads_warm} -> {r.threads_end} (most seen, first vs last third)"
    )
    print(f"  daemon log: {r.daemon_warnings} warnings, {r.daemon_errors} errors, {r.tracebacks} tracebacks")
    print(f"  verdict: {'OK' if r.ok else 'NOT OK'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the daemon runs (30)")
    parser.add_argument("--broker-restart-every", type=float, default=300.0, metavar="S", help="seconds (300)")
    parser.add_argument("--broker-down", type=float, default=3.0, metavar="S", help="seconds per restart (3)")
    parser.add_argument("--sample-every", type=float, default=10.0, metavar="S", help="seconds (10)")
    parser.add_argument("--warmup", type=float, default=300.0, metavar="S", help="RSS baseline after (300)")
    parser.add_argument("--events", choices=["every_frame", "tracks"], default="every_frame", help="events.mode")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    parser.add_argument("--keep", metavar="DIR", help="keep the daemon log, event file and broker here")
    args = parser.parse_args(argv)
    if args.keep:
        workdir = Path(args.keep)
        workdir.mkdir(parents=True, exist_ok=True)
        report = soak(args, workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="edge-fer-soak-") as tmp:
            report = soak(args, Path(tmp))
    print_summary(report, args.warmup)
    if args.json:
        Path(args.json).write_text(json.dumps({**asdict(report), "ok": report.ok}, indent=1))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""What the durable MQTT outbox costs per event, against the memory outbox in the same run.

Each mode stores ``--events`` face-event-sized messages the way the publisher does: ``put`` on the inference
thread (the cost the pipeline pays per event), then ``pop`` and ``ack`` as the sender and the broker's
acknowledgements would (connected steady state: a few messages waiting, a window in flight). Modes:

- ``memory``: :class:`edge_fer.outputs.mqtt.outbox.Outbox` (``mqtt.outbox.durable: false``);
- ``durable sync=normal``: SQLite WAL without fsync (survives a killed process);
- ``durable sync=full``: fsync at every commit (survives a power cut; the default).

The modes take turns in rounds (``--rounds``) so that load from other processes falls on all of them; the
median per-event time over rounds is printed with its ratio to memory. The file lives in ``--dir`` (default:
a temporary directory; pass a directory on the device's real storage, e.g. its SD card, to measure that).

    python benchmarks/outbox.py --events 2000 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_fer.outputs.mqtt.outbox import Message, Outbox  # noqa: E402
from edge_fer.outputs.mqtt.store import DurableOutbox  # noqa: E402

TOPIC = "edge-fer/device/cam0/face"
PAYLOAD_BYTES = 620  # a tracks-mode face event with seven scores, as the daemon prints it


def run(box, events: int, window: int) -> tuple[float, float]:
    """Seconds per event: (put alone, put + pop + ack)."""
    payload = b"x" * PAYLOAD_BYTES
    put_s = 0.0
    inflight: list[Message] = []
    t0 = time.perf_counter()
    for _ in range(events):
        t = time.perf_counter()
        box.put(Message(TOPIC, payload))
        put_s += time.perf_counter() - t
        msg = box.pop()
        if msg is not None:
            inflight.append(msg)
        if len(inflight) >= window:
            box.ack(inflight.pop(0))
    for msg in inflight:
        box.ack(msg)
    total = time.perf_counter() - t0
    return put_s / events, total / events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--window", type=int, default=20, help="messages in flight (mqtt.max_inflight)")
    parser.add_argument("--dir", type=Path, default=None, help="where the queue file goes (default: a temp dir)")
    args = parser.parse_args()

    base = args.dir or Path(tempfile.mkdtemp(prefix="edge-fer-outbox-"))
    modes = {
        "memory": lambda: Outbox(10**7),
        "durable sync=normal": lambda: DurableOutbox(
            base / "normal.sqlite3", max_bytes=2**40, max_age=1e9, sync="normal"
        ),
        "durable sync=full": lambda: DurableOutbox(base / "full.sqlite3", max_bytes=2**40, max_age=1e9, sync="full"),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in modes}
    for _ in range(args.rounds):
        for name, make in modes.items():
            box = make()
            try:
                results[name].append(run(box, args.events, args.window))
            finally:
                box.close()
    print(f"outbox cost per event: {args.events} events x {args.rounds} rounds, {PAYLOAD_BYTES} B payload, "
          f"window {args.window}, files in {base}; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    ref_put = statistics.median(r[0] for r in results["memory"])
    ref_all = statistics.median(r[1] for r in results["memory"])
    for name, rows in results.items():
        put = statistics.median(r[0] for r in rows)
        total = statistics.median(r[1] for r in rows)
        print(
            f"  {name:<20} put {put * 1e6:8.1f} us ({put / ref_put:6.1f}x memory)   "
            f"put+pop+ack {total * 1e6:8.1f} us ({total / ref_all:6.1f}x memory)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

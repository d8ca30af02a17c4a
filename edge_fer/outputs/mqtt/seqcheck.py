"""Counting what a subscriber missed: ``seq`` runs 0, 1, 2... per camera and run, so a hole is a lost event.

A consumer keys streams by (device, camera, run_id): a new ``run_id`` means the daemon restarted and ``seq``
starts over, which is not a gap. A seq seen again is a duplicate (QoS 1 re-sends after a reconnect); a seq
that fills an earlier hole arrived late (possible when a broker replays a queue) and is no longer missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _span(first: int, last: int) -> str:
    return f"seq {first}" if first == last else f"seq {first}-{last}"


@dataclass(slots=True)
class Stream:
    device: str
    camera: str
    run_id: str
    received: int = 0
    first: int | None = None
    last: int | None = None
    duplicates: int = 0
    late: int = 0
    holes: list[tuple[int, int]] = field(default_factory=list)  # missing seq ranges, inclusive

    @property
    def name(self) -> str:
        return f"{self.device}/{self.camera} run {self.run_id}"

    @property
    def missing(self) -> int:
        return sum(b - a + 1 for a, b in self.holes)

    def summary(self) -> str:
        seqs = "no events" if self.first is None else f"{_span(self.first, self.last)}"
        holes = ", ".join(_span(a, b) for a, b in self.holes[:5]) + (" ..." if len(self.holes) > 5 else "")
        missing = f"{self.missing} missing ({holes})" if self.holes else "0 missing"
        return f"{self.name}: {self.received} events, {seqs}, {missing}, {self.duplicates} duplicates, {self.late} late"


class SeqChecker:
    def __init__(self) -> None:
        self.streams: dict[tuple[str, str, str], Stream] = {}

    def observe(self, device: str, camera: str, run_id: str, seq: int) -> str | None:
        """Record one event; returns a warning line for a gap, a duplicate or a late arrival, else None."""
        key = (device, camera, run_id)
        s = self.streams.get(key)
        if s is None:
            s = self.streams[key] = Stream(device, camera, run_id)
        s.received += 1
        if s.last is None:
            s.first = s.last = seq  # joined the stream here: earlier events are not ours to count
            return None
        if seq == s.last + 1:
            s.last = seq
            return None
        if seq > s.last:
            hole = (s.last + 1, seq - 1)
            s.holes.append(hole)
            s.last = seq
            n = hole[1] - hole[0] + 1
            return f"GAP {s.name}: missing {_span(*hole)} ({n} event{'s' if n > 1 else ''})"
        if seq < s.first:
            return None  # from before the event we joined at (a replayed backlog): nothing to judge
        for i, (a, b) in enumerate(s.holes):
            if a <= seq <= b:
                s.holes[i : i + 1] = [h for h in ((a, seq - 1), (seq + 1, b)) if h[0] <= h[1]]
                s.late += 1
                return f"LATE {s.name}: seq {seq} arrived after seq {s.last}; no longer missing"
        s.duplicates += 1
        return f"DUPLICATE {s.name}: seq {seq} again (a re-send after a reconnect)"

    @property
    def missing(self) -> int:
        return sum(s.missing for s in self.streams.values())

    def summary(self) -> list[str]:
        total = sum(s.received for s in self.streams.values())
        dups = sum(s.duplicates for s in self.streams.values())
        head = f"summary: {len(self.streams)} streams, {total} events, {self.missing} missing, {dups} duplicates"
        return [head] + [f"  {s.summary()}" for s in self.streams.values()]

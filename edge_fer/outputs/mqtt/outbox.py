"""The publisher's own queue of messages that the broker has not acknowledged yet.

paho keeps unacknowledged messages too, but its queue is unbounded by default, and a bound there
refuses the NEWEST message, while a subscriber that reconnects cares about the newest data. So the
publisher keeps every waiting message here, hands paho only a small window of in-flight messages,
and on overflow drops the OLDEST event, counting it.

Retained messages (availability, camera state and status, discovery) are different: only the latest
value per topic matters, so a newer one replaces an older one still waiting, and they never push events
out of the buffer. They are sent before events, newest state first per topic.

Snapshots (JPEG payloads, ``snapshot=True``) have a share of their own, bounded by bytes
(``snapshot_bytes``): they are kept apart from events, sent after the events waiting, and when their share
is full the oldest snapshot is dropped (``snapshots_dropped``), never an event.

This is the memory mode (``mqtt.outbox.durable: false``); :mod:`edge_fer.outputs.mqtt.store` keeps the
same interface in a file that outlives the process. Not thread-safe: the publisher guards it with its lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    key: int | None = field(default=None, compare=False)  # its row in the durable outbox (store.py)
    snapshot: bool = False  # a picture: its own share of the outbox, never counted with events

    def __post_init__(self) -> None:
        if not self.topic or any(c in self.topic for c in "+#\0"):
            raise ValueError(f"cannot publish to topic {self.topic!r}: empty, or holds a wildcard or NUL")
        if self.qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, not {self.qos!r}")
        if not isinstance(self.payload, bytes):
            raise TypeError("payload must be bytes")
        if self.snapshot and self.retain:
            raise ValueError("a snapshot is not retained")


DEFAULT_SNAPSHOT_BYTES = 16 * 1024 * 1024  # output.snapshots.publish_queue_mb's default


class SnapshotQueue:
    """Snapshots waiting for the broker, oldest first, bounded by bytes (the ones in flight included)."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError(f"snapshot share must be at least 1 byte, not {max_bytes}")
        self.max_bytes = max_bytes
        self.waiting: deque[Message] = deque()
        self.bytes = 0  # waiting and in flight
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.waiting)

    def put(self, msg: Message, *, first: bool = False) -> list[Message]:
        """Queue ``msg``; the oldest waiting snapshots dropped to stay within the share (counted), returned."""
        if first:
            self.waiting.appendleft(msg)
        else:
            self.waiting.append(msg)
        self.bytes += len(msg.payload)
        gone: list[Message] = []
        while self.bytes > self.max_bytes and self.waiting:
            old = self.waiting.popleft()
            self.bytes -= len(old.payload)
            gone.append(old)
        self.dropped += len(gone)
        return gone

    def pop(self) -> Message | None:
        return self.waiting.popleft() if self.waiting else None

    def done(self, msg: Message) -> None:
        """``msg`` (popped earlier) was acknowledged or given up: its bytes are free."""
        self.bytes -= len(msg.payload)

    def requeue(self, messages: list[Message]) -> None:
        """Sent and not acknowledged: back in front, in order (their bytes were never freed)."""
        self.waiting.extendleft(reversed(messages))


class SnapshotCounts:
    """What both outboxes say of their :class:`SnapshotQueue` (``self._snapshots``)."""

    _snapshots: SnapshotQueue

    @property
    def snapshots(self) -> int:
        """Snapshots waiting (not in flight)."""
        return len(self._snapshots)

    @property
    def snapshots_dropped(self) -> int:
        return self._snapshots.dropped


class Outbox(SnapshotCounts):
    """Events in arrival order, bounded to ``capacity`` (oldest dropped); retained messages, latest per topic."""

    durable = False

    def __init__(self, capacity: int, snapshot_bytes: int = DEFAULT_SNAPSHOT_BYTES) -> None:
        if capacity < 1:
            raise ValueError(f"buffer capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._events: deque[Message] = deque()
        self._retained: dict[str, Message] = {}
        self._snapshots = SnapshotQueue(snapshot_bytes)
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._events) + len(self._retained) + len(self._snapshots)

    @property
    def snapshot_bound(self) -> str:
        return f"{self._snapshots.max_bytes / 2**20:g} MB"

    @property
    def bound(self) -> str:
        return f"{self.capacity} messages"

    @property
    def events(self) -> int:
        return len(self._events)

    def put(self, msg: Message, *, first: bool = False) -> int:
        """Queue one message; returns how many old events were dropped to make room (0 or more)."""
        if msg.retain:
            self._retained.pop(msg.topic, None)
            if first:
                self._retained = {msg.topic: msg, **self._retained}
            else:
                self._retained[msg.topic] = msg
            return 0
        if msg.snapshot:
            self._snapshots.put(msg, first=first)
            return 0
        if first:
            self._events.appendleft(msg)
        else:
            self._events.append(msg)
        return self._trim()

    def _trim(self) -> int:
        dropped = 0
        while len(self._events) > self.capacity:
            self._events.popleft()
            dropped += 1
        self.dropped += dropped
        return dropped

    def pop(self) -> Message | None:
        """The next message to send: retained ones first, then events oldest first, then snapshots."""
        if self._retained:
            topic = next(iter(self._retained))
            return self._retained.pop(topic)
        if self._events:
            return self._events.popleft()
        return self._snapshots.pop()

    def ack(self, msg: Message) -> None:
        """The broker acknowledged ``msg`` (or it can never go): a snapshot frees its share; nothing else to do
        in memory (the durable outbox deletes its row)."""
        if msg.snapshot:
            self._snapshots.done(msg)

    def close(self) -> None:
        """Nothing to release in memory."""

    def describe(self) -> str:
        return "lost (mqtt.outbox.durable is off)"

    def oldest_age(self) -> float | None:
        """Not kept in memory mode (messages carry no time); the durable outbox answers."""
        return None

    def requeue(self, messages: Iterable[Message]) -> int:
        """Put messages that were sent but never acknowledged back in front, keeping their order.

        A retained message is skipped when a newer value for its topic is already waiting. Events are kept
        even beyond ``capacity`` until the next :meth:`put` trims the oldest, so that a reconnect alone
        never drops anything. Returns how many were put back."""
        events: list[Message] = []
        snapshots: list[Message] = []
        retained: dict[str, Message] = {}
        for m in messages:
            if m.retain:
                if m.topic not in self._retained:
                    retained[m.topic] = m
            elif m.snapshot:
                snapshots.append(m)
            else:
                events.append(m)
        self._retained = {**retained, **self._retained}
        self._events.extendleft(reversed(events))
        self._snapshots.requeue(snapshots)
        return len(events) + len(snapshots) + len(retained)

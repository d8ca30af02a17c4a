"""The publisher's own queue of messages that the broker has not acknowledged yet.

paho keeps unacknowledged messages too, but its queue is unbounded by default, and a bound there
refuses the NEWEST message, while a subscriber that reconnects cares about the newest data. So the
publisher keeps every waiting message here, hands paho only a small window of in-flight messages,
and on overflow drops the OLDEST event, counting it.

Retained messages (availability, camera state and status, discovery) are different: only the latest
value per topic matters, so a newer one replaces an older one still waiting, and they never push events
out of the buffer. They are sent before events, newest state first per topic.

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

    def __post_init__(self) -> None:
        if not self.topic or any(c in self.topic for c in "+#\0"):
            raise ValueError(f"cannot publish to topic {self.topic!r}: empty, or holds a wildcard or NUL")
        if self.qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, not {self.qos!r}")
        if not isinstance(self.payload, bytes):
            raise TypeError("payload must be bytes")


class Outbox:
    """Events in arrival order, bounded to ``capacity`` (oldest dropped); retained messages, latest per topic."""

    durable = False

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"buffer capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._events: deque[Message] = deque()
        self._retained: dict[str, Message] = {}
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._events) + len(self._retained)

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
        """The next message to send: retained ones first, then events oldest first."""
        if self._retained:
            topic = next(iter(self._retained))
            return self._retained.pop(topic)
        return self._events.popleft() if self._events else None

    def ack(self, msg: Message) -> None:
        """The broker acknowledged ``msg``; nothing to do in memory (the durable outbox deletes its row)."""

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
        retained: dict[str, Message] = {}
        for m in messages:
            if m.retain:
                if m.topic not in self._retained:
                    retained[m.topic] = m
            else:
                events.append(m)
        self._retained = {**retained, **self._retained}
        self._events.extendleft(reversed(events))
        return len(events) + len(retained)

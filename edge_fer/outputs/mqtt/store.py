"""The durable outbox: what the broker has not acknowledged yet, in a SQLite file that outlives the process.

Why SQLite in WAL mode: a transaction is one atomic, ordered commit, so a SIGKILL between two commits leaves
the file at the first; and the standard library has it. The MQTT output is the first output to see an event
and stores it on the inference thread before the call returns, so a killed daemon may lose frames not yet
turned into events but never a numbered event that another output showed. The next start sends what was
left first, in order, with its original ``run_id`` and ``seq``, before anything new.

``sync``: ``normal`` commits to the WAL without fsync, which survives a killed process (the kernel holds the
pages) and a power cut may take the newest commits (the tail, never a hole: the WAL is replayed in order);
``full`` fsyncs every commit and survives a power cut. ``benchmarks/outbox.py`` measures both.

A message leaves the file only when the broker acknowledged it (:meth:`DurableOutbox.ack`); acknowledged
rows are deleted in batches, so a killed daemon re-sends at most the last batch (duplicates, never gaps).
When the disk refuses a write (full, read-only) messages wait in memory, after the stored ones, until the
disk works again. Not thread-safe: the publisher guards it with its lock.

Snapshots (JPEG payloads) have their own table and their own share, ``snapshot_bytes``, apart from
``max_bytes``: the file holds at most ``max_bytes`` of events plus ``snapshot_bytes`` of snapshots, and a full
share drops the oldest snapshot, never an event. They are held in memory too (at most their share) and sent
after the events waiting; one is deleted from the file as soon as the broker acknowledges it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

from edge_fer.logs import Throttle
from edge_fer.outputs.mqtt.outbox import DEFAULT_SNAPSHOT_BYTES, Message, Outbox, SnapshotCounts, SnapshotQueue
from edge_fer.outputs.mqtt.queuefile import OutboxLocked, OutboxStoreError, connect, state_directory, take_lock

log = logging.getLogger("edge_fer.mqtt")

READ_BATCH = 256  # rows read from the file at a time
ACK_BATCH = 128  # acknowledged rows deleted together (at most this many re-sent after a SIGKILL)
AGE_CHECK_S = 1.0  # how often a put looks for messages older than max_age


def _size(msg: Message) -> int:
    return len(msg.topic.encode()) + len(msg.payload)


class DurableOutbox(SnapshotCounts):
    """The :class:`~edge_fer.outputs.mqtt.outbox.Outbox` interface over a SQLite file, bounded by bytes and age."""

    durable = True

    def __init__(
        self,
        path: Path | str,
        *,
        max_bytes: int,
        max_age: float,
        sync: str = "full",
        memory_capacity: int = 10_000,
        snapshot_bytes: int = DEFAULT_SNAPSHOT_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path).expanduser()
        self.max_bytes, self.max_age, self.sync = max_bytes, max_age, sync
        self.memory_capacity = memory_capacity
        self._clock = clock
        self.dropped = 0
        self.recovered = 0  # events an earlier run left in the file
        self._lock_fd = take_lock(self.path)
        try:
            self._db = connect(self.path, sync)
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._retained: dict[str, Message] = {}
        self._snapshots = SnapshotQueue(snapshot_bytes)
        self.recovered_snapshots = 0
        self._front: deque[Message] = deque()  # re-queued after a reconnect: oldest, sent first
        self._ahead: deque[Message] = deque()  # read from the file (or just written), not yet sent
        self._spill: deque[Message] = deque()  # the disk refused them: newest, sent last
        self._cursor = 0  # the next row id to read from the file
        self._unread = 0  # rows at or after the cursor
        self._rows = self._bytes = 0  # stored events not acknowledged yet (in flight included)
        self._inflight: set[int] = set()  # keys of stored events handed out by pop, not acknowledged
        self._acked: list[int] = []  # acknowledged, not deleted yet
        self._ord = self._low = 0  # retained order: next at the back, last used at the front
        self._next_age_check = 0.0
        self._write_log = Throttle(60.0, logger=log)
        self._load()

    def _load(self) -> None:
        rows, size, first = self._db.execute(
            "SELECT count(*), coalesce(sum(length(CAST(topic AS BLOB)) + length(payload)), 0), min(id) FROM events"
        ).fetchone()
        self._rows = self._unread = self.recovered = rows
        self._bytes = size
        self._cursor = first or 0
        for topic, payload, qos, ord_ in self._db.execute("SELECT topic, payload, qos, ord FROM retained ORDER BY ord"):
            self._retained[topic] = Message(topic, bytes(payload), qos, True, key=ord_)
            self._ord, self._low = max(self._ord, ord_ + 1), min(self._low, ord_)
        with self._writing(), self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM snapshots WHERE created < ?", (self._clock() - self.max_age,))
        gone: list[Message] = []
        for key, topic, payload, qos in self._db.execute("SELECT id, topic, payload, qos FROM snapshots ORDER BY id"):
            gone += self._snapshots.put(Message(topic, bytes(payload), qos, False, key=key, snapshot=True))
        self._snapshots.dropped = 0  # what an earlier run left beyond today's share is not today's loss
        self._forget_snapshots(gone)
        self.recovered_snapshots = len(self._snapshots)
        if rows:
            log.info("MQTT outbox %s: %d messages from an earlier run are sent first", self.path, rows)
        self._trim()

    # -- the Outbox interface ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.events + len(self._retained) + len(self._snapshots)

    @property
    def snapshot_bound(self) -> str:
        return f"{self._snapshots.max_bytes / 2**20:g} MB in {self.path}"

    @property
    def events(self) -> int:
        return self._rows - len(self._inflight) + len(self._spill) + sum(m.key is None for m in self._front)

    @property
    def bound(self) -> str:
        return f"{self.max_bytes / 2**20:g} MB or {self.max_age:g} s old in {self.path}"

    def put(self, msg: Message, *, first: bool = False) -> int:
        """Store one message (committed when this returns); how many old events were dropped for room."""
        if msg.retain:
            self._put_retained(msg, first)
            return 0
        if msg.snapshot:
            self._put_snapshot(msg, first)
            return 0
        if self._spill and not first:
            return self._to_spill(msg)  # the disk failed earlier: keep the order, newest last
        try:
            with self._db:  # one transaction, so one fsync with sync=full: pending deletions and this row
                self._db.execute("BEGIN")
                self._delete(self._acked)
                key = self._db.execute(
                    "INSERT INTO events (topic, payload, qos, created) VALUES (?, ?, ?, ?)",
                    (msg.topic, msg.payload, msg.qos, self._clock()),
                ).lastrowid
            self._acked = []
        except sqlite3.Error as exc:
            self._write_failed(exc)
            if first:
                self._front.appendleft(msg)
                return 0
            return self._to_spill(msg)
        stored = Message(msg.topic, msg.payload, msg.qos, False, key=key)
        self._rows += 1
        self._bytes += _size(msg)
        if first:
            self._front.appendleft(stored)
        elif self._unread == 0 and len(self._ahead) < READ_BATCH:
            self._ahead.append(stored)  # nothing unread before it: no need to read it back
            self._cursor = key + 1
        else:
            self._unread += 1
        return self._trim()

    def pop(self) -> Message | None:
        """The next message to send: retained ones first, then events oldest first, then snapshots."""
        if self._retained:
            return self._retained.pop(next(iter(self._retained)))
        if not self._front and not self._ahead and self._unread:
            try:
                self._read_ahead()
            except sqlite3.Error as exc:  # the file broke under us: what it still holds cannot be sent
                self._read_failed(exc)
        queue = self._front or self._ahead or self._spill
        if not queue:
            return self._snapshots.pop()
        msg = queue.popleft()
        if msg.key is not None:
            self._inflight.add(msg.key)
        return msg

    def ack(self, msg: Message) -> None:
        """The broker acknowledged ``msg``: it may leave the file."""
        if msg.snapshot:
            self._snapshots.done(msg)
            if msg.key is not None:
                with self._writing():
                    self._db.execute("DELETE FROM snapshots WHERE id = ?", (msg.key,))
            return
        if msg.key is None:
            return
        if msg.retain:
            with self._writing():
                self._db.execute("DELETE FROM retained WHERE topic = ? AND ord = ?", (msg.topic, msg.key))
            return
        if msg.key in self._inflight:
            self._inflight.discard(msg.key)
            self._rows -= 1
            self._bytes -= _size(msg)
            self._acked.append(msg.key)
            if len(self._acked) >= ACK_BATCH:  # otherwise with the next put, in its transaction
                with self._writing():
                    self._flush_acks()

    def requeue(self, messages: Iterable[Message]) -> int:
        """Put messages that were sent but never acknowledged back in front, keeping their order."""
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
                if m.key is not None:
                    self._inflight.discard(m.key)
                events.append(m)
        self._retained = {**retained, **self._retained}
        self._front.extendleft(reversed(events))
        self._snapshots.requeue(snapshots)
        return len(events) + len(snapshots) + len(retained)

    def close(self) -> None:
        """Write what is pending and release the file (the lock goes with it)."""
        with self._writing():
            self._flush_acks()
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)

    def describe(self) -> str:
        return f"kept in {self.path} and sent at the next start"

    def oldest_age(self) -> float | None:
        """Seconds since the oldest message still waiting for the broker was stored (None: none waits)."""
        if not self._rows:
            return None
        acked = set(self._acked)
        try:
            for key, created in self._db.execute(
                "SELECT id, created FROM events ORDER BY id LIMIT ?", (ACK_BATCH + 1,)
            ):
                if key not in acked:
                    return max(0.0, self._clock() - created)
        except sqlite3.Error:
            return None
        return None

    # -- inside ------------------------------------------------------------------------------------------

    def _put_retained(self, msg: Message, first: bool) -> None:
        if first:
            self._low -= 1
            ord_ = self._low
        else:
            ord_ = self._ord
            self._ord += 1
        stored = Message(msg.topic, msg.payload, msg.qos, True, key=ord_)
        with self._writing():
            self._db.execute(
                "INSERT OR REPLACE INTO retained (topic, payload, qos, ord) VALUES (?, ?, ?, ?)",
                (msg.topic, msg.payload, msg.qos, ord_),
            )
        self._retained.pop(msg.topic, None)
        self._retained = {msg.topic: stored, **self._retained} if first else {**self._retained, msg.topic: stored}

    def _put_snapshot(self, msg: Message, first: bool) -> None:
        """Store a snapshot in its table (kept in memory only while the disk refuses), then keep the share:
        the oldest waiting snapshots go, and so do those older than ``max_age``."""
        stored = msg
        try:
            with self._db:
                self._db.execute("BEGIN")
                key = self._db.execute(
                    "INSERT INTO snapshots (topic, payload, qos, created) VALUES (?, ?, ?, ?)",
                    (msg.topic, msg.payload, msg.qos, self._clock()),
                ).lastrowid
            stored = Message(msg.topic, msg.payload, msg.qos, False, key=key, snapshot=True)
        except sqlite3.Error as exc:
            self._write_failed(exc)
        gone = self._snapshots.put(stored, first=first)
        try:
            old = {k for (k,) in self._db.execute(
                "SELECT id FROM snapshots WHERE created < ?", (self._clock() - self.max_age,)
            )}  # fmt: skip
        except sqlite3.Error:
            old = set()
        aged = [m for m in self._snapshots.waiting if m.key in old]
        for m in aged:  # in flight ones are left to their acknowledgement
            self._snapshots.waiting.remove(m)
            self._snapshots.done(m)
        self._snapshots.dropped += len(aged)
        self._forget_snapshots(gone + aged)

    def _forget_snapshots(self, gone: list[Message]) -> None:
        """Delete the rows of dropped snapshots."""
        keys = [(m.key,) for m in gone if m.key is not None]
        if keys:
            with self._writing(), self._db:
                self._db.execute("BEGIN")
                self._db.executemany("DELETE FROM snapshots WHERE id = ?", keys)

    def _read_ahead(self) -> None:
        rows = self._db.execute(
            "SELECT id, topic, payload, qos FROM events WHERE id >= ? ORDER BY id LIMIT ?", (self._cursor, READ_BATCH)
        ).fetchall()
        for key, topic, payload, qos in rows:
            self._ahead.append(Message(topic, bytes(payload), qos, False, key=key))
        self._unread = max(0, self._unread - len(rows)) if rows else 0
        if rows:
            self._cursor = rows[-1][0] + 1

    def _to_spill(self, msg: Message) -> int:
        self._spill.append(msg)
        dropped = 0
        while len(self._spill) > self.memory_capacity:
            self._spill.popleft()
            dropped += 1
        self.dropped += dropped
        return dropped

    def _flush_acks(self) -> None:
        if self._acked:
            with self._db:
                self._db.execute("BEGIN")
                self._delete(self._acked)
            self._acked = []

    def _delete(self, keys: list[int]) -> None:
        if keys:
            self._db.executemany("DELETE FROM events WHERE id = ?", [(k,) for k in keys])

    @contextlib.contextmanager
    def _writing(self):
        try:
            yield
        except sqlite3.Error as exc:
            self._write_failed(exc)

    def _read_failed(self, exc: sqlite3.Error) -> None:
        log.error(
            "MQTT outbox %s: cannot read (%s); its %d waiting messages are given up, new ones wait in memory",
            self.path, exc, self._unread,
        )  # fmt: skip
        self.dropped += self._unread
        self._rows -= self._unread
        self._unread = 0
        self._spill.extend(self._ahead)
        self._ahead.clear()

    def _write_failed(self, exc: sqlite3.Error) -> None:
        self._write_log.log(
            f"mqtt outbox write {type(exc).__name__}",
            logging.ERROR,
            "MQTT outbox %s: cannot write (%s); new messages wait in memory (at most %d) until it can",
            self.path,
            exc,
            self.memory_capacity,
        )

    def _trim(self) -> int:
        """Drop the oldest waiting events while the file is over ``max_bytes`` or they are older than ``max_age``."""
        now = self._clock()
        check_age = now >= self._next_age_check
        if check_age:
            self._next_age_check = now + AGE_CHECK_S
        if self._bytes <= self.max_bytes and not check_age:
            return 0
        try:
            gone, freed = self._oldest_to_drop(now - self.max_age)
        except sqlite3.Error as exc:
            self._write_log.log(f"mqtt outbox trim {type(exc).__name__}", logging.ERROR,
                                "MQTT outbox %s: cannot check its bounds (%s)", self.path, exc)  # fmt: skip
            return 0
        if gone:
            self._drop(gone, freed)
        return len(gone)

    def _oldest_to_drop(self, cutoff: float) -> tuple[list[int], int]:
        """The oldest waiting rows (not in flight) to drop for the bounds, and their bytes."""
        gone: list[int] = []
        freed = 0
        after = -1
        while True:
            rows = self._db.execute(
                "SELECT id, length(CAST(topic AS BLOB)) + length(payload), created FROM events WHERE id > ?"
                " ORDER BY id LIMIT ?",
                (after, READ_BATCH),
            ).fetchall()
            for key, size, created in rows:
                if key in self._inflight or key in self._acked:
                    continue
                if self._bytes - freed <= self.max_bytes and created >= cutoff:
                    rows = []
                    break
                gone.append(key)
                freed += size
            if not rows:
                break
            after = rows[-1][0]
        return gone, freed

    def _drop(self, keys: list[int], freed: int) -> None:
        with self._writing(), self._db:
            self._db.execute("BEGIN")
            self._delete(keys)
        gone = set(keys)
        self._front = deque(m for m in self._front if m.key not in gone)
        self._ahead = deque(m for m in self._ahead if m.key not in gone)
        self._unread = max(0, self._unread - sum(1 for k in keys if k >= self._cursor))  # rows not read yet
        self._rows -= len(keys)
        self._bytes -= freed
        self.dropped += len(keys)


def open_outbox(settings, snapshot_bytes: int = DEFAULT_SNAPSHOT_BYTES) -> Outbox | DurableOutbox:
    """The outbox ``settings`` (:class:`~edge_fer.config.comms.MqttSettings`) ask for.

    A configured ``path`` that cannot be used is the operator's to fix (:class:`OutboxStoreError`); the
    default one falls back to memory with one error line, so that an unwritable home directory does not stop
    a daemon that ran before the durable outbox existed. A held lock is always an error: two daemons on one
    queue would send each other's events.
    """
    box = settings.outbox
    if not box.durable:
        return Outbox(settings.buffer_size, snapshot_bytes)
    path = Path(box.path).expanduser() if box.path else state_directory() / f"outbox-{settings.device}.sqlite3"
    try:
        return DurableOutbox(
            path,
            max_bytes=int(box.max_mb * 1024 * 1024),
            max_age=box.max_age,
            sync=box.sync,
            memory_capacity=settings.buffer_size,
            snapshot_bytes=snapshot_bytes,
        )
    except OutboxLocked:
        raise
    except OutboxStoreError as exc:
        if box.path:
            raise
        log.error("%s; messages wait in memory instead and are lost if the daemon stops before sending them", exc)
        return Outbox(settings.buffer_size, snapshot_bytes)

"""The queue file itself: where it lives, one daemon per file, its format version, and what to do with a file
this edge-fer cannot read.

Split from :mod:`edge_fer.outputs.mqtt.store` (which keeps the queue's order and bounds) because opening is
where the operator's problems show: a second daemon on the same device gets one line naming the holder's pid
(an ``flock`` on ``<file>.lock``, released by the kernel however the holder dies); a file written by another
format version is set aside with a warning; a corrupt or truncated one is moved aside with one error, its
events given up, and a new queue starts. Moved files keep their name plus ``.<why>-<UTC time>``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import time
from pathlib import Path

log = logging.getLogger("edge_fer.mqtt")

FORMAT_VERSION = 2  # PRAGMA user_version of the file: bump on any change to the tables below
_SNAPSHOTS = (
    "CREATE TABLE snapshots (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL,"
    " qos INTEGER NOT NULL, created REAL NOT NULL)"
)
_SCHEMA = (
    "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL,"
    " qos INTEGER NOT NULL, created REAL NOT NULL)",
    "CREATE TABLE retained (topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL, ord INTEGER NOT NULL)",
    _SNAPSHOTS,
    f"PRAGMA user_version = {FORMAT_VERSION}",
)
# Each format this edge-fer upgrades in place, to the statements that make it the next one; a file of any
# other version is set aside. Version 2 added the snapshots table (issue 19): a version 1 file keeps its events.
_UPGRADES = {1: (_SNAPSHOTS, "PRAGMA user_version = 2")}


class OutboxStoreError(RuntimeError):
    """The queue file cannot be used (its directory cannot be created or written)."""


class OutboxLocked(OutboxStoreError):
    """Another edge-fer holds this queue."""


def state_directory(environ: dict[str, str] | None = None) -> Path:
    """``$STATE_DIRECTORY`` (systemd's ``StateDirectory=``; the first of a list), else
    ``$XDG_STATE_HOME/edge-fer``, else ``~/.local/state/edge-fer``."""
    env = os.environ if environ is None else environ
    given = env.get("STATE_DIRECTORY", "").split(":")[0]
    if given:
        return Path(given)
    xdg = env.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path(env.get("HOME") or Path.home()) / ".local/state"
    return base / "edge-fer"


def _set_aside(path: Path, why: str) -> Path:
    """Move the file (and its WAL) out of the way, keeping it for a post-mortem."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.{why}-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{path}{suffix}", f"{target}{suffix}")
    return target


def take_lock(path: Path) -> int:
    """An exclusive lock on ``<path>.lock`` holding our pid; raises OutboxLocked or OutboxStoreError."""
    lock = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise OutboxStoreError(
            f"cannot use the MQTT outbox {path}: {exc.strerror or exc}; make its directory writable "
            "or set mqtt.outbox.path"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise OutboxLocked(
            f"the MQTT outbox {path} is in use by another edge-fer (pid {holder}); one daemon per "
            "device: give this one another `device` or mqtt.outbox.path"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _connect(path: Path, sync: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if version == 0 and not tables:
            for statement in _SCHEMA:
                db.execute(statement)
        elif version in _UPGRADES:
            with db:
                db.execute("BEGIN")
                for statement in _UPGRADES[version]:
                    db.execute(statement)
            log.info("MQTT outbox %s: format %d upgraded to %d in place", path, version, FORMAT_VERSION)
        elif version != FORMAT_VERSION:
            db.close()
            moved = _set_aside(path, f"v{version}")
            log.warning(
                "MQTT outbox %s has format %d (this edge-fer reads %d): set aside as %s; starting a new queue",
                path, version, FORMAT_VERSION, moved,
            )  # fmt: skip
            return _connect(path, sync)
        db.execute("SELECT count(*), sum(length(topic) + length(payload)) FROM events").fetchone()
        db.execute("SELECT count(*) FROM retained").fetchone()
        db.execute("SELECT count(*) FROM snapshots").fetchone()
    except BaseException:
        db.close()
        raise
    return db


def connect(path: Path, sync: str) -> sqlite3.Connection:
    """The queue file in WAL mode with this format's tables, a fresh one in place of an unreadable one."""
    try:
        return _connect(path, sync)
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and "unable to open" in str(exc):
            raise OutboxStoreError(f"cannot open the MQTT outbox {path}: {exc}") from None
        moved = _set_aside(path, "corrupt")
        log.error(
            "MQTT outbox %s is unreadable (%s): moved aside to %s; its events are not sent; starting a new queue",
            path, exc, moved,
        )  # fmt: skip
        try:
            return _connect(path, sync)
        except sqlite3.Error as again:
            raise OutboxStoreError(f"cannot create the MQTT outbox {path}: {again}") from None

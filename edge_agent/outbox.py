"""The station's outbox: every event is on disk before it is published, until the hub acks it.

One SQLite file in WAL mode with ``synchronous=FULL``, so a committed event survives a killed
process and a power cut. Only the hub's ack deletes an event: the broker's PUBACK is not
enough, because a broker drops messages for slow subscribers once their queue is full. An
event that was sent but not acked within ``resend_interval`` seconds is due again.

Events are stored as the JSON objects of ``protocols.messages`` (``as_dict()``) and rebuilt
with the protocols' own strict parser, so the outbox never invents a format of its own.

One lock guards the connection: capture/decode and the MQTT callbacks run in different threads.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edge_agent.errors import OutboxError
from protocols.errors import MessageDecodeError, MessageError
from protocols.messages import (
    MAX_BATCH_EVENTS,
    CommissionEvent,
    Rejection,
    StationEvent,
    parse_event,
)

logger = logging.getLogger(__name__)

DEFAULT_RESEND_INTERVAL = 5.0
DEFAULT_KEEP_REJECTIONS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    code TEXT,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_sent REAL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_code ON outbox (code);
CREATE TABLE IF NOT EXISTS rejections (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    reason TEXT NOT NULL,
    at REAL NOT NULL,
    body TEXT
);
"""


@dataclass(frozen=True)
class RejectedEvent:
    """An event the hub refused (or the outbox could not read), kept so the station can
    report it."""

    id: str
    reason: str
    at: float  # when it was recorded, seconds since the epoch
    event: StationEvent | None  # None when the event was no longer in the outbox


@dataclass(frozen=True)
class OutboxBudget:
    """How much the outbox may hold while the hub is away, and the policy when it is full:
    the line stops (alarm ``outbox_full``, PLC stop) rather than make items it cannot
    record; it runs again once the outbox drained below ``resume_at`` of both limits."""

    max_events: int = 1_000_000
    max_bytes: int = 512 * 1024 * 1024
    resume_at: float = 0.9

    def full(self, events: int, size: int) -> bool:
        return events >= self.max_events or size >= self.max_bytes

    def may_resume(self, events: int, size: int) -> bool:
        return events < self.max_events * self.resume_at and size < self.max_bytes * self.resume_at


class Outbox:
    def __init__(
        self,
        path: str | Path,
        *,
        resend_interval: float = DEFAULT_RESEND_INTERVAL,
        keep_rejections: int = DEFAULT_KEEP_REJECTIONS,
    ) -> None:
        if resend_interval <= 0:
            raise ValueError(f"resend_interval expected positive seconds, got {resend_interval}")
        self.path = Path(path)
        self.resend_interval = resend_interval
        self.keep_rejections = keep_rejections
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are opened explicitly, see _transaction().
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"Cannot open outbox {str(self.path)!r}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def put(self, events: Sequence[StationEvent], now: float | None = None) -> int:
        """Store events durably (committed when this returns); returns how many were new.

        An id already in the outbox is ignored, so a retried put cannot double an event.
        """
        at = time.time() if now is None else now
        rows = [
            (
                e.id,
                e.code if isinstance(e, CommissionEvent) else None,
                json.dumps(e.as_dict(), ensure_ascii=False, separators=(",", ":")),
                at,
            )
            for e in events
        ]
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO outbox (id, code, body, created_at) VALUES (?, ?, ?, ?)",
                rows,
            )
            return db.total_changes - before

    def due(self, limit: int = MAX_BATCH_EVENTS, now: float | None = None) -> list[StationEvent]:
        """Oldest events first that were never sent, or sent more than resend_interval ago.

        A last send time in the future means the wall clock went back: such events are due too.
        """
        at = time.time() if now is None else now
        with self._lock:
            rows = self._db.execute(
                "SELECT id, body FROM outbox"
                " WHERE last_sent IS NULL OR last_sent <= ? OR last_sent > ?"
                " ORDER BY seq LIMIT ?",
                (at - self.resend_interval, at, limit),
            ).fetchall()
        events, unreadable = _rebuild(rows)
        for event_id, reason in unreadable:
            logger.error("Outbox event %s is unreadable, moved to rejections: %s", event_id, reason)
        if unreadable:
            self.reject([Rejection(i, f"unreadable in outbox: {r}") for i, r in unreadable], at)
        return events

    def mark_sent(self, ids: Iterable[str], now: float | None = None) -> None:
        at = time.time() if now is None else now
        with self._transaction() as db:
            db.executemany(
                "UPDATE outbox SET last_sent = ?, attempts = attempts + 1 WHERE id = ?",
                [(at, i) for i in ids],
            )

    def resend_all(self) -> None:
        """Make every pending event due now (after a reconnect, nothing in flight survives)."""
        with self._transaction() as db:
            db.execute("UPDATE outbox SET last_sent = NULL")

    def ack(self, ids: Iterable[str]) -> int:
        """Delete the events the hub committed; returns how many were still here."""
        with self._transaction() as db:
            before = db.total_changes
            db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
            return db.total_changes - before

    def reject(self, rejections: Iterable[Rejection], now: float | None = None) -> int:
        """Record refused events with their reasons and delete them from the outbox; returns
        how many were still in the outbox. The record keeps the event body."""
        at = time.time() if now is None else now
        removed = 0
        with self._transaction() as db:
            for rejection in rejections:
                row = db.execute("SELECT body FROM outbox WHERE id = ?", (rejection.id,)).fetchone()
                db.execute(
                    "INSERT OR IGNORE INTO rejections (id, reason, at, body) VALUES (?, ?, ?, ?)",
                    (rejection.id, rejection.reason, at, None if row is None else row[0]),
                )
                if row is not None:
                    db.execute("DELETE FROM outbox WHERE id = ?", (rejection.id,))
                    removed += 1
            db.execute(
                "DELETE FROM rejections WHERE seq <= (SELECT MAX(seq) FROM rejections) - ?",
                (self.keep_rejections,),
            )
        return removed

    def rejections(self, limit: int = 100) -> list[RejectedEvent]:
        """The most recent rejections, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, reason, at, body FROM rejections ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
        out = []
        for event_id, reason, at, body in rows:
            event = None
            if body is not None:
                rebuilt, _ = _rebuild([(event_id, body)])
                event = rebuilt[0] if rebuilt else None
            out.append(RejectedEvent(id=event_id, reason=reason, at=at, event=event))
        return out

    def disk_bytes(self) -> int:
        """Bytes the outbox takes on disk (database and write-ahead log)."""
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += Path(f"{self.path}{suffix}").stat().st_size
            except OSError:
                continue
        return total

    def pending_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def in_flight_count(self, now: float | None = None) -> int:
        """Events sent within the resend interval and not acked yet."""
        at = time.time() if now is None else now
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM outbox WHERE last_sent > ? AND last_sent <= ?",
                (at - self.resend_interval, at),
            ).fetchone()
            return int(row[0])

    def has_code(self, code: str) -> bool:
        """Whether a not yet acked commission event for ``code`` is in the outbox."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM outbox WHERE code = ? LIMIT 1", (code,))
            return row.fetchone() is not None


def _rebuild(rows: Sequence[tuple[str, str]]) -> tuple[list[StationEvent], list[tuple[str, str]]]:
    """Parse stored bodies; returns the events and the (id, reason) of unreadable rows."""
    if not rows:
        return [], []
    try:
        return _parse_bodies([body for _, body in rows]), []
    except MessageError:
        pass  # find the bad rows one by one, below
    events: list[StationEvent] = []
    bad = []
    for event_id, body in rows:
        try:
            events.extend(_parse_bodies([body]))
        except MessageError as exc:
            bad.append((event_id, str(exc)))
    return events, bad


def _parse_bodies(bodies: Sequence[str]) -> list[StationEvent]:
    events: list[StationEvent] = []
    for body in bodies:
        try:
            obj = json.loads(body)
        except json.JSONDecodeError as exc:
            raise MessageDecodeError(f"stored event is not JSON: {exc}") from None
        events.append(parse_event(obj))
    return events

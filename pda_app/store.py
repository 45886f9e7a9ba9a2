"""The device's SQLite store: downloaded orders, every scan, and the upload outbox.

A scan and its outbox entry are written in one transaction (synchronous=FULL) before the UI
hears "ok", so an app killed between two scans loses neither. The outbox is drained by
``pda_app.sync`` in order; an entry leaves it only when the hub has answered for it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pda_app.core import OrderData, Scan
from protocols.pda import ScanResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    number TEXT PRIMARY KEY,
    download TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',
    message TEXT,
    downloaded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS scans (
    id TEXT PRIMARY KEY,
    order_number TEXT NOT NULL,
    raw TEXT NOT NULL,
    at TEXT NOT NULL,
    result TEXT NOT NULL,
    reason TEXT NOT NULL,
    serial TEXT,
    counts TEXT NOT NULL,
    covers TEXT NOT NULL,
    removed_reason TEXT,
    hub_result TEXT,
    hub_reason TEXT
);
CREATE INDEX IF NOT EXISTS scans_order ON scans (order_number);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    order_number TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class OutboxEntry:
    seq: int
    order: str
    kind: str  # scan | complete
    body: dict[str, Any]


class Store:
    """One SQLite file; safe to share between the UI thread and the sync thread."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # orders ------------------------------------------------------------------------------
    def save_order(self, download: dict[str, Any]) -> OrderData:
        order = OrderData.from_download(download)
        with self._tx() as db:
            db.execute(
                "INSERT INTO orders (number, download, downloaded_at) VALUES (?, ?, ?) "
                "ON CONFLICT (number) DO UPDATE SET download = excluded.download, "
                "downloaded_at = excluded.downloaded_at",
                (order.number, json.dumps(download), _now()),
            )
        return order

    def order(self, number: str) -> OrderData | None:
        with self._lock:
            row = self._db.execute(
                "SELECT download FROM orders WHERE number = ?", (number,)
            ).fetchone()
        return None if row is None else OrderData.from_download(json.loads(row[0]))

    def order_states(self) -> dict[str, tuple[str, str | None]]:
        with self._lock:
            rows = self._db.execute("SELECT number, state, message FROM orders").fetchall()
        return {number: (state, message) for number, state, message in rows}

    def set_order_state(self, number: str, state: str, message: str | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE orders SET state = ?, message = ? WHERE number = ?",
                (state, message, number),
            )

    # scans -------------------------------------------------------------------------------
    def add_scan(self, scan: Scan) -> None:
        body = {
            "id": scan.id,
            "code": scan.raw,
            "at": scan.at.isoformat(),
            "device_result": scan.result.value,
            "reason": scan.reason[:300],
        }
        with self._tx() as db:
            db.execute(
                "INSERT INTO scans (id, order_number, raw, at, result, reason, serial, counts, "
                "covers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    scan.id,
                    scan.order,
                    scan.raw,
                    scan.at.isoformat(),
                    scan.result.value,
                    scan.reason,
                    scan.serial,
                    json.dumps(scan.counts),
                    json.dumps(list(scan.covers)),
                ),
            )
            db.execute(
                "INSERT INTO outbox (order_number, kind, body) VALUES (?, 'scan', ?)",
                (scan.order, json.dumps(body)),
            )

    def remove_scan(self, scan: Scan, reason: str, removal_id: str) -> None:
        body = {
            "id": removal_id,
            "code": scan.id,
            "at": _now(),
            "action": "remove",
            "target": scan.id,
            "reason": reason[:300],
        }
        with self._tx() as db:
            db.execute("UPDATE scans SET removed_reason = ? WHERE id = ?", (reason, scan.id))
            db.execute(
                "INSERT INTO outbox (order_number, kind, body) VALUES (?, 'scan', ?)",
                (scan.order, json.dumps(body)),
            )

    def request_completion(self, order: str, completion_id: str, reason: str | None) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO outbox (order_number, kind, body) VALUES (?, 'complete', ?)",
                (order, json.dumps({"id": completion_id, "reason": reason})),
            )
            db.execute(
                "UPDATE orders SET state = 'completing', message = NULL WHERE number = ?",
                (order,),
            )

    def scans(self, order: str) -> list[Scan]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, order_number, raw, at, result, reason, serial, counts, covers, "
                "removed_reason, hub_result, hub_reason FROM scans WHERE order_number = ? "
                "ORDER BY rowid",
                (order,),
            ).fetchall()
        return [
            Scan(
                id=r[0],
                order=r[1],
                raw=r[2],
                at=datetime.fromisoformat(r[3]),
                result=ScanResult(r[4]),
                reason=r[5],
                serial=r[6],
                counts=json.loads(r[7]),
                covers=tuple(json.loads(r[8])),
                removed_reason=r[9],
                hub_result=r[10],
                hub_reason=r[11],
            )
            for r in rows
        ]

    # outbox ------------------------------------------------------------------------------
    def pending(self, limit: int = 1000) -> list[OutboxEntry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, order_number, kind, body FROM outbox ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [OutboxEntry(seq, order, kind, json.loads(body)) for seq, order, kind, body in rows]

    def pending_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def scans_answered(self, seqs: list[int], answers: list[dict[str, Any]]) -> None:
        """The hub answered for these outbox entries: keep its word, drop the entries."""
        with self._tx() as db:
            db.executemany(
                "UPDATE scans SET hub_result = ?, hub_reason = ? WHERE id = ?",
                [(a["result"], a.get("reason"), a["id"]) for a in answers],
            )
            db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('last_sync', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (_now(),),
            )

    def completion_answered(self, seq: int, order: str, state: str, message: str | None) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            db.execute(
                "UPDATE orders SET state = ?, message = ? WHERE number = ?", (state, message, order)
            )
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('last_sync', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (_now(),),
            )

    def last_sync(self) -> datetime | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'last_sync'").fetchone()
        return None if row is None else datetime.fromisoformat(row[0])

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


def _now() -> str:
    return datetime.now(UTC).isoformat()

"""Upgrading a SQLite database that holds shipped codes: batch migrations rebuild tables
(copy, DROP, rename) that other rows point at, which must not trip the foreign keys."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hub.db import upgrade_sync


def test_upgrade_a_sqlite_database_with_shipped_codes(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade_sync(url, "0004_consumer_scans")
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            PRAGMA foreign_keys=ON;
            INSERT INTO dealers (id, code, name, region, created_at)
                VALUES (1, 'D1', 'Dealer', '330000', '2026-01-01');
            INSERT INTO orders (id, number, dealer_id, region, state, created_at)
                VALUES (1, 'SO-1', 1, '330000', 'shipped', '2026-01-01');
            INSERT INTO products (id, sku, name, created_at) VALUES (1, 'W', 'Wine', '2026-01-01');
            INSERT INTO code_batches (id, product_id, kind, key_id, counter_start, count,
                with_pin, created_at) VALUES (1, 1, 'item', 0, 0, 1, 0, '2026-01-01');
            INSERT INTO codes (id, serial, batch_id, seq, kind, product_id, state, order_id,
                dealer_id, scan_count) VALUES (1, 'S1', 1, 1, 'item', 1, 'shipped', 1, 1, 0);
            """
        )
    upgrade_sync(url)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT order_id, dealer_id FROM codes").fetchall() == [(1, 1)]
        assert db.execute("SELECT number FROM orders").fetchall() == [("SO-1",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []

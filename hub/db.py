"""Engine, sessions and migrations for SQLite (embedded default) and PostgreSQL (scale)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from hub.errors import HubConfigError

MIGRATIONS = Path(__file__).parent / "migrations"


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        if parsed.drivername != "sqlite+aiosqlite":
            raise HubConfigError(
                f"SQLite needs the aiosqlite driver: expected sqlite+aiosqlite://, got {url}"
            )
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "savepoint", _sqlite_savepoint)
        return engine
    if parsed.drivername == "postgresql+asyncpg":
        return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    raise HubConfigError(
        f"Unsupported database URL {parsed.render_as_string(hide_password=True)}: "
        "expected sqlite+aiosqlite:///<file> or postgresql+asyncpg://..."
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL, not NORMAL: in WAL mode NORMAL may roll back committed transactions on power
    # loss, and a commit is what an ack (and a consumer's answer) promises is durable.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_savepoint(connection: Any, _name: str | None) -> None:
    """Open the real transaction before a SAVEPOINT, when none is open yet.

    pysqlite begins a transaction lazily, just before the first INSERT/UPDATE/DELETE. A
    savepoint opened before any write (``session.begin_nested()`` first thing) therefore
    *starts* SQLite's transaction itself, and releasing it commits everything at once,
    whatever the outer transaction does later. SQLAlchemy's documented pysqlite recipe cures
    this by taking BEGIN away from the driver for every transaction; applied as written, it
    also makes every read-then-write transaction hold its read snapshot from the first
    SELECT, and two such transactions on one file then fail with "database is locked" instead
    of waiting for each other (concurrent shipments and code batches did). So the recipe is
    applied only where it matters: BEGIN ourselves just before a savepoint that would
    otherwise start the transaction.
    """
    if not connection.connection.dbapi_connection._connection.in_transaction:
        connection.exec_driver_sql("BEGIN")


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_sync(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision``; alembic runs its own event loop, so use a thread."""
    await asyncio.to_thread(upgrade_sync, url, revision)

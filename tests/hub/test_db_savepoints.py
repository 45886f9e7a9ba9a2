"""SAVEPOINTs nest inside the outer transaction on SQLite too (SQLAlchemy's pysqlite recipe):
releasing a savepoint commits nothing; only the outer commit does."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub.db import create_engine, sessionmaker, upgrade
from hub.models import Dealer
from hub.timeutil import utcnow


class Boom(Exception):
    pass


def dealer(code: str) -> Dealer:
    return Dealer(code=code, name=code, region="Zhejiang", created_at=utcnow())


async def dealers(sessions: object) -> list[str]:
    async with sessions() as session:  # type: ignore[operator]
        return list(await session.scalars(select(Dealer.code).order_by(Dealer.code)))


async def test_a_released_savepoint_rolls_back_with_its_transaction(database_url: str) -> None:
    await upgrade(database_url)
    engine = create_engine(database_url)
    sessions = sessionmaker(engine)
    try:
        # The savepoint is the first statement of the transaction: without the recipe,
        # pysqlite has not begun yet, SAVEPOINT starts a transaction of its own and RELEASE
        # commits the row at once.
        with pytest.raises(Boom):
            async with sessions() as session, session.begin():
                async with session.begin_nested():
                    session.add(dealer("SAVED-THEN-ROLLED-BACK"))
                raise Boom
        assert await dealers(sessions) == []

        # A rolled-back savepoint undoes only its own part.
        async with sessions() as session, session.begin():
            session.add(dealer("OUTER"))
            with pytest.raises(Boom):
                async with session.begin_nested():
                    session.add(dealer("INNER"))
                    await session.flush()
                    raise Boom
        assert await dealers(sessions) == ["OUTER"]

        # A read-only transaction followed by a write in a savepoint commits once, at the end.
        async with sessions() as session, session.begin():
            await session.scalar(select(func.count()).select_from(Dealer))
            async with session.begin_nested():
                session.add(dealer("LATER"))
        assert await dealers(sessions) == ["LATER", "OUTER"]
    finally:
        await engine.dispose()


async def test_sqlite_pragmas_hold_with_the_recipe(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.sqlite3'}"
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            mode = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
            sync = (await connection.exec_driver_sql("PRAGMA synchronous")).scalar()
            keys = (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar()
        assert (mode, sync, keys) == ("wal", 2, 1)
    finally:
        await engine.dispose()

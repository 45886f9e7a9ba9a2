"""What the command groups share: a session on the configured database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from hub.db import create_engine, sessionmaker, upgrade
from hub.keycheck import check_keys
from hub.settings import Settings
from protocols.codes import Keyring

T = TypeVar("T")


async def in_session(
    settings: Settings,
    work: Callable[[AsyncSession], Awaitable[T]],
    keyring: Keyring | None = None,
) -> T:
    """Run ``work`` in one transaction on the configured database (migrated first); with a
    ``keyring``, after checking it is the one the database was used with."""
    await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with sessionmaker(engine)() as session, session.begin():
            if keyring is not None:
                await check_keys(session, keyring)
            return await work(session)
    finally:
        await engine.dispose()

"""Periodic chores of a hub process: today, deleting audit entries past their retention."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub import audit

log = logging.getLogger(__name__)

INTERVAL_S = 3600.0


async def run_once(sessions: async_sessionmaker[AsyncSession], retention_days: int) -> int:
    """One cleanup pass in its own short transaction; returns how many entries went."""
    async with sessions() as session, session.begin():
        removed = await audit.cleanup(session, retention_days)
    if removed:
        log.info("audit cleanup: %d entries older than %d days deleted", removed, retention_days)
    return removed


async def run_forever(
    sessions: async_sessionmaker[AsyncSession], retention_days: int, interval: float = INTERVAL_S
) -> None:
    """Clean up now and then every ``interval`` seconds; a failure is logged and retried."""
    while True:
        try:
            await run_once(sessions, retention_days)
        except Exception:
            log.exception("audit cleanup failed; trying again in %.0f s", interval)
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def running(
    sessions: async_sessionmaker[AsyncSession], retention_days: int
) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(run_forever(sessions, retention_days), name="housekeeping")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

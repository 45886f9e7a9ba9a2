"""Code pools: seq (卡序号) ranges of a generation batch allocated to a production line.

The rule, stated once (:func:`pool_refusal`): a code of a batch that has pools may be
commissioned only by a station of a line holding a pool that contains the code's seq; a batch
without pools is unrestricted. Allocation refuses ranges outside the batch and ranges that
overlap another pool of the same batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import ConflictError, InvalidRequestError, NotFoundError
from hub.models import CodeBatch, CodePool
from hub.timeutil import utcnow


@dataclass(frozen=True)
class PoolRange:
    first: int
    last: int
    line: str


def pool_refusal(
    serial: str, seq: int, station_line: str | None, pools: Sequence[PoolRange]
) -> str | None:
    """Why the code (``seq`` in its batch) may not be commissioned on ``station_line``."""
    if not pools:
        return None
    for pool in pools:
        if pool.first <= seq <= pool.last:
            if pool.line == station_line:
                return None
            return (
                f"code {serial} (seq {seq}) is in the pool of line {pool.line!r}, "
                f"not of line {station_line!r}"
            )
    return f"code {serial} (seq {seq}) is outside the code pools of its batch"


async def pools_of(session: AsyncSession, batch_ids: Iterable[int]) -> dict[int, list[PoolRange]]:
    wanted = sorted(set(batch_ids))
    out: dict[int, list[PoolRange]] = {b: [] for b in wanted}
    if not wanted:
        return out
    rows = await session.scalars(select(CodePool).where(CodePool.batch_id.in_(wanted)))
    for pool in rows:
        out[pool.batch_id].append(PoolRange(pool.first_seq, pool.last_seq, pool.line))
    return out


async def allocate(
    session: AsyncSession,
    batch_id: int,
    first: int,
    last: int,
    line: str,
    work_order: str | None = None,
) -> CodePool:
    """Allocate codes ``first``..``last`` of a batch to ``line``."""
    batch = await session.get(CodeBatch, batch_id)
    if batch is None:
        raise NotFoundError(f"Unknown batch {batch_id}")
    if not 1 <= first <= last <= batch.count:
        raise InvalidRequestError(
            f"Pool {first}..{last}: expected 1 <= first <= last <= {batch.count} "
            f"(the size of batch {batch_id})"
        )
    if not line.strip():
        raise InvalidRequestError("Pool line: expected a production line, got nothing")
    clash = await session.scalar(
        select(CodePool).where(
            CodePool.batch_id == batch_id, CodePool.first_seq <= last, CodePool.last_seq >= first
        )
    )
    if clash is not None:
        raise ConflictError(
            f"Pool {first}..{last} of batch {batch_id} overlaps pool {clash.id} "
            f"({clash.first_seq}..{clash.last_seq}, line {clash.line!r})"
        )
    pool = CodePool(
        batch_id=batch_id,
        first_seq=first,
        last_seq=last,
        line=line,
        work_order=work_order,
        created_at=utcnow(),
    )
    session.add(pool)
    await session.flush()
    return pool


async def list_pools(session: AsyncSession, batch_id: int | None = None) -> list[CodePool]:
    query = select(CodePool).order_by(CodePool.batch_id, CodePool.first_seq)
    if batch_id is not None:
        query = query.where(CodePool.batch_id == batch_id)
    return list(await session.scalars(query))

"""Code batches: reserve counters, seal serials in bulk, insert, export for the printer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.domain.lifecycle import State
from hub.errors import InvalidRequestError, NotFoundError
from hub.models import Code, CodeBatch, CodeKeyCounter, Product
from hub.registry import product_by_sku
from hub.sql import insert_ignore
from hub.timeutil import utcnow
from protocols.codes import CODES_PER_KEY, CodeKind, Keyring, Serial, code_url
from protocols.errors import CapacityError, CodeFormatError

MAX_BATCH = 5_000_000
_INSERT_CHUNK = 10_000
EXPORT_COLUMNS = ("seq", "serial", "url", "human", "pin")


@dataclass(frozen=True)
class BatchInfo:
    id: int
    sku: str
    kind: str
    count: int
    key_id: int
    with_pin: bool
    states: dict[str, int]


async def _reserve(session: AsyncSession, key_id: int, count: int) -> int:
    """Reserve ``count`` counters under a row lock (atomic UPDATE ... RETURNING)."""
    await insert_ignore(session, CodeKeyCounter, [{"key_id": key_id, "next_counter": 0}])
    end = await session.scalar(
        update(CodeKeyCounter)
        .where(CodeKeyCounter.key_id == key_id)
        .values(next_counter=CodeKeyCounter.next_counter + count)
        .returning(CodeKeyCounter.next_counter)
    )
    assert end is not None
    if end > CODES_PER_KEY:
        raise CapacityError(
            f"Code key {key_id} has {CODES_PER_KEY - (end - count)} codes left, "
            f"{count} requested: configure a new key and make it active"
        )
    return int(end) - count


async def generate_batch(
    session: AsyncSession,
    keyring: Keyring,
    sku: str,
    count: int,
    kind: str = "item",
    with_pin: bool = False,
) -> CodeBatch:
    """Create a batch of ``count`` new codes for a product (caller commits)."""
    if not 1 <= count <= MAX_BATCH:
        raise InvalidRequestError(f"Invalid count {count}: expected 1..{MAX_BATCH}")
    try:
        code_kind = CodeKind.parse(kind)
    except CodeFormatError as exc:
        raise InvalidRequestError(str(exc)) from None
    product = await product_by_sku(session, sku)
    key = keyring.active
    start = await _reserve(session, key.key_id, count)
    batch = CodeBatch(
        product_id=product.id,
        kind=code_kind.name.lower(),
        key_id=key.key_id,
        counter_start=start,
        count=count,
        with_pin=with_pin,
        created_at=utcnow(),
    )
    session.add(batch)
    await session.flush()
    # Sealing a million serials takes seconds of CPU: keep the event loop free meanwhile.
    serials = await asyncio.to_thread(key.seal_range, code_kind, start, count)
    base = {
        "batch_id": batch.id,
        "kind": batch.kind,
        "product_id": product.id,
        "state": State.GENERATED.value,
        "scan_count": 0,
    }
    for offset in range(0, count, _INSERT_CHUNK):
        rows = [
            {**base, "serial": serial, "seq": offset + i + 1}
            for i, serial in enumerate(serials[offset : offset + _INSERT_CHUNK])
        ]
        await session.execute(insert(Code), rows)
    return batch


async def batch_info(session: AsyncSession, batch_id: int) -> BatchInfo:
    row = (
        await session.execute(
            select(CodeBatch, Product.sku)
            .join(Product, Product.id == CodeBatch.product_id)
            .where(CodeBatch.id == batch_id)
        )
    ).first()
    if row is None:
        raise NotFoundError(f"Unknown code batch {batch_id}")
    batch, sku = row
    counts = await session.execute(
        select(Code.state, func.count()).where(Code.batch_id == batch_id).group_by(Code.state)
    )
    return BatchInfo(
        id=batch.id,
        sku=sku,
        kind=batch.kind,
        count=batch.count,
        key_id=batch.key_id,
        with_pin=batch.with_pin,
        states={state: int(n) for state, n in counts},
    )


async def get_batch(session: AsyncSession, batch_id: int) -> CodeBatch:
    batch = await session.get(CodeBatch, batch_id)
    if batch is None:
        raise NotFoundError(f"Unknown code batch {batch_id}")
    return batch


async def export_rows(
    session: AsyncSession, keyring: Keyring, batch_id: int, resolver: str
) -> AsyncIterator[list[list[str]]]:
    """Printer rows (seq, serial, url, human, pin) in chunks, streamed from the database."""
    batch = await get_batch(session, batch_id)
    product = await session.get(Product, batch.product_id)
    assert product is not None
    key = keyring.key(batch.key_id)
    result = await session.stream(
        select(Code.seq, Code.serial)
        .where(Code.batch_id == batch_id)
        .order_by(Code.seq)
        .execution_options(yield_per=_INSERT_CHUNK)
    )
    async for part in result.partitions():
        serials = [serial for _, serial in part]
        pins = key.pins(serials) if batch.with_pin else [""] * len(serials)
        yield [
            [
                str(seq),
                serial,
                code_url(resolver, serial, product.gtin),
                Serial(serial).as_human(),
                pin,
            ]
            for (seq, serial), pin in zip(part, pins, strict=True)
        ]

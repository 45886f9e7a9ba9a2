"""Code batches: what a batch is and holds, range selection by sequence number, the printer's
rows. Generation itself is a job (hub/jobs/generate.py); ``generate_batch`` runs one to the
end inside the caller's transaction, for small batches and tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import InvalidRequestError, NotFoundError
from hub.jobs import generate
from hub.models import Code, CodeBatch, Product
from hub.timeutil import utcnow
from protocols.codes import Keyring, code_url, human_forms

MAX_BATCH = generate.MAX_JOB_CODES
_READ_CHUNK = 10_000
EXPORT_COLUMNS = ("seq", "serial", "url", "human", "pin", "card_no", "sscc")


@dataclass(frozen=True)
class BatchInfo:
    id: int
    sku: str
    kind: str
    count: int
    key_id: int
    with_pin: bool
    states: dict[str, int]
    status: str
    generated: int
    first_card_no: str
    last_card_no: str
    sscc_prefix: str | None
    error: str | None


async def generate_batch(
    session: AsyncSession,
    keyring: Keyring,
    sku: str,
    count: int,
    kind: str = "item",
    with_pin: bool = False,
    **options: object,
) -> CodeBatch:
    """Create a batch and write all its codes in the caller's transaction (caller commits).
    Long batches go through a job instead (short transactions, progress, resumable)."""
    spec = generate.JobSpec(sku=sku, count=count, kind=kind, with_pin=with_pin, **options)  # type: ignore[arg-type]
    batch = await generate.create_job(session, keyring, spec)
    for first in range(1, count + 1, _READ_CHUNK):
        n = min(_READ_CHUNK, count - first + 1)
        await generate.insert_rows(session, generate.chunk_rows(keyring, batch, first, n))
    batch.status, batch.generated, batch.finished_at = "done", count, utcnow()
    await session.flush()
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
        status=batch.status,
        generated=batch.generated,
        first_card_no=generate.card_number(batch, 1),
        last_card_no=generate.card_number(batch, batch.count),
        sscc_prefix=batch.sscc_prefix,
        error=batch.error,
    )


async def list_batches(session: AsyncSession, limit: int, offset: int) -> list[BatchInfo]:
    """Batches, newest first, without per-state counts (those need a scan of the codes)."""
    rows = await session.execute(
        select(CodeBatch, Product.sku)
        .join(Product, Product.id == CodeBatch.product_id)
        .order_by(CodeBatch.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [
        BatchInfo(
            id=b.id,
            sku=sku,
            kind=b.kind,
            count=b.count,
            key_id=b.key_id,
            with_pin=b.with_pin,
            states={},
            status=b.status,
            generated=b.generated,
            first_card_no=generate.card_number(b, 1),
            last_card_no=generate.card_number(b, b.count),
            sscc_prefix=b.sscc_prefix,
            error=b.error,
        )
        for b, sku in rows
    ]


async def get_batch(session: AsyncSession, batch_id: int) -> CodeBatch:
    batch = await session.get(CodeBatch, batch_id)
    if batch is None:
        raise NotFoundError(f"Unknown code batch {batch_id}")
    return batch


def seq_range(batch: CodeBatch, first: int | None, last: int | None) -> tuple[int, int]:
    """The inclusive seq range asked for, checked against what the batch has written."""
    first = 1 if first is None else first
    last = batch.generated if last is None else last
    if not 1 <= first <= last <= batch.count:
        raise InvalidRequestError(
            f"Sequence range {first}..{last}: expected 1 <= from <= to <= {batch.count}"
        )
    if last > batch.generated:
        raise InvalidRequestError(
            f"Sequence range {first}..{last}: batch {batch.id} has written codes "
            f"1..{batch.generated} so far ({batch.status})"
        )
    return first, last


async def _windows(
    session: AsyncSession, batch: CodeBatch, first: int, last: int
) -> AsyncIterator[list[tuple[int, str, str | None]]]:
    """(seq, serial, sscc) of seq ``first..last`` in windows of _READ_CHUNK, read over the
    (batch_id, seq) index: a bounded page each and no per-row ORM work (on SQLite straight
    from the driver's cursor)."""
    connection = await session.connection()
    sqlite = connection.dialect.name == "sqlite"
    window = text(
        "SELECT seq, serial, sscc FROM codes "
        "WHERE batch_id = :batch AND seq >= :lo AND seq <= :hi ORDER BY seq"
    )
    raw_sql = "SELECT seq, serial, sscc FROM codes WHERE batch_id = ? AND seq >= ? AND seq <= ? "
    raw_sql += "ORDER BY seq"
    for lo in range(first, last + 1, _READ_CHUNK):
        hi = min(last, lo + _READ_CHUNK - 1)
        if sqlite:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            async with driver.execute(raw_sql, (batch.id, lo, hi)) as cursor:
                yield list(await cursor.fetchall())
        else:
            params = {"batch": batch.id, "lo": lo, "hi": hi}
            yield [tuple(r) for r in await connection.execute(window, params)]


async def _export_context(
    session: AsyncSession, keyring: Keyring, batch_id: int, first: int | None, last: int | None
) -> tuple[CodeBatch, Product, Any, int, int]:
    batch = await get_batch(session, batch_id)
    first, last = seq_range(batch, first, last)
    product = await session.get(Product, batch.product_id)
    assert product is not None
    return batch, product, keyring.key(batch.key_id), first, last


async def export_rows(
    session: AsyncSession,
    keyring: Keyring,
    batch_id: int,
    resolver: str,
    first: int | None = None,
    last: int | None = None,
) -> AsyncIterator[list[list[str]]]:
    """Printer rows (EXPORT_COLUMNS) of seq ``first..last`` in chunks, streamed from the
    database (never the whole batch in memory); random serials are selected by seq."""
    batch, product, key, first, last = await _export_context(
        session, keyring, batch_id, first, last
    )
    base = code_url(resolver, "", product.gtin)
    prefix, start, width = batch.seq_prefix or "", batch.seq_start - 1, batch.seq_width
    async for part in _windows(session, batch, first, last):
        serials = [row[1] for row in part]
        pins = key.pins(serials) if batch.with_pin else [""] * len(serials)
        humans = human_forms(serials)
        yield [
            [
                str(seq),
                serial,
                base + serial,
                human,
                pin,
                f"{prefix}{str(start + seq).zfill(width)}",
                sscc or "",
            ]
            for (seq, serial, sscc), human, pin in zip(part, humans, pins, strict=True)
        ]


async def export_csv(
    session: AsyncSession,
    keyring: Keyring,
    batch_id: int,
    resolver: str,
    first: int | None = None,
    last: int | None = None,
) -> AsyncIterator[bytes]:
    """The printer CSV (header first) in chunks of bytes. No field can hold a comma, quote
    or line break (digits, Crockford symbols, URLs of them, a prefix without those), so each
    line is one format string instead of a csv.writer call per row."""
    batch, product, key, first, last = await _export_context(
        session, keyring, batch_id, first, last
    )
    base = code_url(resolver, "", product.gtin)
    prefix, start, width = batch.seq_prefix or "", batch.seq_start - 1, batch.seq_width
    yield (",".join(EXPORT_COLUMNS) + "\n").encode()
    async for part in _windows(session, batch, first, last):
        serials = [row[1] for row in part]
        pins = key.pins(serials) if batch.with_pin else [""] * len(serials)
        humans = human_forms(serials)
        yield "".join(
            [
                f"{seq},{serial},{base}{serial},{human},{pin},"
                f"{prefix}{str(start + seq).zfill(width)},{sscc or ''}\n"
                for (seq, serial, sscc), human, pin in zip(part, humans, pins, strict=True)
            ]
        ).encode()

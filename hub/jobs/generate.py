"""Code generation jobs: a batch is created at once (its counters reserved), its codes are
written afterwards in short transactions of ``chunk`` codes.

Each chunk transaction inserts the chunk's codes and advances ``code_batches.generated``
with a conditional UPDATE (``status = 'running' AND owner = me``); so

* a consumer verification waiting for the database write lock (SQLite) waits for at most
  one chunk, never for the whole batch;
* a hub that dies mid-job leaves ``generated`` equal to the codes that exist, and the job
  resumes at ``generated + 1`` under whichever process claims it next (same serials: the
  counters were reserved when the batch was created);
* cancelling is one UPDATE of the status; the next chunk sees it, rolls back, and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from biip.checksums import gs1_standard_check_digit
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from hub.domain.lifecycle import State
from hub.errors import ConflictError, InvalidRequestError, NotFoundError
from hub.models import CodeBatch, CodeKeyCounter
from hub.registry import product_by_sku
from hub.sql import insert_ignore
from hub.timeutil import utcnow
from protocols.codes import CODES_PER_KEY, CodeKind, Keyring
from protocols.errors import CapacityError, CodeFormatError

log = logging.getLogger(__name__)

MAX_JOB_CODES = 20_000_000
CHUNK = 10_000
MIN_CHUNK = 500
TARGET_S = 0.06
ACTIVE = ("queued", "running")
FINAL = ("done", "cancelled", "failed")
_COLUMNS = ("serial", "sscc", "batch_id", "seq", "kind", "product_id", "state", "scan_count")


def process_id() -> str:
    """Names this process as a job owner: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class JobSpec:
    sku: str
    count: int
    kind: str = "item"
    with_pin: bool = False
    seq_prefix: str | None = None
    seq_start: int = 1
    seq_width: int = 0
    sscc_prefix: str | None = None  # extension digit + GS1 company prefix, 8-17 digits
    sscc_start: int = 0


def card_number(batch: CodeBatch, seq: int) -> str:
    """The printed sequence number (卡序号) of position ``seq`` of a batch."""
    number = str(batch.seq_start + seq - 1).zfill(batch.seq_width)
    return f"{batch.seq_prefix or ''}{number}"


def seq_of_card_number(batch: CodeBatch, text: str) -> int:
    """The position in the batch of a printed sequence number; a clear error otherwise."""
    prefix = batch.seq_prefix or ""
    if not text.startswith(prefix) or not text[len(prefix) :].isdigit():
        raise InvalidRequestError(
            f"Sequence number {text[:40]!r}: expected {prefix!r} followed by digits"
        )
    seq = int(text[len(prefix) :]) - batch.seq_start + 1
    if not 1 <= seq <= batch.count:
        raise InvalidRequestError(
            f"Sequence number {text[:40]!r} is outside batch {batch.id}: expected "
            f"{card_number(batch, 1)}..{card_number(batch, batch.count)}"
        )
    return seq


def sscc_of(prefix: str, reference: int) -> str:
    """An SSCC: extension digit + company prefix, the serial reference, the check digit."""
    body = prefix + str(reference).zfill(17 - len(prefix))
    return body + str(gs1_standard_check_digit(body))


def _check_spec(spec: JobSpec, max_codes: int) -> CodeKind:
    if not 1 <= spec.count <= max_codes:
        raise InvalidRequestError(f"Invalid count {spec.count}: expected 1..{max_codes}")
    try:
        kind = CodeKind.parse(spec.kind)
    except CodeFormatError as exc:
        raise InvalidRequestError(str(exc)) from None
    if spec.seq_prefix is not None and (
        len(spec.seq_prefix) > 16
        or not spec.seq_prefix.isascii()
        or not spec.seq_prefix.isprintable()
        or any(ch in spec.seq_prefix for ch in ',"')
    ):
        raise InvalidRequestError(
            f"Sequence prefix {spec.seq_prefix[:20]!r}: expected up to 16 printable ASCII "
            "characters other than comma and quote"
        )
    last = spec.seq_start + spec.count - 1
    if spec.seq_start < 0 or last >= 10**15:
        raise InvalidRequestError(
            f"Sequence numbers {spec.seq_start}..{last}: expected numbers of 0..10^15-1"
        )
    if not 0 <= spec.seq_width <= 15:
        raise InvalidRequestError(f"Sequence width {spec.seq_width}: expected 0..15")
    if spec.sscc_prefix is not None:
        if kind is not CodeKind.PALLET:
            raise InvalidRequestError(
                f"SSCCs are for pallets: expected kind pallet, got {spec.kind}"
            )
        p = spec.sscc_prefix
        if not (p.isascii() and p.isdigit() and 8 <= len(p) <= 13):
            raise InvalidRequestError(
                f"SSCC prefix {p[:20]!r}: expected the extension digit and a GS1 company "
                "prefix, 8-13 digits"
            )
        room = 10 ** (17 - len(p))
        if spec.sscc_start < 0 or spec.sscc_start + spec.count > room:
            raise InvalidRequestError(
                f"SSCC serial references {spec.sscc_start}..{spec.sscc_start + spec.count - 1} "
                f"do not fit after prefix {p}: expected 0..{room - 1}"
            )
    return kind


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


async def create_job(
    session: AsyncSession, keyring: Keyring, spec: JobSpec, max_codes: int = MAX_JOB_CODES
) -> CodeBatch:
    """A queued batch with its counters reserved (caller commits; one short transaction)."""
    kind = _check_spec(spec, max_codes)
    product = await product_by_sku(session, spec.sku)
    if spec.sscc_prefix is not None:
        clash = await session.scalar(
            select(CodeBatch.id).where(
                CodeBatch.sscc_prefix == spec.sscc_prefix,
                CodeBatch.sscc_start < spec.sscc_start + spec.count,
                CodeBatch.sscc_start + CodeBatch.count > spec.sscc_start,
            )
        )
        if clash is not None:
            raise ConflictError(
                f"SSCCs {sscc_of(spec.sscc_prefix, spec.sscc_start)}.. overlap those of "
                f"batch {clash}: expected a serial reference range no batch has used"
            )
    key = keyring.active
    start = await _reserve(session, key.key_id, spec.count)
    batch = CodeBatch(
        product_id=product.id,
        kind=kind.name.lower(),
        key_id=key.key_id,
        counter_start=start,
        count=spec.count,
        with_pin=spec.with_pin,
        created_at=utcnow(),
        seq_prefix=spec.seq_prefix or None,
        seq_start=spec.seq_start,
        seq_width=spec.seq_width,
        sscc_prefix=spec.sscc_prefix,
        sscc_start=spec.sscc_start if spec.sscc_prefix is not None else None,
        status="queued",
        generated=0,
    )
    session.add(batch)
    await session.flush()
    return batch


def chunk_rows(keyring: Keyring, batch: CodeBatch, first_seq: int, n: int) -> list[tuple[Any, ...]]:
    """Rows of codes ``first_seq .. first_seq+n-1`` of a batch, ordered by serial (a B-tree
    takes sorted keys with far fewer page splits and cache misses)."""
    key = keyring.key(batch.key_id)
    kind = CodeKind.parse(batch.kind)
    serials = key.seal_range(kind, batch.counter_start + first_seq - 1, n)
    generated = State.GENERATED.value
    if batch.sscc_prefix is not None and batch.sscc_start is not None:
        base = batch.sscc_start + first_seq - 1
        ssccs: list[str | None] = [sscc_of(batch.sscc_prefix, base + i) for i in range(n)]
    else:
        ssccs = [None] * n
    rows = [
        (serial, sscc, batch.id, first_seq + i, batch.kind, batch.product_id, generated, 0)
        for i, (serial, sscc) in enumerate(zip(serials, ssccs, strict=True))
    ]
    rows.sort()
    return rows


@contextlib.asynccontextmanager
async def _chunk_connection(
    sessions: async_sessionmaker[AsyncSession], sqlite: bool
) -> AsyncIterator[AsyncConnection]:
    """A connection for one chunk. On SQLite its commits use synchronous=NORMAL: a chunk
    lost to a power cut takes its ``generated`` update with it (same transaction), so the
    job just writes it again; the connection goes back to the pool at FULL (which acks and
    answers need) and with foreign keys checked again."""
    engine = sessions.kw["bind"]
    async with engine.connect() as connection:
        if not sqlite:
            yield connection
            return
        # The rows point at the batch and product the job has just read: no need to look
        # them up again per row. A bigger page cache keeps the serial index's pages hot.
        for pragma in ("synchronous=NORMAL", "foreign_keys=OFF", "cache_size=-65536"):
            await connection.exec_driver_sql(f"PRAGMA {pragma}")
        await connection.commit()
        try:
            yield connection
        finally:
            for pragma in ("synchronous=FULL", "foreign_keys=ON"):
                await connection.exec_driver_sql(f"PRAGMA {pragma}")
            await connection.commit()


async def insert_rows(target: AsyncSession | AsyncConnection, rows: list[tuple[Any, ...]]) -> None:
    """Bulk insert of code rows straight through the driver (no per-row ORM work)."""
    if not rows:
        return
    connection = await target.connection() if isinstance(target, AsyncSession) else target
    if connection.dialect.name == "postgresql":
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table("codes", records=rows, columns=list(_COLUMNS))
        return
    marks = ", ".join("?" for _ in _COLUMNS)
    await connection.exec_driver_sql(
        f"INSERT INTO codes ({', '.join(_COLUMNS)}) VALUES ({marks})",  # noqa: S608 - constants
        rows,
    )


ProgressHook = Callable[[int, int], Any]  # (generated, count)


class JobStopped(Exception):
    """The job was cancelled or taken over by another process while it ran."""


async def claim(
    sessions: async_sessionmaker[AsyncSession], batch_id: int, owner: str, stale_s: float
) -> bool:
    """Take a queued job, or a running one whose owner stopped beating (a dead process)."""
    now = utcnow()
    async with sessions() as session, session.begin():
        claimed = await session.scalar(
            update(CodeBatch)
            .where(
                CodeBatch.id == batch_id,
                CodeBatch.status.in_(ACTIVE),
                or_(
                    CodeBatch.owner.is_(None),
                    CodeBatch.owner == owner,
                    CodeBatch.heartbeat_at.is_(None),
                    CodeBatch.heartbeat_at < now - timedelta(seconds=stale_s),
                ),
            )
            .values(status="running", owner=owner, heartbeat_at=now)
            .returning(CodeBatch.id)
        )
    return claimed is not None


async def run_job(
    sessions: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    batch_id: int,
    owner: str,
    *,
    chunk: int = CHUNK,
    progress: ProgressHook | None = None,
    stop_after_chunks: int | None = None,
    target_s: float | None = None,
    contended: Callable[[], bool] | None = None,
) -> str:
    """Write the codes of a claimed job, one short transaction per chunk; the final status
    (done, cancelled) or ``running`` when ``stop_after_chunks`` (tests: a crash) ran out.

    ``target_s``: resize chunks so that each transaction takes about this long (a loaded
    machine gets smaller chunks), between MIN_CHUNK and ``chunk`` codes. ``contended``: says
    whether other requests are being served right now; then, on SQLite, the job pauses after
    each commit for as long as its transaction took, so that a writer waiting in SQLite's busy
    handler (which polls with growing sleeps) finds the database free instead of starving
    behind chunk after chunk."""
    async with sessions() as session:
        batch = await session.get(CodeBatch, batch_id)
        if batch is None:
            raise NotFoundError(f"Unknown code batch {batch_id}")
    chunks = 0
    size = chunk if target_s is None else min(chunk, MIN_CHUNK * 4)
    loop = asyncio.get_running_loop()
    async with sessions() as session:
        sqlite = session.get_bind().dialect.name == "sqlite"
    state = await _state(sessions, batch_id)
    while True:
        generated, status, current_owner = state
        if status != "running":
            return status
        if current_owner != owner:
            log.warning("Batch %s was taken over by %s", batch_id, current_owner)
            return "taken over"
        if generated >= batch.count:
            break
        if stop_after_chunks is not None and chunks >= stop_after_chunks:
            return "running"
        n = min(size, batch.count - generated)
        # Sealing and building rows is CPU work: off the event loop, outside the transaction.
        rows = await asyncio.to_thread(chunk_rows, keyring, batch, generated + 1, n)
        done = generated + n == batch.count
        started = loop.time()
        async with _chunk_connection(sessions, sqlite) as connection, connection.begin():
            moved = (
                await connection.execute(
                    update(CodeBatch)
                    .where(
                        CodeBatch.id == batch_id,
                        CodeBatch.status == "running",
                        CodeBatch.owner == owner,
                        CodeBatch.generated == generated,
                    )
                    .values(
                        generated=generated + n,
                        heartbeat_at=utcnow(),
                        # The last chunk ends the job in the same transaction.
                        **({"status": "done", "finished_at": utcnow()} if done else {}),
                    )
                    .returning(CodeBatch.id)
                )
            ).scalar()
            if moved is not None:
                await insert_rows(connection, rows)
        took = loop.time() - started
        if moved is None:
            state = await _state(sessions, batch_id)  # cancelled or taken over: says which
            continue
        state = (generated + n, "done" if done else "running", owner)
        chunks += 1
        if progress is not None:
            progress(generated + n, batch.count)
        busy = contended is not None and contended()
        if target_s is not None and n == size:
            # Transactions of about target_s; half that while requests are being served.
            goal = target_s / 2 if busy else target_s
            size = max(MIN_CHUNK, min(chunk, int(size * goal / max(took, 1e-3))))
        if sqlite and busy:
            await asyncio.sleep(max(took, 0.02))
    async with sessions() as session, session.begin():
        await session.execute(
            update(CodeBatch)
            .where(and_(CodeBatch.id == batch_id, CodeBatch.status == "running"))
            .where(CodeBatch.owner == owner)
            .values(status="done", finished_at=utcnow(), heartbeat_at=utcnow())
        )
    return "done"


async def _state(
    sessions: async_sessionmaker[AsyncSession], batch_id: int
) -> tuple[int, str, str | None]:
    async with sessions() as session:
        row = (
            await session.execute(
                select(CodeBatch.generated, CodeBatch.status, CodeBatch.owner).where(
                    CodeBatch.id == batch_id
                )
            )
        ).one()
    return int(row[0]), str(row[1]), row[2]


async def fail(
    sessions: async_sessionmaker[AsyncSession], batch_id: int, owner: str, error: str
) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(CodeBatch)
            .where(CodeBatch.id == batch_id, CodeBatch.owner == owner)
            .where(CodeBatch.status == "running")
            .values(status="failed", error=error[:500], finished_at=utcnow())
        )


async def cancel(session: AsyncSession, batch_id: int) -> str:
    """Cancel a queued or running job (caller commits); the codes written so far stay."""
    batch = await session.get(CodeBatch, batch_id)
    if batch is None:
        raise NotFoundError(f"Unknown code batch {batch_id}")
    if batch.status not in ACTIVE:
        raise ConflictError(
            f"Batch {batch_id} is {batch.status}: only a queued or running job can be cancelled"
        )
    await session.execute(
        update(CodeBatch)
        .where(CodeBatch.id == batch_id, CodeBatch.status.in_(ACTIVE))
        .values(status="cancelled", finished_at=utcnow())
    )
    return "cancelled"


async def orphans(
    sessions: async_sessionmaker[AsyncSession], stale_s: float, exclude: set[int]
) -> list[int]:
    """Jobs nobody runs: queued ones, and running ones whose owner stopped beating."""
    now = utcnow()
    async with sessions() as session:
        ids = await session.scalars(
            select(CodeBatch.id)
            .where(
                CodeBatch.status.in_(ACTIVE),
                or_(
                    CodeBatch.owner.is_(None),
                    CodeBatch.heartbeat_at.is_(None),
                    CodeBatch.heartbeat_at < now - timedelta(seconds=stale_s),
                ),
            )
            .order_by(CodeBatch.id)
        )
        return [i for i in ids if i not in exclude]

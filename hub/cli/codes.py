"""``yima-hub codes generate|resume|cancel|list|status|export|labels``: code batches from a
shell."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub import batches, exports
from hub.cli.common import in_session
from hub.db import create_engine, sessionmaker, upgrade
from hub.errors import ConflictError, InvalidRequestError
from hub.jobs import generate
from hub.keycheck import check_keys
from hub.settings import Settings
from protocols.codes import Keyring

T = TypeVar("T")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    codes = commands.add_parser("codes", parents=[common], help="code batches")
    actions = codes.add_subparsers(
        dest="codes_action", required=True, metavar="ACTION", help="what to do with codes"
    )
    gen = actions.add_parser("generate", parents=[common], help="create a batch of new codes")
    gen.add_argument("--product", required=True, help="product SKU")
    gen.add_argument("--count", required=True, type=int, help="how many codes (up to 20,000,000)")
    gen.add_argument(
        "--kind", default="item", choices=["item", "case", "pallet"], help="what they label"
    )
    gen.add_argument("--pin", action="store_true", help="with hidden scratch-off PINs")
    gen.add_argument("--seq-prefix", help="prefix of the printed sequence number (卡序号)")
    gen.add_argument("--seq-start", type=int, default=1, help="first printed sequence number")
    gen.add_argument("--seq-width", type=int, default=0, help="zero-pad sequence numbers to this")
    gen.add_argument(
        "--sscc-prefix", help="pallets: extension digit + GS1 company prefix (8-13 digits)"
    )
    gen.add_argument("--sscc-start", type=int, default=0, help="first SSCC serial reference")
    gen.add_argument(
        "--no-progress", action="store_true", help="no progress bar (for logs and scripts)"
    )
    gen.set_defaults(run=_generate)

    resume = actions.add_parser(
        "resume", parents=[common], help="finish a job an interrupted process left running"
    )
    resume.add_argument("batch", type=int, help="batch id")
    resume.add_argument("--no-progress", action="store_true", help="no progress bar")
    resume.set_defaults(run=_resume)

    cancel = actions.add_parser("cancel", parents=[common], help="stop a generation job")
    cancel.add_argument("batch", type=int, help="batch id")
    cancel.set_defaults(run=_cancel)

    listing = actions.add_parser("list", parents=[common], help="batches and their jobs")
    listing.add_argument("--limit", type=int, default=50, help="most batches to show")
    listing.set_defaults(run=_list)

    status = actions.add_parser("status", parents=[common], help="one batch and its states")
    status.add_argument("batch", type=int, help="batch id")
    status.set_defaults(run=_status)

    export = actions.add_parser("export", parents=[common], help="write a batch for the printer")
    export.add_argument("batch", type=int, help="batch id")
    export.add_argument("-o", "--output", type=Path, help="file (default: standard output, CSV)")
    export.add_argument(
        "--format", choices=["csv", "xlsx"], help="file format (default: from -o, else csv)"
    )
    export.add_argument("--from", dest="first", type=int, help="first seq (default 1)")
    export.add_argument("--to", dest="last", type=int, help="last seq (default: all)")
    export.add_argument("--resolver", help="base of the printed URLs (default: resolver_url)")
    export.add_argument(
        "--password-file",
        type=Path,
        help="write an AES-256 ZIP locked with the password in this file (for the print shop)",
    )
    export.set_defaults(run=_export)

    labels = actions.add_parser("labels", parents=[common], help="printable label sheets")
    labels.add_argument("batch", type=int, help="batch id")
    labels.add_argument("-o", "--output", type=Path, required=True, help=".pdf or .png file")
    labels.add_argument("--from", dest="first", type=int, help="first seq (default 1)")
    labels.add_argument("--to", dest="last", type=int, help="last seq (default: 40 labels)")
    labels.add_argument(
        "--symbology", default="qr", choices=["qr", "datamatrix"], help="2-D symbol to print"
    )
    labels.add_argument("--resolver", help="base of the printed URLs (default: resolver_url)")
    labels.set_defaults(run=_labels)


async def _with_sessions(
    settings: Settings,
    keyring: Keyring,
    work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]],
) -> T:
    """Run ``work`` with a session factory (jobs commit chunk by chunk)."""
    await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        sessions = sessionmaker(engine)
        async with sessions() as session, session.begin():
            await check_keys(session, keyring)
        return await work(sessions)
    finally:
        await engine.dispose()


class _Bar:
    """tqdm on standard error, or nothing."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, initial=done, unit=" codes", unit_scale=True, file=sys.stderr
            )

    def __call__(self, generated: int, _total: int) -> None:
        if self.bar is not None:
            self.bar.update(generated - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


async def _run(
    sessions: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    settings: Settings,
    batch_id: int,
    progress: bool,
) -> str:
    owner = generate.process_id()
    if not await generate.claim(sessions, batch_id, owner, settings.job_stale_s):
        async with sessions() as session:
            batch = await batches.get_batch(session, batch_id)
        if batch.status not in generate.ACTIVE:
            raise ConflictError(f"Batch {batch_id} is {batch.status}: nothing to run")
        raise ConflictError(
            f"Batch {batch_id} is being written by {batch.owner} (last seen "
            f"{batch.heartbeat_at}); it is taken over once silent for {settings.job_stale_s} s"
        )
    async with sessions() as session:
        batch = await batches.get_batch(session, batch_id)
    bar = _Bar(batch.count, batch.generated, progress)
    try:
        return await generate.run_job(
            sessions, keyring, batch_id, owner, chunk=settings.job_chunk, progress=bar
        )
    finally:
        bar.close()


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    keyring = settings.keyring()
    spec = generate.JobSpec(
        sku=args.product,
        count=args.count,
        kind=args.kind,
        with_pin=args.pin,
        seq_prefix=args.seq_prefix,
        seq_start=args.seq_start,
        seq_width=args.seq_width,
        sscc_prefix=args.sscc_prefix,
        sscc_start=args.sscc_start,
    )

    async def work(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, str]:
        async with sessions() as session, session.begin():
            batch = await generate.create_job(session, keyring, spec, settings.max_job_codes)
        return batch.id, await _run(sessions, keyring, settings, batch.id, not args.no_progress)

    batch_id, status = asyncio.run(_with_sessions(settings, keyring, work))
    if status == "done":
        print(f"batch {batch_id}: {args.count} {args.kind} codes for {args.product}")
        return 0
    print(f"batch {batch_id}: {status}")
    return 1


def _resume(args: argparse.Namespace, settings: Settings) -> int:
    keyring = settings.keyring()

    async def work(sessions: async_sessionmaker[AsyncSession]) -> str:
        return await _run(sessions, keyring, settings, args.batch, not args.no_progress)

    status = asyncio.run(_with_sessions(settings, keyring, work))
    print(f"batch {args.batch}: {status}")
    return 0 if status == "done" else 1


def _cancel(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(in_session(settings, lambda s: generate.cancel(s, args.batch)))
    print(f"batch {args.batch}: cancelled")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    found = asyncio.run(in_session(settings, lambda s: batches.list_batches(s, args.limit, 0)))
    print(f"{'id':>6}  {'SKU':<16} {'kind':<6} {'count':>10} {'written':>10}  status     卡序号")
    for b in found:
        print(
            f"{b.id:>6}  {b.sku:<16} {b.kind:<6} {b.count:>10} {b.generated:>10}  "
            f"{b.status:<10} {b.first_card_no}..{b.last_card_no}"
        )
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    info = asyncio.run(in_session(settings, lambda s: batches.batch_info(s, args.batch)))
    print(
        f"batch {info.id}: {info.sku} {info.kind} x {info.count}, {info.status}, "
        f"{info.generated} written ({100 * info.generated / info.count:.1f} %)"
    )
    print(f"  卡序号 {info.first_card_no}..{info.last_card_no}; key {info.key_id}")
    for state, n in sorted(info.states.items()):
        print(f"  {state:<14} {n}")
    if info.error:
        print(f"  error: {info.error}")
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    keyring = settings.keyring()
    resolver = args.resolver or settings.public_base()
    fmt = args.format or (
        "xlsx" if args.output is not None and args.output.suffix.lower() == ".xlsx" else "csv"
    )
    password = None
    if args.password_file is not None:
        if args.output is None:
            raise InvalidRequestError("--password-file needs -o (the archive to write)")
        try:
            password = args.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InvalidRequestError(f"Cannot read {args.password_file}: {exc.strerror}") from None
        exports.check_password(password)
    if fmt == "xlsx" and args.output is None:
        raise InvalidRequestError("XLSX needs -o (a file)")

    async def write(session: AsyncSession) -> int:
        rows = batches.export_rows(session, keyring, args.batch, resolver, args.first, args.last)
        chunks = batches.export_csv(session, keyring, args.batch, resolver, args.first, args.last)
        if args.output is None:
            sys.stdout.flush()
            return await exports.write_csv(chunks, sys.stdout.buffer)
        with exports.temp_dir() as tmp:
            plain = Path(tmp) / f"batch-{args.batch}.{fmt}" if password is not None else args.output
            if fmt == "xlsx":
                count = await exports.write_xlsx(batches.EXPORT_COLUMNS, rows, plain)
            else:
                with plain.open("wb") as out:
                    count = await exports.write_csv(chunks, out)
            if password is not None:
                await asyncio.to_thread(
                    exports.encrypt_zip, plain, plain.name, password, args.output
                )
            return count

    count = asyncio.run(in_session(settings, write, keyring))
    if args.output is not None:
        locked = " (AES-256 ZIP)" if password is not None else ""
        print(f"{count} codes of batch {args.batch} written to {args.output}{locked}")
    return 0


def _labels(args: argparse.Namespace, settings: Settings) -> int:
    keyring = settings.keyring()
    resolver = args.resolver or settings.public_base()
    fmt = args.output.suffix.lower().lstrip(".")
    if fmt not in ("pdf", "png"):
        raise InvalidRequestError(f"Label sheets are .pdf or .png files, got {args.output.name}")
    first = args.first or 1
    last = args.last or first + exports.COLUMNS * exports.ROWS - 1

    async def collect(session: AsyncSession) -> list[tuple[str, str, str]]:
        batch = await batches.get_batch(session, args.batch)
        end = min(last, batch.generated)
        labels: list[tuple[str, str, str]] = []
        async for part in batches.export_rows(session, keyring, args.batch, resolver, first, end):
            labels += [(url, f"No. {card}", human) for _, _, url, human, _, card, _ in part]
        return labels

    labels = asyncio.run(in_session(settings, collect, keyring))
    pages = exports.label_pages(labels, args.symbology)
    with args.output.open("wb") as out:
        exports.save_pages(pages, fmt, out)
    print(f"{len(labels)} labels on {len(pages)} page(s) written to {args.output}")
    return 0

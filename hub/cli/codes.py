"""``yima-hub codes generate|export``: code batches and the printer's file."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub import batches
from hub.cli.common import in_session
from hub.settings import Settings


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    codes = commands.add_parser("codes", parents=[common], help="code batches")
    actions = codes.add_subparsers(
        dest="codes_action", required=True, metavar="ACTION", help="what to do with codes"
    )
    generate = actions.add_parser("generate", parents=[common], help="create a batch of new codes")
    generate.add_argument("--product", required=True, help="product SKU")
    generate.add_argument("--count", required=True, type=int, help="how many codes")
    generate.add_argument(
        "--kind", default="item", choices=["item", "case", "pallet"], help="what they label"
    )
    generate.add_argument("--pin", action="store_true", help="with hidden scratch-off PINs")
    generate.set_defaults(run=_generate)
    export = actions.add_parser("export", parents=[common], help="write a batch for the printer")
    export.add_argument("batch", type=int, help="batch id")
    export.add_argument("-o", "--output", type=Path, help="file (default: standard output)")
    export.add_argument("--resolver", help="base of the printed URLs (default: resolver_url)")
    export.set_defaults(run=_export)


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    keyring = settings.keyring()

    async def generate(session: AsyncSession) -> int:
        batch = await batches.generate_batch(
            session, keyring, args.product, args.count, args.kind, args.pin
        )
        return batch.id

    batch_id = asyncio.run(in_session(settings, generate, keyring))
    print(f"batch {batch_id}: {args.count} {args.kind} codes for {args.product}")
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    keyring = settings.keyring()
    resolver = args.resolver or settings.public_base()

    async def write(session: AsyncSession) -> None:
        with (
            args.output.open("w", newline="", encoding="utf-8")
            if args.output
            else contextlib.nullcontext(sys.stdout)
        ) as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(batches.EXPORT_COLUMNS)
            async for rows in batches.export_rows(session, keyring, args.batch, resolver):
                writer.writerows(rows)

    asyncio.run(in_session(settings, write, keyring))
    return 0

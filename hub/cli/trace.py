"""``yima-hub trace <code>...`` and ``yima-hub trace --lot SKU LOT``: where codes came from
and where they went, from a shell (as an unscoped operator)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub import trace
from hub.cli.common import in_session
from hub.domain.access import Principal
from hub.errors import InvalidRequestError
from hub.settings import Settings

SHELL = Principal(role="operator", subject="cli")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "trace", parents=[common], help="trace codes (item → case → pallet → order → dealer)"
    )
    parser.add_argument(
        "codes",
        nargs="*",
        help="codes as printed or typed; several may also be joined with ';'",
    )
    parser.add_argument(
        "--lot", nargs=2, metavar=("SKU", "LOT"), help="trace a production lot instead"
    )
    parser.set_defaults(run=_trace)


def _trace(args: argparse.Namespace, settings: Settings) -> int:
    if bool(args.codes) == bool(args.lot):
        raise InvalidRequestError("Give codes to trace, or --lot SKU LOT (not both)")
    if args.lot:
        sku, lot = args.lot

        async def lot_work(session: AsyncSession) -> trace.LotTrace:
            return await trace.trace_lot(session, await trace.lot_ref(session, sku, lot))

        print_lot(asyncio.run(in_session(settings, lot_work)))
        return 0
    texts = trace.split_codes(";".join(args.codes))
    keyring = settings.keyring()

    async def work(session: AsyncSession) -> list[trace.CodeTrace | trace.TraceMiss]:
        return await trace.trace_codes(session, keyring, texts, SHELL)

    results = asyncio.run(in_session(settings, work, keyring))
    for result in results:
        print_code(result)
    return 0 if all(isinstance(r, trace.CodeTrace) for r in results) else 1


def _when(moment: Any) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "-"


def print_code(result: trace.CodeTrace | trace.TraceMiss) -> None:
    if isinstance(result, trace.TraceMiss):
        print(f"{result.query}: {result.error}")
        return
    r = result
    print(f"{r.kind} {r.serial}  [{r.state}]  {r.product['sku']} {r.product['name']}")
    print(
        f"  made: lot {r.lot or '-'}, work order {r.work_order or '-'}, station "
        f"{r.station or '-'} (line {r.line or '-'}, {r.site or '-'}), {_when(r.commissioned_at)}"
    )
    print(f"  code batch {r.code_batch}, 卡序号 {r.seq}; contains {r.contents} codes")
    for link in r.containers:
        print(f"  in {link.kind} {link.serial} [{link.state}]")
    if r.order is not None:
        print(f"  order {r.order['number']} [{r.order['state']}], region {r.region or '-'}")
    if r.dealer is not None:
        print(f"  dealer {r.dealer['code']} {r.dealer['name']}, activated {_when(r.activated_at)}")
    print(f"  consumer scans: {r.scan_count}, first {_when(r.first_scan_at)}")


def print_lot(lot: trace.LotTrace) -> None:
    print(f"lot {lot.lot} of {lot.sku} {lot.product}")
    for key, value in (lot.details or {}).items():
        if value:
            print(f"  {key}: {value}")
    for m in lot.materials:
        print(f"  material {m['material']} from {m['supplier']}, supplier lot {m['supplier_lot']}")
    states = ", ".join(f"{state} {n}" for state, n in lot.states.items()) or "no codes"
    print(f"  codes: {states}; code batches {', '.join(map(str, lot.code_batches)) or '-'}")
    for d in lot.destinations:
        print(
            f"  → dealer {d.dealer} {d.dealer_name}, order {d.order} ({d.region}): {d.codes} codes"
        )

"""``yima-hub audit list|cleanup`` and ``yima-hub recall``: the audit log and recalls from a
shell (a recall from the shell is recorded as done by ``cli``)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub import audit, recall, trace
from hub.cli.common import in_session
from hub.domain.access import Principal
from hub.errors import InvalidRequestError
from hub.settings import Settings

SHELL = Principal(role="admin", subject="cli")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("audit", parents=[common], help="the audit log")
    actions = group.add_subparsers(
        dest="audit_action", required=True, metavar="ACTION", help="what to do"
    )
    listing = actions.add_parser("list", parents=[common], help="newest entries first")
    listing.add_argument("--actor", help="only this actor (user:<name> or token:<id>)")
    listing.add_argument("--limit", type=int, default=50, help="how many entries (default 50)")
    listing.set_defaults(run=_list)
    cleanup = actions.add_parser(
        "cleanup", parents=[common], help="delete entries older than audit_retention_days"
    )
    cleanup.set_defaults(run=_cleanup)

    parser = commands.add_parser("recall", parents=[common], help="recall a lot (召回)")
    parser.add_argument("--lot", nargs=2, metavar=("SKU", "LOT"), help="a production lot")
    parser.add_argument("--supplier-lot", help="every lot made with this material lot")
    parser.add_argument("--supplier", help="narrow --supplier-lot to one supplier")
    parser.add_argument("--reason", required=True, help="why (recorded with the recall)")
    parser.set_defaults(run=_recall)


def _list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> list[tuple[int, audit.AuditView]]:
        return await audit.entries(session, actor=args.actor, limit=max(1, min(args.limit, 10000)))

    for _, e in asyncio.run(in_session(settings, work)):
        print(
            f"{e.at.isoformat(timespec='seconds')}\t{e.actor}\t{e.action}\t"
            f"{e.target or '-'}\t{e.outcome}\t{e.client or '-'}"
        )
    return 0


def _cleanup(args: argparse.Namespace, settings: Settings) -> int:
    days = settings.audit_retention_days
    removed = asyncio.run(in_session(settings, lambda s: audit.cleanup(s, days)))
    print(f"{removed} audit entries older than {days} days deleted")
    return 0


def _recall(args: argparse.Namespace, settings: Settings) -> int:
    if bool(args.lot) == bool(args.supplier_lot):
        raise InvalidRequestError("Give --lot SKU LOT or --supplier-lot (one of them)")

    async def work(session: AsyncSession) -> recall.RecallResult:
        if args.lot:
            sku, lot = args.lot
            refs = [await trace.lot_ref(session, sku, lot)]
            selection: dict[str, Any] = {"lot": {"sku": sku, "lot": lot}}
        else:
            refs = await trace.lots_of_material(session, args.supplier_lot, args.supplier)
            selection = {"material": {"supplier_lot": args.supplier_lot, "supplier": args.supplier}}
        return await recall.recall(session, refs, args.reason, selection, SHELL)

    result = asyncio.run(in_session(settings, work))
    lots = ", ".join(f"{sku} {lot}" for sku, lot in result.lots)
    print(f"recall {result.id}: {result.moved} codes recalled ({lots})")
    for why, n in result.refused.items():
        print(f"  {n} left alone: {why}")
    return 0

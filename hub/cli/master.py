"""``yima-hub products|stations|dealers|lots add|list|import``: master data from a shell."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import imports, registry
from hub.cli.common import in_session
from hub.cli.stations import (
    STATION_ACTIONS,
    add_station_arguments,
    credentials,
    run_station_action,
)
from hub.errors import InvalidRequestError
from hub.models import Dealer, Lot, Product, Station
from hub.settings import Settings


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    products = commands.add_parser("products", parents=[common], help="products")
    products.add_argument(
        "action",
        choices=["add", "list", "import"],
        help="add: register a product; list: show them; import: add them from a CSV/XLSX file",
    )
    products.add_argument("file", nargs="?", type=Path, help="import: the CSV or XLSX file")
    products.add_argument("--sku", help="add: the brand's product code")
    products.add_argument("--name", help="add: product name (Chinese)")
    products.add_argument("--name-en", help="add: product name in English")
    products.add_argument("--gtin", help="add: GTIN-8/12/13/14 (printed URLs use Digital Link)")
    products.add_argument("--spec", help="add: specification (规格), e.g. 500ml x 12")
    products.set_defaults(run=_products)

    stations = commands.add_parser("stations", parents=[common], help="camera stations")
    stations.add_argument(
        "action",
        choices=["add", "list", *STATION_ACTIONS],
        help="add: register a station; list: show them; credentials: issue its broker "
        "password; workorder / start / stop: send it a command (retained)",
    )
    stations.add_argument("--id", dest="station_id", help="add: station id")
    stations.add_argument("--line", help="add: production line it watches")
    stations.add_argument("--site", help="add: plant or workshop")
    add_station_arguments(stations)
    stations.set_defaults(run=_stations)

    dealers = commands.add_parser("dealers", parents=[common], help="dealers")
    dealers.add_argument(
        "action",
        choices=["add", "list", "import"],
        help="add: register a dealer; list: show them; import: add them from a CSV/XLSX file",
    )
    dealers.add_argument("file", nargs="?", type=Path, help="import: the CSV or XLSX file")
    dealers.add_argument("--code", help="add: dealer code")
    dealers.add_argument("--name", help="add: dealer name")
    dealers.add_argument("--region", help="add: default destination region of its orders")
    dealers.add_argument(
        "--authorised",
        default="",
        help="add: division codes it may sell in, separated by ';' (e.g. '330000;320500')",
    )
    dealers.set_defaults(run=_dealers)

    lots = commands.add_parser("lots", parents=[common], help="production lots (生产批次)")
    lots.add_argument("action", choices=["list"], help="list: show the lots")
    lots.add_argument("--product", help="only lots of this SKU")
    lots.set_defaults(run=_lots)


def _need(args: argparse.Namespace, *names: str) -> None:
    missing = [f"--{n.replace('_', '-')}" for n in names if not getattr(args, n)]
    if missing:
        raise InvalidRequestError(f"{args.command} {args.action} needs {', '.join(missing)}")


def _table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> None:
    cells = [[str(h) for h in header]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(_width(r[i]) for r in cells) for i in range(len(header))]
    for r in cells:
        line = "  ".join(c + " " * (w - _width(c)) for c, w in zip(r, widths, strict=True))
        print(line.rstrip())


def _width(text: str) -> int:
    # CJK characters take two columns in a terminal.
    return sum(2 if ord(ch) >= 0x1100 else 1 for ch in text)


def _import(
    args: argparse.Namespace,
    settings: Settings,
    what: str,
    run: Any,
) -> int:
    if args.file is None:
        raise InvalidRequestError(f"{what} import needs a file (CSV or XLSX)")
    fmt = "xlsx" if args.file.suffix.lower() == ".xlsx" else "csv"
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise InvalidRequestError(f"Cannot read {args.file}: {exc.strerror}") from None
    report: imports.Report = asyncio.run(in_session(settings, lambda s: run(s, data, fmt)))
    if report.problems:
        print(f"{args.file}: nothing imported; {len(report.problems)} problems:", file=sys.stderr)
        for p in report.problems:
            print(f"  row {p.row}, column {p.column or '-'}: {p.problem}", file=sys.stderr)
        return 1
    print(f"{report.imported} {what} imported from {args.file}")
    return 0


def _products(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "import":
        return _import(args, settings, "products", imports.import_products)
    if args.action == "list":

        async def rows(session: AsyncSession) -> list[Product]:
            return list(await session.scalars(select(Product).order_by(Product.id)))

        products = asyncio.run(in_session(settings, rows))
        _table(
            [(p.sku, p.name, p.name_en, p.gtin, p.spec) for p in products],
            ("SKU", "名称 name", "name_en", "GTIN", "spec"),
        )
        return 0
    _need(args, "sku", "name")
    asyncio.run(
        in_session(
            settings,
            lambda s: registry.create_product(
                s, args.sku, args.name, args.gtin, name_en=args.name_en, spec=args.spec
            ),
        )
    )
    print(f"product {args.sku} added")
    return 0


def _stations(args: argparse.Namespace, settings: Settings) -> int:
    if args.action in STATION_ACTIONS:
        return run_station_action(args, settings)
    if args.action == "list":

        async def rows(session: AsyncSession) -> list[Station]:
            return list(await session.scalars(select(Station).order_by(Station.id)))

        stations = asyncio.run(in_session(settings, rows))
        _table(
            [(s.id, s.line, s.site, s.status, s.last_seen_at) for s in stations],
            ("station", "line", "site", "status", "last seen"),
        )
        return 0
    _need(args, "station_id", "line")
    asyncio.run(
        in_session(
            settings, lambda s: registry.create_station(s, args.station_id, args.line, args.site)
        )
    )
    print(f"station {args.station_id} added")
    if args.credentials:
        return credentials(args.station_id, settings)
    return 0


def _dealers(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "import":
        return _import(args, settings, "dealers", imports.import_dealers)
    if args.action == "list":

        async def rows(session: AsyncSession) -> list[tuple[Dealer, list[str]]]:
            dealers = list(await session.scalars(select(Dealer).order_by(Dealer.id)))
            authorised = await registry.authorised_regions(session, [d.id for d in dealers])
            return [(d, authorised[d.id]) for d in dealers]

        found = asyncio.run(in_session(settings, rows))
        _table(
            [(d.code, d.name, d.region, ";".join(codes)) for d, codes in found],
            ("code", "名称 name", "region", "authorised"),
        )
        return 0
    _need(args, "code", "name", "region")
    authorised = [c.strip() for c in args.authorised.split(";") if c.strip()]
    asyncio.run(
        in_session(
            settings,
            lambda s: registry.create_dealer(
                s, args.code, args.name, args.region, authorised=authorised
            ),
        )
    )
    print(f"dealer {args.code} added")
    return 0


def _lots(args: argparse.Namespace, settings: Settings) -> int:
    async def rows(session: AsyncSession) -> list[tuple[Lot, str]]:
        query = select(Lot, Product.sku).join(Product, Product.id == Lot.product_id)
        if args.product:
            query = query.where(Product.sku == args.product)
        return [(lot, sku) for lot, sku in await session.execute(query.order_by(Lot.id))]

    found = asyncio.run(in_session(settings, rows))
    _table(
        [
            (lot.id, sku, lot.lot_no, lot.produced_on, lot.expires_on, lot.factory, lot.line)
            for lot, sku in found
        ],
        ("id", "SKU", "lot", "produced", "expires", "factory", "line"),
    )
    return 0

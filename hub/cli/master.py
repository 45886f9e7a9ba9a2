"""``yima-hub products|stations|dealers add``: master data from a shell."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from hub import registry
from hub.cli.common import in_session
from hub.settings import Settings


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    products = commands.add_parser("products", parents=[common], help="products")
    products.add_argument("action", choices=["add"], help="add: register a product")
    products.add_argument("--sku", required=True, help="the brand's product code")
    products.add_argument("--name", required=True, help="product name")
    products.add_argument("--gtin", help="GTIN-8/12/13/14 (printed URLs use Digital Link)")
    products.set_defaults(run=_add_product)

    stations = commands.add_parser("stations", parents=[common], help="camera stations")
    stations.add_argument("action", choices=["add"], help="add: register a station")
    stations.add_argument("--id", required=True, dest="station_id", help="station id")
    stations.add_argument("--line", required=True, help="production line it watches")
    stations.add_argument("--site", help="plant or workshop")
    stations.set_defaults(run=_add_station)

    dealers = commands.add_parser("dealers", parents=[common], help="dealers")
    dealers.add_argument("action", choices=["add"], help="add: register a dealer")
    dealers.add_argument("--code", required=True, help="dealer code")
    dealers.add_argument("--name", required=True, help="dealer name")
    dealers.add_argument("--region", required=True, help="authorised sales region")
    dealers.set_defaults(run=_add_dealer)


def _add_product(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(
        in_session(settings, lambda s: registry.create_product(s, args.sku, args.name, args.gtin))
    )
    print(f"product {args.sku} added")
    return 0


def _add_station(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(
        in_session(
            settings, lambda s: registry.create_station(s, args.station_id, args.line, args.site)
        )
    )
    print(f"station {args.station_id} added")
    return 0


def _add_dealer(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(
        in_session(settings, lambda s: registry.create_dealer(s, args.code, args.name, args.region))
    )
    print(f"dealer {args.code} added")
    return 0

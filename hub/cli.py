"""``yima-hub``: serve, migrate, and the admin chores a factory needs from a shell."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import csv
import logging
import os
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from hub import batches as code_service
from hub import registry
from hub.db import create_engine, sessionmaker, upgrade
from hub.errors import HubError
from hub.settings import Settings, load_settings
from hub.web.app import create_app
from hub.web.keys import RUNTIME
from protocols.errors import ProtocolError

log = logging.getLogger("hub")
T = TypeVar("T")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yima-hub", description="Yima hub (一码 中心)")
    parser.add_argument("--config", type=Path, help="TOML settings file")
    parser.add_argument(
        "--database-url", help="sqlite+aiosqlite:///file or postgresql+asyncpg://..."
    )
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API and MQTT ingestion")
    serve.add_argument("--mqtt-url", help="mqtt://host:port (default: start an embedded broker)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--topic-prefix")

    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])

    keys = sub.add_parser("keys", help="code keys")
    keys.add_argument("action", choices=["new"])

    products = sub.add_parser("products", help="products")
    products.add_argument("action", choices=["add"])
    products.add_argument("--sku", required=True)
    products.add_argument("--name", required=True)
    products.add_argument("--gtin")

    stations = sub.add_parser("stations", help="camera stations")
    stations.add_argument("action", choices=["add"])
    stations.add_argument("--id", required=True, dest="station_id")
    stations.add_argument("--line", required=True)
    stations.add_argument("--site")

    dealers = sub.add_parser("dealers", help="dealers")
    dealers.add_argument("action", choices=["add"])
    dealers.add_argument("--code", required=True)
    dealers.add_argument("--name", required=True)
    dealers.add_argument("--region", required=True)

    codes = sub.add_parser("codes", help="code batches")
    codes_sub = codes.add_subparsers(dest="codes_action", required=True)
    generate = codes_sub.add_parser("generate", help="create a batch of new codes")
    generate.add_argument("--product", required=True, help="product SKU")
    generate.add_argument("--count", required=True, type=int)
    generate.add_argument("--kind", default="item", choices=["item", "case", "pallet"])
    generate.add_argument("--pin", action="store_true", help="with hidden scratch-off PINs")
    export = codes_sub.add_parser("export", help="write a batch as the printer CSV")
    export.add_argument("batch", type=int)
    export.add_argument("-o", "--output", type=Path, help="file (default: standard output)")
    export.add_argument("--resolver", help="base of the printed URLs (default: resolver_url)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "keys":
        print(base64.b64encode(secrets.token_bytes(32)).decode())
        return 0
    overrides: dict[str, Any] = {"database_url": args.database_url}
    if args.command == "serve":
        overrides |= {
            "mqtt_url": args.mqtt_url,
            "host": args.host,
            "port": args.port,
            "topic_prefix": args.topic_prefix,
        }
    try:
        settings = load_settings(args.config, os.environ, overrides)
        if args.command == "serve":
            asyncio.run(serve(settings))
        elif args.command == "db":
            asyncio.run(upgrade(settings.database_url))
            print("database is at the newest schema")
        else:
            asyncio.run(_admin(settings, args))
    except (HubError, ProtocolError) as exc:
        print(f"yima-hub: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


async def serve(settings: Settings) -> None:
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = runner.addresses[0][1]
    runtime = app[RUNTIME]
    runtime.public_base = settings.public_base(port)
    print(
        f"yima-hub listening on http://{settings.host}:{port} "
        f"(printed URLs: {runtime.public_base}, MQTT: {runtime.mqtt_url})",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


async def _in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with sessionmaker(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


async def _admin(settings: Settings, args: argparse.Namespace) -> None:
    if args.command == "products":
        await _in_session(
            settings, lambda s: registry.create_product(s, args.sku, args.name, args.gtin)
        )
        print(f"product {args.sku} added")
    elif args.command == "stations":
        await _in_session(
            settings, lambda s: registry.create_station(s, args.station_id, args.line, args.site)
        )
        print(f"station {args.station_id} added")
    elif args.command == "dealers":
        await _in_session(
            settings, lambda s: registry.create_dealer(s, args.code, args.name, args.region)
        )
        print(f"dealer {args.code} added")
    elif args.codes_action == "generate":
        keyring = settings.keyring()

        async def generate(session: AsyncSession) -> int:
            batch = await code_service.generate_batch(
                session, keyring, args.product, args.count, args.kind, args.pin
            )
            return batch.id

        batch_id = await _in_session(settings, generate)
        print(f"batch {batch_id}: {args.count} {args.kind} codes for {args.product}")
    else:
        await _export(settings, args)


async def _export(settings: Settings, args: argparse.Namespace) -> None:
    keyring = settings.keyring()
    resolver = args.resolver or settings.public_base()

    async def write(session: AsyncSession) -> None:
        with (
            args.output.open("w", newline="", encoding="utf-8")
            if args.output
            else contextlib.nullcontext(sys.stdout)
        ) as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(code_service.EXPORT_COLUMNS)
            async for rows in code_service.export_rows(session, keyring, args.batch, resolver):
                writer.writerows(rows)

    await _in_session(settings, write)

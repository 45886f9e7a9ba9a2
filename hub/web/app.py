"""App factory, middlewares and routes."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import io
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from hub import codes as code_service
from hub import registry, shipping
from hub.broker import EmbeddedBroker
from hub.db import create_engine, sessionmaker, upgrade
from hub.errors import (
    ConflictError,
    HubError,
    InvalidRequestError,
    NotFoundError,
    UnavailableError,
)
from hub.ingest import IngestReport, ingest
from hub.mqtt import HubMqtt, IngestWorker, Message
from hub.settings import Settings
from hub.timeutil import utcnow
from hub.verify import verify
from hub.web.keys import KEYRING, ROLE, RUNTIME, SESSIONS, SETTINGS, Runtime
from hub.web.pages import not_found_page, pick_language, verdict_page
from protocols.broker import BrokerAddress
from protocols.codes import Keyring
from protocols.errors import CapacityError, ProtocolError
from protocols.messages import Command, WorkOrder

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
json_response = functools.partial(
    web.json_response, dumps=functools.partial(json.dumps, ensure_ascii=False)
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS: dict[type[HubError], int] = {
    NotFoundError: 404,
    ConflictError: 409,
    InvalidRequestError: 422,
    UnavailableError: 503,
}

# Which roles may call which API paths; anything under /api/ not listed is admin-only.
_ROLE_PATHS = {"warehouse": ("/api/v1/shipments",)}


def wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _error(request: web.Request, status: int, message: str) -> web.Response:
    if request.path.startswith("/api/") or wants_json(request):
        return json_response({"error": message}, status=status)
    lang = pick_language(request.query.get("lang"), request.headers.get("Accept-Language"))
    if status == 404:
        return web.Response(text=not_found_page(lang), status=404, content_type="text/html")
    return web.Response(text=message, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return _error(request, 404, f"No such page: {request.path}")
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        return _error(request, 405, f"Method {request.method} not allowed: use {allowed}")
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].max_request_bytes
        return _error(request, 413, f"Request body too large: expected at most {limit} bytes")
    except web.HTTPException:
        raise
    except HubError as exc:
        return _error(request, _STATUS.get(type(exc), 400), str(exc))
    except CapacityError as exc:
        # The active key has run out of counters: the operator must rotate keys, not retry.
        return _error(request, 409, str(exc))
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(request, 500, "Internal error; it has been logged")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/api/"):
        return await handler(request)
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    role = request.app[SETTINGS].tokens.get(token) if token else None
    if role is None:
        return json_response(
            {"error": "Missing or unknown bearer token"},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    if role != "admin" and not request.path.startswith(_ROLE_PATHS.get(role, ())):
        return json_response({"error": f"Role {role!r} may not call {request.path}"}, status=403)
    request[ROLE] = role
    return await handler(request)


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"Request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequestError(f"Request body expected a JSON object, got {type(body).__name__}")
    return body


def field(body: dict[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidRequestError(f"Missing field {name!r}")
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidRequestError(
            f"Field {name!r} expected {kind.__name__}, got {type(value).__name__}"
        )
    return value


# Consumer -----------------------------------------------------------------------------


async def _verify(request: web.Request) -> web.StreamResponse:
    app = request.app
    settings = app[SETTINGS]
    # Judge the URL as printed (the public base), whatever host the request came through.
    printed = app[RUNTIME].public_base + request.rel_url.path
    async with app[SESSIONS]() as session, session.begin():
        result = await verify(
            session,
            app[KEYRING],
            printed,
            threshold=settings.suspicious_scan_threshold,
            now=utcnow(),
            client=request.remote,
            user_agent=request.headers.get("User-Agent"),
        )
    body = result.as_dict()
    if wants_json(request):
        return json_response(body)
    lang = pick_language(request.query.get("lang"), request.headers.get("Accept-Language"))
    other = request.rel_url.with_query({"lang": "en" if lang == "zh" else "zh"})
    return web.Response(text=verdict_page(body, lang, str(other)), content_type="text/html")


# HEAD is not a scan: link-preview bots must not inflate the scan count.
@routes.get("/c/{serial}", allow_head=False)
async def verify_short(request: web.Request) -> web.StreamResponse:
    return await _verify(request)


@routes.get("/01/{gtin}/21/{serial}", allow_head=False)
async def verify_digital_link(request: web.Request) -> web.StreamResponse:
    return await _verify(request)


# Ops ------------------------------------------------------------------------------------


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        await session.execute(text("SELECT 1"))
    mqtt = request.app[RUNTIME].mqtt
    mqtt_ok = mqtt is not None and mqtt.connected.is_set()
    return json_response(
        {"status": "ok" if mqtt_ok else "degraded", "database": "ok", "mqtt": mqtt_ok},
        status=200 if mqtt_ok else 503,
    )


@routes.get("/api/v1/info")
async def info(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    ingest_stats = runtime.ingest.stats.__dict__ if runtime.ingest else None
    return json_response(
        {
            "public_base": runtime.public_base,
            "mqtt_url": runtime.mqtt_url,
            "topic_prefix": request.app[SETTINGS].topic_prefix,
            "ingest": ingest_stats,
        }
    )


# Admin ----------------------------------------------------------------------------------


@routes.post("/api/v1/products")
async def add_product(request: web.Request) -> web.Response:
    body = await json_body(request)
    async with request.app[SESSIONS]() as session, session.begin():
        product = await registry.create_product(
            session,
            field(body, "sku", str),
            field(body, "name", str),
            field(body, "gtin", str, required=False),
        )
    return json_response(
        {"sku": product.sku, "name": product.name, "gtin": product.gtin}, status=201
    )


@routes.post("/api/v1/stations")
async def add_station(request: web.Request) -> web.Response:
    body = await json_body(request)
    async with request.app[SESSIONS]() as session, session.begin():
        station = await registry.create_station(
            session,
            field(body, "station_id", str),
            field(body, "line", str),
            field(body, "site", str, required=False),
        )
    return json_response({"station_id": station.id, "line": station.line}, status=201)


@routes.post("/api/v1/stations/{station_id}/commands")
async def send_command(request: web.Request) -> web.Response:
    """Work order, start or stop for one station, over its command topic."""
    body = await json_body(request)
    station_id = request.match_info["station_id"]
    name = field(body, "command", str)
    raw_order = field(body, "work_order", dict, required=name == "work_order")
    order = None
    if raw_order is not None:
        order = WorkOrder(
            id=field(raw_order, "id", str),
            sku=field(raw_order, "sku", str),
            lot=field(raw_order, "lot", str),
        )
    async with request.app[SESSIONS]() as session:
        await registry.station_by_id(session, station_id)
        if order is not None:
            await registry.product_by_sku(session, order.sku)
    command = Command(station_id=station_id, command=name, work_order=order)
    try:
        Command.parse(command.to_json())  # the station's own strict check, before sending
    except ProtocolError as exc:
        raise InvalidRequestError(str(exc)) from None
    mqtt = request.app[RUNTIME].mqtt
    if mqtt is None:
        raise UnavailableError("MQTT is not running")
    mqtt.publish_command(command)
    return json_response({"id": command.id, "station_id": station_id, "command": name}, status=202)


@routes.post("/api/v1/dealers")
async def add_dealer(request: web.Request) -> web.Response:
    body = await json_body(request)
    async with request.app[SESSIONS]() as session, session.begin():
        dealer = await registry.create_dealer(
            session, field(body, "code", str), field(body, "name", str), field(body, "region", str)
        )
    return json_response(
        {"code": dealer.code, "name": dealer.name, "region": dealer.region}, status=201
    )


@routes.post("/api/v1/batches")
async def add_batch(request: web.Request) -> web.Response:
    body = await json_body(request)
    async with request.app[SESSIONS]() as session, session.begin():
        batch = await code_service.generate_batch(
            session,
            request.app[KEYRING],
            field(body, "sku", str),
            field(body, "count", int),
            field(body, "kind", str, required=False) or "item",
            bool(field(body, "with_pin", bool, required=False)),
        )
        info = await code_service.batch_info(session, batch.id)
    return json_response(info.__dict__, status=201)


def _batch_id(request: web.Request) -> int:
    try:
        return int(request.match_info["batch_id"])
    except ValueError:
        raise NotFoundError(f"Unknown code batch {request.match_info['batch_id']!r}") from None


@routes.get("/api/v1/batches/{batch_id}")
async def get_batch(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        info = await code_service.batch_info(session, _batch_id(request))
    return json_response(info.__dict__)


@routes.get("/api/v1/batches/{batch_id}/export")
async def export_batch(request: web.Request) -> web.StreamResponse:
    batch_id = _batch_id(request)
    app = request.app
    async with app[SESSIONS]() as session:
        await code_service.get_batch(session, batch_id)  # 404 before headers go out
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="batch-{batch_id}.csv"',
            }
        )
        await response.prepare(request)
        await response.write(_csv_line(code_service.EXPORT_COLUMNS))
        async for rows in code_service.export_rows(
            session, app[KEYRING], batch_id, app[RUNTIME].public_base
        ):
            await response.write(b"".join(_csv_line(r) for r in rows))
    await response.write_eof()
    return response


def _csv_line(row: tuple[str, ...] | list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(row)
    return buffer.getvalue().encode()


@routes.post("/api/v1/shipments")
async def add_shipment(request: web.Request) -> web.Response:
    body = await json_body(request)
    codes = field(body, "codes", list)
    if not all(isinstance(c, str) for c in codes):
        raise InvalidRequestError("Field 'codes' expected a list of strings")
    arguments = {
        "shipment_id": field(body, "id", str),
        "order_number": field(body, "order", str),
        "dealer_code": field(body, "dealer", str),
        "region": field(body, "region", str, required=False),
        "codes": codes,
        "source": f"api:{request[ROLE]}",
    }
    try:
        result = await _ship(request.app, arguments)
    except IntegrityError:
        # The same shipment id committed concurrently (a PDA retrying while the first try
        # was still running): run again, which now finds it and replays its result.
        result = await _ship(request.app, arguments)
    return json_response(result.as_dict())


async def _ship(app: web.Application, arguments: dict[str, Any]) -> shipping.ShipmentResult:
    async with app[SESSIONS]() as session, session.begin():
        return await shipping.ship(session, app[KEYRING], **arguments)


# Lifecycle --------------------------------------------------------------------------------


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    app[SESSIONS] = sessionmaker(engine)
    yield
    await engine.dispose()


async def _mqtt_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    runtime = app[RUNTIME]
    broker: EmbeddedBroker | None = None
    if settings.mqtt_url:
        url = settings.mqtt_url
    else:
        broker = EmbeddedBroker()
        await broker.start()
        url = broker.url
    address = BrokerAddress.parse(url)  # settings validated a configured URL at load
    runtime.mqtt_url = address.url
    mqtt = HubMqtt(address, settings.topics, settings.share_group)
    await mqtt.start()
    runtime.mqtt = mqtt
    sessions = app[SESSIONS]
    keyring = app[KEYRING]

    async def apply(batch: list[Message]) -> IngestReport:
        async with sessions() as session, session.begin():
            return await ingest(session, keyring, settings.topics, batch, utcnow())

    worker = IngestWorker(
        mqtt.queue,
        apply,
        mqtt.publish_ack,
        settings.ingest_max_messages,
        settings.ingest_linger_ms / 1000,
    )
    runtime.ingest = worker
    task = asyncio.create_task(worker.run(), name="ingest")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await mqtt.stop()
    if broker is not None:
        await broker.stop()


def create_app(settings: Settings, keyring: Keyring | None = None) -> web.Application:
    """Build the hub application; the database and MQTT open in ``cleanup_ctx``."""
    app = web.Application(
        middlewares=[error_middleware, auth_middleware], client_max_size=settings.max_request_bytes
    )
    app[SETTINGS] = settings
    app[KEYRING] = keyring or settings.keyring()
    app[RUNTIME] = Runtime(public_base=settings.public_base())
    app.cleanup_ctx.append(_database_ctx)
    app.cleanup_ctx.append(_mqtt_ctx)
    app.add_routes(routes)
    return app

"""App factory: settings, database, MQTT ingestion, and the endpoints of every audience."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from hub import housekeeping
from hub.db import create_engine, sessionmaker, upgrade
from hub.domain.limits import ConsumerLimits, Limiter
from hub.domain.signals import Thresholds
from hub.ingest.service import IngestService
from hub.jobs.runner import JobRunner, request_counter
from hub.keycheck import check_keys
from hub.locate import Locator
from hub.settings import Settings
from hub.verify import Verifier
from hub.web import admin, alerts, codes, consumer, epcis, master, ops, orders, pda, trace, users
from hub.web.api import ENDPOINTS, TAGS, Api
from hub.web.keys import (
    ENGINE,
    KEYRING,
    LIMITS,
    LOCATOR,
    RUNTIME,
    SESSIONS,
    SETTINGS,
    VERIFIER,
    Runtime,
)
from hub.web.middleware import (
    auth_middleware,
    error_middleware,
    observe_middleware,
    security_headers,
)
from protocols.codes import Keyring

# Every audience's endpoints; a new audience module adds its Api here.
AUDIENCES: tuple[Api, ...] = (
    consumer.api,
    pda.api,
    admin.api,
    ops.api,
    users.api,
    master.api,
    orders.api,
    epcis.api,
    alerts.api,
    trace.api,
    codes.api,
)


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    app[ENGINE] = engine
    app[SESSIONS] = sessionmaker(engine)
    try:
        async with app[SESSIONS]() as session, session.begin():
            await check_keys(session, app[KEYRING])
        yield
    finally:
        await engine.dispose()


async def _verifier_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    verifier = Verifier(
        app[ENGINE],
        app[KEYRING],
        Thresholds(
            distinct_clients=settings.copied_code_clients,
            max_speed_kmh=settings.max_travel_kmh,
            min_distance_km=settings.min_travel_km,
        ),
        group_max=settings.scan_group_max,
    )
    await verifier.start()
    app[VERIFIER] = verifier
    try:
        yield
    finally:
        await verifier.stop()


async def _housekeeping_ctx(app: web.Application) -> AsyncIterator[None]:
    async with housekeeping.running(app[SESSIONS], app[SETTINGS].audit_retention_days):
        yield


async def _jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    runner = JobRunner(
        app[SESSIONS],
        app[KEYRING],
        stale_s=settings.job_stale_s,
        poll_s=settings.job_poll_s,
        chunk=settings.job_chunk,
    )
    await runner.start()
    app[RUNTIME].jobs = runner
    try:
        yield
    finally:
        await runner.stop()


async def _ingest_ctx(app: web.Application) -> AsyncIterator[None]:
    service = IngestService(app[SETTINGS], app[SESSIONS], app[KEYRING])
    await service.start()
    app[RUNTIME].ingest = service
    try:
        yield
    finally:
        await service.stop()


def create_app(settings: Settings, keyring: Keyring | None = None) -> web.Application:
    """Build the hub application; the database and MQTT open in ``cleanup_ctx``."""
    app = web.Application(
        middlewares=[
            observe_middleware,
            error_middleware,
            auth_middleware,
            request_counter(lambda request: request.app[RUNTIME].jobs),
        ],
        client_max_size=settings.max_request_bytes,
    )
    app[SETTINGS] = settings
    app[KEYRING] = keyring or settings.keyring()
    app[RUNTIME] = Runtime(public_base=settings.public_base())
    app[LIMITS] = ConsumerLimits(
        scans=Limiter(settings.scan_burst, settings.scans_per_hour),
        unknown=Limiter(settings.unknown_burst, settings.unknown_per_hour),
    )
    app[LOCATOR] = Locator(settings.ip_regions)
    app[ENDPOINTS] = []
    app[TAGS] = {}
    app.cleanup_ctx.append(_database_ctx)
    app.cleanup_ctx.append(_verifier_ctx)
    app.cleanup_ctx.append(_jobs_ctx)
    app.cleanup_ctx.append(_ingest_ctx)
    app.cleanup_ctx.append(_housekeeping_ctx)
    for audience in AUDIENCES:
        audience.add_to(app)
    app.on_response_prepare.append(security_headers)
    return app

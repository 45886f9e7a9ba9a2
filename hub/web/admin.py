"""The brand's back-office audience: stations, their commands, code pools (master data is
in hub/web/master.py, code batches in hub/web/codes.py)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from aiohttp import web
from pydantic import Field

from hub import pools, registry, stations
from hub.errors import InvalidRequestError, UnavailableError
from hub.models import CodePool
from hub.web.api import Api, Body, Out, Params
from hub.web.keys import RUNTIME, SESSIONS

api = Api("admin", "The brand's back office: stations, their commands, code pools.")

Sku = Field(min_length=1, max_length=64, description="The brand's product code (SKU)")
# Database ids are 64-bit: a longer number names nothing (404, not a 500).
RecordId = Field(ge=1, le=2**63 - 1)


class StationIn(Body):
    station_id: str = Field(min_length=1, max_length=64)
    line: str = Field(min_length=1, max_length=64)
    site: str | None = Field(None, max_length=200)


class StationOut(Out):
    station_id: str
    line: str


@api.post("/api/v1/stations", body=StationIn, response=StationOut, status=201, errors=(409,))
async def add_station(request: web.Request, body: StationIn) -> StationOut:
    """Register a camera station."""
    async with request.app[SESSIONS]() as session, session.begin():
        station = await registry.create_station(session, body.station_id, body.line, body.site)
    return StationOut(station_id=station.id, line=station.line)


class StationParams(Params):
    station_id: str = Field(max_length=64)


class WorkOrderIn(Body):
    id: str = Field(min_length=1, max_length=64)
    sku: str = Sku
    lot: str = Field(min_length=1, max_length=64)
    production_date: date | None = None
    line: str | None = Field(None, min_length=1, max_length=64)
    shift: str | None = Field(None, min_length=1, max_length=32)
    operator: str | None = Field(None, min_length=1, max_length=64)


class CommandIn(Body):
    command: Literal["work_order", "start", "stop"]
    work_order: WorkOrderIn | None = None


class CommandOut(Out):
    id: str
    station_id: str
    command: str
    work_order: str | None = Field(None, description="The work order the command carries")


@api.post(
    "/api/v1/stations/{station_id}/commands",
    params=StationParams,
    body=CommandIn,
    response=CommandOut,
    status=202,
    errors=(503,),
)
async def send_command(request: web.Request, params: StationParams, body: CommandIn) -> CommandOut:
    """Send a station its work order, start or stop.

    Published retained with QoS 1 on the station's command topic, so a station that
    (re)connects later gets its current command. Every command carries the station's current
    work order, so a retained start or stop never makes a restarted station lose it.
    """
    if body.command == "work_order" and body.work_order is None:
        raise InvalidRequestError("Command 'work_order' needs a work_order")
    service = request.app[RUNTIME].ingest
    if service is None:
        raise UnavailableError("MQTT is not running")
    wo = body.work_order
    async with request.app[SESSIONS]() as session, session.begin():
        command = await stations.build_command(
            session,
            params.station_id,
            body.command,
            order_id=None if wo is None else wo.id,
            sku=None if wo is None else wo.sku,
            lot=None if wo is None else wo.lot,
            production_date=None if wo is None else wo.production_date,
            line=None if wo is None else wo.line,
            shift=None if wo is None else wo.shift,
            operator=None if wo is None else wo.operator,
        )
        # Published inside the transaction: if the broker refuses, the stored work order is
        # not changed either.
        service.publish_command(command)
    return CommandOut(
        id=command.id,
        station_id=params.station_id,
        command=body.command,
        work_order=None if command.work_order is None else command.work_order.id,
    )


class PoolIn(Body):
    batch_id: int = RecordId
    first: int = Field(ge=1, le=2**31 - 1, description="First 卡序号 (seq) of the range")
    last: int = Field(ge=1, le=2**31 - 1, description="Last 卡序号 (seq), inclusive")
    line: str = Field(min_length=1, max_length=64, description="Production line it goes to")
    work_order: str | None = Field(None, min_length=1, max_length=64)


class PoolOut(Out):
    id: int
    batch_id: int
    first: int
    last: int
    line: str
    work_order: str | None


class PoolQuery(Params):
    batch_id: int | None = Field(None, ge=1, le=2**63 - 1)


class PoolList(Out):
    pools: list[PoolOut]


def _pool_out(pool: CodePool) -> PoolOut:
    return PoolOut(
        id=pool.id,
        batch_id=pool.batch_id,
        first=pool.first_seq,
        last=pool.last_seq,
        line=pool.line,
        work_order=pool.work_order,
    )


@api.post("/api/v1/pools", body=PoolIn, response=PoolOut, status=201, errors=(404, 409))
async def add_pool(request: web.Request, body: PoolIn) -> PoolOut:
    """Allocate a range of a batch (by 卡序号) to a production line: its codes may then be
    commissioned only by that line's stations."""
    async with request.app[SESSIONS]() as session, session.begin():
        pool = await pools.allocate(
            session, body.batch_id, body.first, body.last, body.line, body.work_order
        )
        return _pool_out(pool)


@api.get("/api/v1/pools", query=PoolQuery, response=PoolList)
async def get_pools(request: web.Request, query: PoolQuery) -> PoolList:
    """The code pools, of one batch or all."""
    async with request.app[SESSIONS]() as session:
        found = await pools.list_pools(session, query.batch_id)
        return PoolList(pools=[_pool_out(p) for p in found])

"""The brand's back-office audience: stations, code batches, commands (master data is in
hub/web/master.py)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Literal

from aiohttp import web
from pydantic import Field

from hub import batches, registry
from hub.errors import InvalidRequestError, UnavailableError
from hub.web.api import Api, Body, Out, Params
from hub.web.keys import KEYRING, RUNTIME, SESSIONS
from protocols.errors import ProtocolError
from protocols.messages import Command, WorkOrder

api = Api("admin", "The brand's back office: master data, code batches, stations.")

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


class CommandIn(Body):
    command: Literal["work_order", "start", "stop"]
    work_order: WorkOrderIn | None = None


class CommandOut(Out):
    id: str
    station_id: str
    command: str


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
    (re)connects later gets its current command.
    """
    if body.command == "work_order" and body.work_order is None:
        raise InvalidRequestError("Command 'work_order' needs a work_order")
    order = None
    if body.work_order is not None:
        order = WorkOrder(id=body.work_order.id, sku=body.work_order.sku, lot=body.work_order.lot)
    async with request.app[SESSIONS]() as session:
        await registry.station_by_id(session, params.station_id)
        if order is not None:
            await registry.product_by_sku(session, order.sku)
    command = Command(station_id=params.station_id, command=body.command, work_order=order)
    try:
        Command.parse(command.to_json())  # the station's own strict check, before sending
    except ProtocolError as exc:
        raise InvalidRequestError(str(exc)) from None
    service = request.app[RUNTIME].ingest
    if service is None:
        raise UnavailableError("MQTT is not running")
    service.publish_command(command)
    return CommandOut(id=command.id, station_id=params.station_id, command=body.command)


class BatchIn(Body):
    sku: str = Sku
    count: int = Field(ge=1, le=batches.MAX_BATCH)
    kind: Literal["item", "case", "pallet"] = "item"
    with_pin: bool = False


class BatchOut(Out):
    id: int
    sku: str
    kind: str
    count: int
    key_id: int
    with_pin: bool
    states: dict[str, int] = Field(description="How many codes of the batch are in each state")


class BatchParams(Params):
    batch_id: int = RecordId


@api.post("/api/v1/batches", body=BatchIn, response=BatchOut, status=201, errors=(404, 409))
async def add_batch(request: web.Request, body: BatchIn) -> BatchOut:
    """Generate a batch of new codes for a product."""
    async with request.app[SESSIONS]() as session, session.begin():
        batch = await batches.generate_batch(
            session, request.app[KEYRING], body.sku, body.count, body.kind, body.with_pin
        )
        info = await batches.batch_info(session, batch.id)
    return BatchOut.model_validate(info.__dict__)


@api.get("/api/v1/batches/{batch_id}", params=BatchParams, response=BatchOut)
async def get_batch(request: web.Request, params: BatchParams) -> BatchOut:
    """A batch and how many of its codes are in each state."""
    async with request.app[SESSIONS]() as session:
        info = await batches.batch_info(session, params.batch_id)
    return BatchOut.model_validate(info.__dict__)


@api.get("/api/v1/batches/{batch_id}/export", params=BatchParams, produces="text/csv")
async def export_batch(request: web.Request, params: BatchParams) -> web.StreamResponse:
    """The printer CSV of a batch: seq, serial, url, human, pin (streamed)."""
    app = request.app
    batch_id = params.batch_id
    async with app[SESSIONS]() as session:
        await batches.get_batch(session, batch_id)  # 404 before headers go out
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="batch-{batch_id}.csv"',
            }
        )
        await response.prepare(request)
        await response.write(_csv_lines([batches.EXPORT_COLUMNS]))
        async for rows in batches.export_rows(
            session, app[KEYRING], batch_id, app[RUNTIME].public_base
        ):
            await response.write(_csv_lines(rows))
    await response.write_eof()
    return response


def _csv_lines(rows: Iterable[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()

"""Traceability and recall: a code's chain, a lot's items and destinations, recalls."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import Field, model_validator

from hub import recall, trace
from hub.errors import InvalidRequestError
from hub.web.api import Api, Body, Out, Params
from hub.web.keys import KEYRING, PRINCIPAL, SESSIONS

api = Api("trace", "Traceability (追溯) of codes and lots, and recalls (召回).")

# Who may trace codes: a dealer only the codes shipped to it (others are not found).
TRACERS = ("operator", "warehouse", "dealer", "inspector")
LOT_TRACERS = ("operator", "inspector")
CodeText = Field(min_length=1, max_length=300, description="A code as printed or typed")


class Link(Out):
    serial: str
    kind: str
    state: str


class Named(Out):
    code: str
    name: str


class OrderRef(Out):
    number: str
    state: str
    region: str
    shipped_at: datetime | None


class ProductRef(Out):
    sku: str
    name: str
    gtin: str | None


class CodeTraceOut(Out):
    query: str = Field(description="The text asked about")
    serial: str
    kind: str
    state: str
    product: ProductRef
    code_batch: int = Field(description="The generation batch of the code")
    seq: int = Field(description="卡序号: position in the generation batch")
    lot: str | None
    work_order: str | None
    station: str | None
    line: str | None
    site: str | None
    commissioned_at: datetime | None
    containers: list[Link] = Field(description="The case, then the pallet, it is packed in")
    contents: int = Field(description="Codes packed directly inside this one")
    order: OrderRef | None
    dealer: Named | None
    region: str | None
    activated_at: datetime | None
    scan_count: int
    first_scan_at: datetime | None
    last_scan_at: datetime | None


class TraceMissOut(Out):
    query: str
    error: str


class CodeQuery(Params):
    code: str = CodeText


class CodesIn(Body):
    codes: str = Field(
        min_length=1,
        max_length=trace.MAX_CODES * 310,
        description=f"Codes separated by ';' (at most {trace.MAX_CODES})",
    )


class CodesOut(Out):
    found: int
    results: list[CodeTraceOut | TraceMissOut]


def code_out(item: trace.CodeTrace) -> CodeTraceOut:
    return CodeTraceOut.model_validate(
        item.__dict__ | {"containers": [c.__dict__ for c in item.containers]}
    )


@api.get("/api/v1/trace/code", roles=TRACERS, query=CodeQuery, response=CodeTraceOut, errors=(404,))
async def trace_code(request: web.Request, query: CodeQuery) -> CodeTraceOut:
    """One code's chain: item → case → pallet → order → dealer, lot, line and scans.

    A dealer sees only codes shipped to it: any other code is 404, as if it did not exist.
    """
    async with request.app[SESSIONS]() as session:
        item = await trace.trace_code(session, request.app[KEYRING], query.code, request[PRINCIPAL])
    return code_out(item)


@api.post("/api/v1/trace/codes", roles=TRACERS, body=CodesIn, response=CodesOut)
async def trace_codes(request: web.Request, body: CodesIn) -> CodesOut:
    """Many codes at once (separated by ';', at most 1,000), each answered in order."""
    texts = trace.split_codes(body.codes)
    async with request.app[SESSIONS]() as session:
        items = await trace.trace_codes(session, request.app[KEYRING], texts, request[PRINCIPAL])
    results: list[CodeTraceOut | TraceMissOut] = [
        TraceMissOut(query=i.query, error=i.error)
        if isinstance(i, trace.TraceMiss)
        else code_out(i)
        for i in items
    ]
    return CodesOut(found=sum(isinstance(r, CodeTraceOut) for r in results), results=results)


class LotParams(Params):
    sku: str = Field(min_length=1, max_length=64)
    lot: str = Field(min_length=1, max_length=64)


class Material(Out):
    material: str
    supplier: str
    supplier_lot: str
    quantity: str | None


class DestinationOut(Out):
    dealer: str
    dealer_name: str
    contact: str | None
    phone: str | None
    order: str
    region: str
    shipped_at: datetime | None
    codes: int


class LotTraceOut(Out):
    sku: str
    lot: str
    product: str
    details: dict[str, Any] | None = Field(description="The lot's master data, if registered")
    materials: list[Material]
    states: dict[str, int] = Field(description="How many codes of the lot are in each state")
    code_batches: list[int]
    destinations: list[DestinationOut] = Field(description="Where the lot's codes shipped")


def destination_out(found: Iterable[trace.Destination]) -> list[DestinationOut]:
    return [DestinationOut.model_validate(d.__dict__) for d in found]


@api.get(
    "/api/v1/trace/lots/{sku}/{lot}", roles=LOT_TRACERS, params=LotParams, response=LotTraceOut
)
async def trace_lot(request: web.Request, params: LotParams) -> LotTraceOut:
    """A production lot: master data, materials and suppliers, codes by state, and every
    dealer and order its codes shipped under."""
    async with request.app[SESSIONS]() as session:
        ref = await trace.lot_ref(session, params.sku, params.lot)
        found = await trace.trace_lot(session, ref)
    return LotTraceOut.model_validate(
        found.__dict__ | {"destinations": destination_out(found.destinations)}
    )


@api.get(
    "/api/v1/trace/lots/{sku}/{lot}/items",
    roles=LOT_TRACERS,
    params=LotParams,
    produces="text/csv",
)
async def lot_items(request: web.Request, params: LotParams) -> web.StreamResponse:
    """Every code of a lot and where it went (CSV, streamed)."""
    async with request.app[SESSIONS]() as session:
        ref = await trace.lot_ref(session, params.sku, params.lot)  # 404 before headers
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": 'attachment; filename="lot-items.csv"',
            }
        )
        await response.prepare(request)
        await response.write(csv_lines([trace.ITEM_COLUMNS]))
        async for rows in trace.lot_items(session, ref):
            await response.write(csv_lines(rows))
    await response.write_eof()
    return response


class MaterialQuery(Params):
    supplier_lot: str = Field(min_length=1, max_length=64, description="The supplier's lot")
    supplier: str | None = Field(None, max_length=200)


class MaterialLot(Out):
    sku: str
    lot: str


class MaterialTraceOut(Out):
    lots: list[MaterialLot] = Field(description="Lots made with this material lot")
    destinations: list[DestinationOut]


@api.get(
    "/api/v1/trace/materials",
    roles=LOT_TRACERS,
    query=MaterialQuery,
    response=MaterialTraceOut,
    errors=(404,),
)
async def trace_material(request: web.Request, query: MaterialQuery) -> MaterialTraceOut:
    """Which lots used a supplier's material lot, and where their codes went."""
    async with request.app[SESSIONS]() as session:
        refs = await trace.lots_of_material(session, query.supplier_lot, query.supplier)
        found = await trace.destinations(session, refs)
    return MaterialTraceOut(
        lots=[MaterialLot(sku=r.sku, lot=r.lot) for r in refs],
        destinations=destination_out(found),
    )


# Recalls ----------------------------------------------------------------------------------


class LotIn(Body):
    sku: str = Field(min_length=1, max_length=64)
    lot: str = Field(min_length=1, max_length=64)


class MaterialIn(Body):
    supplier_lot: str = Field(min_length=1, max_length=64)
    supplier: str | None = Field(None, max_length=200)


class RecallIn(Body):
    reason: str = Field(min_length=1, max_length=500, description="Why (for the brand's staff)")
    lot: LotIn | None = Field(None, description="Recall one production lot")
    material: MaterialIn | None = Field(None, description="Recall every lot of a material lot")

    @model_validator(mode="after")
    def _one_selection(self) -> RecallIn:
        if (self.lot is None) == (self.material is None):
            raise ValueError("give exactly one of 'lot' and 'material'")
        return self


class RecallOut(Out):
    id: int
    created_at: datetime
    actor: str
    reason: str
    selection: dict[str, Any]
    lots: list[MaterialLot]
    moved: int = Field(description="Codes moved to recalled")
    refused: dict[str, int] = Field(description="Codes left alone, counted by reason")


class RecallList(Out):
    recalls: list[RecallOut]


class RecallParams(Params):
    recall_id: int = Field(ge=1, le=2**63 - 1)


def recall_out(found: recall.RecallResult) -> RecallOut:
    return RecallOut.model_validate(
        found.__dict__ | {"lots": [{"sku": sku, "lot": lot} for sku, lot in found.lots]}
    )


@api.post("/api/v1/recalls", body=RecallIn, response=RecallOut, status=201, errors=(404,))
async def add_recall(request: web.Request, body: RecallIn) -> RecallOut:
    """Recall a production lot, or every lot made with a supplier's material lot.

    Its codes become ``recalled`` (consumers see the recall notice); codes that cannot be
    recalled (never commissioned, void) are counted by reason. The dealers and orders to
    contact are at ``/api/v1/recalls/{id}/contacts``.
    """
    async with request.app[SESSIONS]() as session, session.begin():
        if body.lot is not None:
            refs = [await trace.lot_ref(session, body.lot.sku, body.lot.lot)]
            selection: dict[str, Any] = {"lot": body.lot.model_dump()}
        elif body.material is not None:
            refs = await trace.lots_of_material(
                session, body.material.supplier_lot, body.material.supplier
            )
            selection = {"material": body.material.model_dump()}
        else:  # pragma: no cover - the model refuses it
            raise InvalidRequestError("give exactly one of 'lot' and 'material'")
        found = await recall.recall(session, refs, body.reason, selection, request[PRINCIPAL])
    return recall_out(found)


@api.get("/api/v1/recalls", response=RecallList)
async def list_recalls(request: web.Request) -> RecallList:
    """Every recall, newest first."""
    async with request.app[SESSIONS]() as session:
        found = await recall.list_recalls(session)
    return RecallList(recalls=[recall_out(r) for r in found])


@api.get(
    "/api/v1/recalls/{recall_id}/contacts",
    params=RecallParams,
    produces="text/csv",
    errors=(404,),
)
async def recall_contacts(request: web.Request, params: RecallParams) -> web.Response:
    """The dealers and orders to contact about a recall (CSV: dealer, contact, phone,
    order, region, shipped_at, codes)."""
    async with request.app[SESSIONS]() as session:
        found = await recall.contacts(session, params.recall_id)
    body = csv_lines([recall.CONTACT_COLUMNS, *recall.contact_rows(found)])
    return web.Response(
        body=body,
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="recall-{params.recall_id}-contacts.csv"',
        },
    )


def csv_lines(rows: Iterable[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()

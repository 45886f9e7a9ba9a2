"""The warehouse audience: PDAs shipping codes to dealers (activation)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import Field
from sqlalchemy.exc import IntegrityError

from hub import orders, shipping
from hub.web.api import Api, Body, Out, Params, json_response
from hub.web.keys import KEYRING, PRINCIPAL, SESSIONS
from hub.web.orders import OrderList, OrderOut, OrderParams, viewer

api = Api("pda", "Warehouse PDAs: outbound shipping against orders.")


class ShipmentIn(Body):
    id: str = Field(
        description="Client-chosen UUID: a retry with the same id replays", max_length=36
    )
    order: str = Field(min_length=1, max_length=64, description="Order number")
    dealer: str = Field(min_length=1, max_length=64, description="Dealer code")
    region: str | None = Field(None, max_length=100, description="Default: the dealer's region")
    codes: list[str] = Field(
        min_length=1, max_length=shipping.MAX_SHIPMENT_CODES, description="Code texts as scanned"
    )


class Refusal(Out):
    code: str
    reason: str


class ShipmentOut(Out):
    shipment_id: str
    order: str
    dealer: str
    region: str
    activated: list[str]
    refused: list[Refusal]
    replayed: bool


@api.post("/api/v1/shipments", roles=("warehouse",), body=ShipmentIn, response=ShipmentOut)
async def add_shipment(request: web.Request, body: ShipmentIn) -> ShipmentOut:
    """Ship codes for an order: activates them for the dealer and region.

    Idempotent by shipment id. A case or pallet ships with its contents. Each code that
    cannot ship is refused with its reason; the others ship.
    """
    arguments = {
        "shipment_id": body.id,
        "order_number": body.order,
        "dealer_code": body.dealer,
        "region": body.region,
        "codes": body.codes,
        "source": request[PRINCIPAL].event_source,
    }
    try:
        result = await _ship(request.app, arguments)
    except IntegrityError:
        # The same shipment id committed concurrently (a PDA retrying while the first try
        # was still running): run again, which now finds it and replays its result.
        result = await _ship(request.app, arguments)
    return ShipmentOut.model_validate(result.as_dict())


async def _ship(app: web.Application, arguments: dict[str, Any]) -> shipping.ShipmentResult:
    async with app[SESSIONS]() as session, session.begin():
        return await shipping.ship(session, app[KEYRING], **arguments)


# Scanning against orders ------------------------------------------------------------------

Device = Field(min_length=1, max_length=64, description="The PDA's device id")


class AssignedQuery(Params):
    device: str | None = Field(None, max_length=64, description="This device's id")


@api.get(
    "/api/v1/pda/orders",
    roles=("warehouse",),
    query=AssignedQuery,
    response=OrderList,
)
async def assigned_orders(request: web.Request, query: AssignedQuery) -> OrderList:
    """Open orders for this warehouse user or device (assigned to it, or to no one)."""
    principal = request[PRINCIPAL]
    # Assigned by user name, by the principal's subject (user:<name>) or by device id.
    mine = [principal.subject, principal.subject.removeprefix("user:")]
    mine += [query.device] if query.device else []
    async with request.app[SESSIONS]() as session:
        found = await orders.list_orders(
            session,
            viewer(request),
            states=["open", "in_progress"],
            assigned_to=mine,
            include_unassigned=True,
        )
    return OrderList.model_validate({"orders": found})


class DownloadOut(Out):
    order: OrderOut
    codes: list[tuple[str, str, str, str | None]] = Field(
        description="Codes that can ship: [serial, kind, sku, parent serial or null]"
    )
    covered: list[str] = Field(description="Serials this order's accepted scans cover")
    claimed: list[tuple[str, str]] = Field(description="[serial, order] claimed by other orders")
    shipped: list[str] = Field(description="Recently shipped serials of the order's products")


@api.get(
    "/api/v1/pda/orders/{number}",
    roles=("warehouse",),
    params=OrderParams,
    response=DownloadOut,
)
async def download_order(request: web.Request, params: OrderParams) -> web.Response:
    """Download an order with what the device needs to judge scans offline."""
    async with request.app[SESSIONS]() as session:
        order = await orders.order_by_number(session, params.number, viewer(request))
        info = await orders.summary(session, order)
        data = await shipping.download(session, order)
    # Rendered without a pydantic round trip: a 10,000-code order is on the hot path.
    info = OrderOut.model_validate(info).model_dump(mode="json")
    return json_response({"order": info, **data})


class ScanIn(Body):
    id: str = Field(max_length=36, description="UUID chosen on the device: a re-upload is a no-op")
    code: str = Field(max_length=300, description="The text as scanned (or the removed scan id)")
    at: datetime = Field(description="When it was scanned, on the device's clock")
    action: Literal["add", "remove"] = "add"
    target: str | None = Field(None, max_length=36, description="For remove: the scan taken back")
    reason: str | None = Field(None, max_length=300)
    device_result: str = Field(
        "ok", max_length=24, description="What the device said; only ok scans are claimed"
    )


class ScanBatchIn(Body):
    device: str = Device
    scans: list[ScanIn] = Field(min_length=1, max_length=shipping.MAX_SCAN_BATCH)


class ScanAnswer(Out):
    id: str
    result: str
    reason: str | None
    items: int


class ScanBatchOut(Out):
    order: OrderOut
    scans: list[ScanAnswer]


@api.post(
    "/api/v1/pda/orders/{number}/scans",
    roles=("warehouse",),
    params=OrderParams,
    body=ScanBatchIn,
    response=ScanBatchOut,
    errors=(409,),
)
async def upload_scans(
    request: web.Request, params: OrderParams, body: ScanBatchIn
) -> web.Response:
    """Upload a batch of scans (idempotent by scan id).

    Each scan the device accepted is judged again against the database and, when still ok,
    claims its code (a case: with its contents) for this order. A code another order claimed
    first answers ``conflict`` naming that order.
    """
    scans = [shipping.ScanIn(**s.model_dump()) for s in body.scans]
    for attempt in (1, 2):
        try:
            async with request.app[SESSIONS]() as session, session.begin():
                order = await orders.order_by_number(session, params.number, viewer(request))
                answers = await shipping.upload_scans(
                    session, request.app[KEYRING], order, body.device, scans
                )
                info = await orders.summary(session, order)
            break
        except IntegrityError:
            # The same scan ids committed concurrently (a retry racing the first try): run
            # again, which now finds them and replays their answers.
            if attempt == 2:
                raise
    info = OrderOut.model_validate(info).model_dump(mode="json")
    return json_response({"order": info, "scans": answers})


class CompleteIn(Body):
    id: str = Field(max_length=36, description="UUID chosen on the device: a retry replays")
    reason: str | None = Field(
        None, max_length=300, description="Required when something is missing (short shipment)"
    )


class CompleteOut(Out):
    order: str
    state: str
    activated: int = Field(description="Codes activated (cases count with their contents)")
    items: int
    shortfall: dict[str, int] = Field(description="Items missing per SKU")
    backorder: str | None = Field(description="The order created for what is missing")
    replayed: bool


@api.post(
    "/api/v1/pda/orders/{number}/complete",
    roles=("warehouse",),
    params=OrderParams,
    body=CompleteIn,
    response=CompleteOut,
    errors=(409,),
)
async def complete_order(
    request: web.Request, params: OrderParams, body: CompleteIn
) -> CompleteOut:
    """Complete an order: activates every code its scans claimed (shipped, bound to the
    order, dealer and region). Short: needs a reason and leaves a backorder."""
    async with request.app[SESSIONS]() as session, session.begin():
        order = await orders.order_by_number(session, params.number, viewer(request))
        result = await shipping.complete(
            session,
            order,
            completion_id=body.id,
            reason=body.reason,
            source=request[PRINCIPAL].event_source,
        )
    return CompleteOut.model_validate(result)


class ReceiptIn(Body):
    id: str = Field(max_length=36, description="UUID chosen on the device: a retry replays")
    codes: list[str] = Field(min_length=1, max_length=shipping.MAX_SHIPMENT_CODES)


class ReceiptOut(Out):
    order: str
    received: list[str]
    missing: list[str] = Field(description="Items of the order not received yet (first 1000)")
    missing_count: int
    unexpected: list[Refusal]
    replayed: bool


@api.post(
    "/api/v1/pda/orders/{number}/receipts",
    roles=("dealer",),
    params=OrderParams,
    body=ReceiptIn,
    response=ReceiptOut,
    errors=(409,),
)
async def receive_order(request: web.Request, params: OrderParams, body: ReceiptIn) -> ReceiptOut:
    """A dealer's inbound scan: received, missing, unexpected. Dealers see only their own
    orders (another dealer's order: 404)."""
    async with request.app[SESSIONS]() as session, session.begin():
        order = await orders.order_by_number(session, params.number, viewer(request))
        result = await shipping.receive(
            session,
            request.app[KEYRING],
            order,
            receipt_id=body.id,
            codes=body.codes,
            source=request[PRINCIPAL].event_source,
        )
    return ReceiptOut.model_validate(result)


class LookupQuery(Params):
    code: str = Field(min_length=1, max_length=512, description="The code as scanned")
    region: str | None = Field(None, max_length=100, description="Where the inspector is")


class LookupOut(Out):
    code: str
    found: bool
    state: str | None
    product: str | None
    order: str | None
    dealer: str | None
    dealer_name: str | None
    shipped_region: str | None
    shipped_at: datetime | None
    diverted: bool = Field(description="窜货: found outside the region it shipped to")
    reason: str | None


@api.get("/api/v1/pda/lookup", roles=("inspector",), query=LookupQuery, response=LookupOut)
async def inspector_lookup(request: web.Request, query: LookupQuery) -> LookupOut:
    """稽查: which order, dealer and region a code found in a shop shipped to, and a
    diversion flag when the inspector's region differs. Recorded; changes no state."""
    principal = request[PRINCIPAL]
    region = query.region
    async with request.app[SESSIONS]() as session, session.begin():
        result = await shipping.inspect(
            session,
            request.app[KEYRING],
            query.code,
            region=region,
            source=principal.subject,
        )
    return LookupOut.model_validate(result)


class CodeQuery(Params):
    code: str = Field(min_length=1, max_length=512, description="The code as scanned")


class KnownCodeOut(Out):
    known: bool
    serial: str | None = None
    kind: str | None = None
    sku: str | None = None
    status: str | None = Field(default=None, description="available, shipped, not_commissioned")
    contents: list[str] = Field(default_factory=list)
    items: dict[str, int] = Field(default_factory=dict)
    detail: str | None = None


@api.get(
    "/api/v1/pda/orders/{number}/codes",
    roles=("warehouse",),
    params=OrderParams,
    query=CodeQuery,
    response=KnownCodeOut,
)
async def order_code(request: web.Request, params: OrderParams, query: CodeQuery) -> KnownCodeOut:
    """What the hub knows of a code an order's download does not list (a product of no
    line, a label never read on the line, a code shipped earlier), for the device's judgement."""
    async with request.app[SESSIONS]() as session:
        order = await orders.order_by_number(session, params.number, viewer(request))
        found = await shipping.code_for_order(session, request.app[KEYRING], order, query.code)
    if found is None:
        return KnownCodeOut(known=False)
    return KnownCodeOut(
        known=True,
        serial=found.serial,
        kind=found.kind,
        sku=found.sku,
        status=found.status.value,
        contents=list(found.contents),
        items=dict(found.items),
        detail=found.detail,
    )

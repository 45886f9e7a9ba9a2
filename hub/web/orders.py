"""Orders from the ERP, for the back office (admin) and the dealers (their own orders only)."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web
from pydantic import Field

from hub import audit, orders, shipping
from hub.domain.access import Principal
from hub.domain.orders import OrderDraft
from hub.web.api import Api, Body, Out, Params
from hub.web.keys import PRINCIPAL, SESSIONS, SETTINGS

api = Api("orders", "Orders from the ERP: import, assign, cancel, un-ship.")

OrderNumber = Field(min_length=1, max_length=64, description="Order number (from the ERP)")
Sku = Field(min_length=1, max_length=64, description="Product SKU")


class LineIn(Body):
    sku: str = Sku
    quantity: int = Field(ge=1, le=1_000_000, description="Items (units) to ship")


class OrderIn(Body):
    number: str = OrderNumber
    dealer: str = Field(min_length=1, max_length=64, description="Dealer code")
    region: str | None = Field(None, max_length=100, description="Default: the dealer's region")
    notes: str | None = Field(None, max_length=2000)
    assigned_to: str | None = Field(None, max_length=64, description="Warehouse user or device id")
    lines: list[LineIn] = Field(min_length=1, max_length=500)


class OrdersIn(Body):
    orders: list[OrderIn] = Field(min_length=1, max_length=1000)


class ImportOut(Out):
    created: list[str]
    skipped: list[str] = Field(description="Order numbers that exist already, unchanged")


class LineOut(Out):
    sku: str
    name: str
    gtin: str | None
    quantity: int
    scanned: int = Field(description="Items accepted so far")


class OrderOut(Out):
    number: str
    dealer: str
    dealer_name: str
    region: str
    state: str = Field(description="open, in_progress, complete, short_shipped or cancelled")
    notes: str | None
    assigned_to: str | None
    created_at: datetime
    shipped_at: datetime | None
    short_reason: str | None
    backorder_of: str | None
    lines: list[LineOut]


class OrderList(Out):
    orders: list[OrderOut]


class OrderParams(Params):
    number: str = Field(max_length=64)


class OrderQuery(Params):
    state: list[str] | str | None = Field(None, description="Only orders in these states")
    limit: int = Field(200, ge=1, le=1000)


def viewer(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def _drafts(body: OrdersIn) -> list[OrderDraft]:
    drafts = []
    for o in body.orders:
        lines: dict[str, int] = {}
        for line in o.lines:
            lines[line.sku] = lines.get(line.sku, 0) + line.quantity
        drafts.append(OrderDraft(o.number, o.dealer, o.region, o.notes, o.assigned_to, lines))
    return drafts


@api.post("/api/v1/orders", body=OrdersIn, response=ImportOut, status=201, errors=(409,))
async def add_orders(request: web.Request, body: OrdersIn) -> ImportOut:
    """Create orders (the ERP's JSON interface). All or nothing; an order number that exists
    with the same contents is skipped, with other contents refused (409)."""
    async with request.app[SESSIONS]() as session, session.begin():
        result = await orders.create_orders(session, _drafts(body))
    return ImportOut.model_validate(result)


@api.post("/api/v1/orders/import", response=ImportOut, status=201, errors=(409,))
async def import_orders(request: web.Request) -> ImportOut:
    """Import orders from an ERP file: CSV (UTF-8) or XLSX, one row per order line.

    Columns: order, dealer, region, sku, quantity, notes, assigned_to (region, notes and
    assigned_to may be empty). Send the file as the request body with Content-Type text/csv
    or the XLSX type. All or nothing: every bad row is named with its row number.
    """
    data = await request.read()
    async with request.app[SESSIONS]() as session, session.begin():
        result = await orders.import_file(session, data, request.content_type)
    return ImportOut.model_validate(result)


@api.get(
    "/api/v1/orders", roles=("admin", "warehouse", "dealer"), query=OrderQuery, response=OrderList
)
async def list_orders(request: web.Request, query: OrderQuery) -> OrderList:
    """Orders, oldest first. A dealer sees only its own."""
    states = [query.state] if isinstance(query.state, str) else query.state
    async with request.app[SESSIONS]() as session:
        found = await orders.list_orders(session, viewer(request), states=states, limit=query.limit)
    return OrderList.model_validate({"orders": found})


@api.get(
    "/api/v1/orders/{number}",
    roles=("admin", "warehouse", "dealer"),
    params=OrderParams,
    response=OrderOut,
)
async def get_order(request: web.Request, params: OrderParams) -> OrderOut:
    """One order with its lines and progress. A dealer asking for another's order: 404."""
    async with request.app[SESSIONS]() as session:
        order = await orders.order_by_number(session, params.number, viewer(request))
        return OrderOut.model_validate(await orders.summary(session, order))


class AssignIn(Body):
    assigned_to: str | None = Field(
        max_length=64, description="Warehouse user or device id; null: anyone"
    )


@api.put(
    "/api/v1/orders/{number}/assignment",
    params=OrderParams,
    body=AssignIn,
    response=OrderOut,
    errors=(409,),
)
async def assign_order(request: web.Request, params: OrderParams, body: AssignIn) -> OrderOut:
    """Assign an open order to a warehouse user or device."""
    async with request.app[SESSIONS]() as session, session.begin():
        order = await orders.assign(session, params.number, body.assigned_to)
        return OrderOut.model_validate(await orders.summary(session, order))


@api.post("/api/v1/orders/{number}/cancel", params=OrderParams, response=OrderOut, errors=(409,))
async def cancel_order(request: web.Request, params: OrderParams) -> OrderOut:
    """Cancel an order that has not shipped; its scans release their codes."""
    async with request.app[SESSIONS]() as session, session.begin():
        order = await orders.cancel(session, params.number)
        return OrderOut.model_validate(await orders.summary(session, order))


class UnshipIn(Body):
    reason: str = Field(min_length=1, max_length=300, description="Why (kept in the audit log)")


class UnshipOut(Out):
    order: str
    state: str
    returned: int = Field(description="Codes returned to the warehouse")


@api.post(
    "/api/v1/orders/{number}/unship",
    params=OrderParams,
    body=UnshipIn,
    response=UnshipOut,
    errors=(409,),
)
async def unship_order(request: web.Request, params: OrderParams, body: UnshipIn) -> UnshipOut:
    """Take back a mistaken shipment within the grace period (admin; audited).

    The order's codes return to the warehouse (packed ones into their case again) and the
    order opens again. Refused once the grace period is over or a code was received.
    """
    grace = timedelta(hours=request.app[SETTINGS].unship_grace_hours)
    principal = request[PRINCIPAL]
    async with request.app[SESSIONS]() as session, session.begin():
        order = await orders.order_by_number(session, params.number, principal)
        result = await shipping.unship(
            session, order, reason=body.reason, grace=grace, subject=principal.subject
        )
        session.add(
            audit.entry(
                actor=principal.subject,
                principal=principal,
                action="unship",
                target=f"order:{order.number}",
                outcome="ok",
                client=request.remote,
                details={"reason": body.reason, "returned": result["returned"]},
            )
        )
    return UnshipOut.model_validate(result)

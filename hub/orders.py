"""Orders from the ERP: create (JSON or a CSV/XLSX file), list, assign, cancel, summarize.

Scanning against an order, completing it and what follows are in ``hub.shipping``.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.domain.access import Principal
from hub.domain.orders import OrderDraft, OrderState, check_scannable, drafts_from_rows
from hub.errors import ConflictError, InvalidRequestError, NotFoundError
from hub.models import Dealer, Order, OrderClaim, OrderLine, OrderScan, Product
from hub.timeutil import utcnow

MAX_IMPORT_ROWS = 20_000


# Internal calls (an admin action by order number) see every order.
SYSTEM = Principal(role="admin", subject="system")


async def create_orders(session: AsyncSession, drafts: list[OrderDraft]) -> dict[str, list[str]]:
    """Insert the drafts (caller commits). An order number that exists already is skipped
    when it is the same order and refused when it differs, so an ERP may send a file twice."""
    created: list[str] = []
    skipped: list[str] = []
    dealers = {
        d.code: d
        for d in await session.scalars(
            select(Dealer).where(Dealer.code.in_({d.dealer for d in drafts}))
        )
    }
    skus = {sku for d in drafts for sku in d.lines}
    products = {
        p.sku: p for p in await session.scalars(select(Product).where(Product.sku.in_(skus)))
    }
    problems = [f"unknown dealer {c!r}" for c in sorted({d.dealer for d in drafts} - set(dealers))]
    problems += [f"unknown product {s!r}" for s in sorted(skus - set(products))]
    if problems:
        raise InvalidRequestError("Orders refused, nothing imported: " + "; ".join(problems[:20]))
    existing = {
        o.number: o
        for o in await session.scalars(
            select(Order).where(Order.number.in_([d.number for d in drafts]))
        )
    }
    now = utcnow()
    for draft in drafts:
        dealer = dealers[draft.dealer]
        old = existing.get(draft.number)
        if old is not None:
            if old.dealer_id == dealer.id and await _lines_of(session, old.id) == draft.lines:
                skipped.append(draft.number)
                continue
            raise ConflictError(
                f"Order {draft.number!r} exists with other contents: nothing imported"
            )
        order = Order(
            number=draft.number,
            dealer_id=dealer.id,
            region=draft.region or dealer.region,
            state=OrderState.OPEN.value,
            created_at=now,
            notes=draft.notes,
            assigned_to=draft.assigned_to,
        )
        session.add(order)
        await session.flush()
        session.add_all(
            OrderLine(order_id=order.id, product_id=products[sku].id, quantity=quantity)
            for sku, quantity in draft.lines.items()
        )
        created.append(draft.number)
    await session.flush()
    return {"created": created, "skipped": skipped}


async def _lines_of(session: AsyncSession, order_id: int) -> dict[str, int]:
    rows = await session.execute(
        select(Product.sku, OrderLine.quantity)
        .join(Product, Product.id == OrderLine.product_id)
        .where(OrderLine.order_id == order_id)
    )
    return dict(rows.all())  # a Result has keys(): dict() would take it for a mapping


XLSX_TYPES = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",)
CSV_TYPES = ("text/csv", "text/plain", "application/csv")


def rows_from_upload(data: bytes, content_type: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of an uploaded CSV (UTF-8, with or without BOM) or XLSX (first sheet)."""
    if content_type in XLSX_TYPES or data[:4] == b"PK\x03\x04":
        return _xlsx_rows(data)
    if content_type not in CSV_TYPES:
        raise InvalidRequestError(
            f"Import of type {content_type[:60]!r}: expected text/csv or an XLSX workbook"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(f"CSV is not UTF-8: {exc}") from None
    reader = csv.reader(io.StringIO(text))
    try:
        table = list(reader)
    except csv.Error as exc:
        raise InvalidRequestError(f"CSV cannot be read: {exc}") from None
    return _split(table)


def _xlsx_rows(data: bytes) -> tuple[list[str], list[list[str]]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise InvalidRequestError(f"XLSX cannot be read: {str(exc)[:200]}") from None
    try:
        sheet = book.worksheets[0]
        table = []
        for row in sheet.iter_rows(values_only=True):
            table.append(["" if v is None else _cell_text(v) for v in row])
            if len(table) > MAX_IMPORT_ROWS + 1:
                break
    finally:
        book.close()
    return _split(table)


def _cell_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _split(table: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    while table and not any(str(c).strip() for c in table[-1]):
        table.pop()
    if not table:
        raise InvalidRequestError("Import refused: the file is empty")
    if len(table) > MAX_IMPORT_ROWS + 1:
        raise InvalidRequestError(
            f"Import refused: {len(table) - 1} rows, expected at most {MAX_IMPORT_ROWS}"
        )
    header = table[0]
    while header and not str(header[-1]).strip():
        header = header[:-1]
    return header, [row[: max(len(header), len(row))] for row in table[1:]]


async def import_file(session: AsyncSession, data: bytes, content_type: str) -> dict[str, Any]:
    header, rows = rows_from_upload(data, content_type)
    return await create_orders(session, drafts_from_rows(header, rows))


async def order_by_number(session: AsyncSession, number: str, viewer: Principal) -> Order:
    """The order, or NotFoundError, also for a dealer asking for another dealer's order (so
    it cannot even learn that the order exists)."""
    order = await session.scalar(select(Order).where(Order.number == number))
    if order is None or not viewer.sees_dealer(order.dealer_id):
        raise NotFoundError(f"Unknown order {number!r}")
    return order


async def summary(session: AsyncSession, order: Order) -> dict[str, Any]:
    """The order with its lines and how many items are scanned per line."""
    dealer = await session.get(Dealer, order.dealer_id)
    assert dealer is not None
    counted = dict(
        (
            await session.execute(
                select(OrderClaim.product_id, func.count())
                .where(OrderClaim.order_id == order.id, OrderClaim.kind == "item")
                .group_by(OrderClaim.product_id)
            )
        ).all()
    )
    lines = [
        {
            "sku": product.sku,
            "name": product.name,
            "gtin": product.gtin,
            "quantity": line.quantity,
            "scanned": int(counted.get(product.id, 0)),
        }
        for line, product in (
            await session.execute(
                select(OrderLine, Product)
                .join(Product, Product.id == OrderLine.product_id)
                .where(OrderLine.order_id == order.id)
                .order_by(OrderLine.id)
            )
        ).all()
    ]
    backorder_of = None
    if order.backorder_of is not None:
        backorder_of = await session.scalar(
            select(Order.number).where(Order.id == order.backorder_of)
        )
    return {
        "number": order.number,
        "dealer": dealer.code,
        "dealer_name": dealer.name,
        "region": order.region,
        "state": order.state,
        "notes": order.notes,
        "assigned_to": order.assigned_to,
        "created_at": order.created_at,
        "shipped_at": order.shipped_at,
        "short_reason": order.short_reason,
        "backorder_of": backorder_of,
        "lines": lines,
    }


async def list_orders(
    session: AsyncSession,
    viewer: Principal,
    *,
    states: list[str] | None = None,
    assigned_to: list[str] | None = None,
    include_unassigned: bool = False,
    limit: int = 200,
) -> list[dict[str, Any]]:
    query = select(Order).order_by(Order.id)
    if viewer.role == "dealer":
        query = query.where(Order.dealer_id == (viewer.dealer_id or -1))
    if states:
        query = query.where(Order.state.in_(states))
    if assigned_to is not None:
        wanted = Order.assigned_to.in_(assigned_to)
        query = query.where(wanted | Order.assigned_to.is_(None) if include_unassigned else wanted)
    orders = list(await session.scalars(query.limit(limit)))
    return [await summary(session, o) for o in orders]


async def assign(session: AsyncSession, number: str, assigned_to: str | None) -> Order:
    order = await order_by_number(session, number, SYSTEM)
    check_scannable(number, order.state)
    order.assigned_to = assigned_to
    return order


async def cancel(session: AsyncSession, number: str) -> Order:
    """Cancel an order that has not shipped; its scans no longer reserve their codes."""
    order = await order_by_number(session, number, SYSTEM)
    check_scannable(number, order.state)
    await session.execute(delete(OrderClaim).where(OrderClaim.order_id == order.id))
    await session.execute(
        update(OrderScan)
        .where(OrderScan.order_id == order.id, OrderScan.removed_at.is_(None))
        .values(removed_at=utcnow(), removed_reason="order cancelled")
    )
    order.state = OrderState.CANCELLED.value
    return order

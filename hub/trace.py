"""Traceability (追溯): where a code came from and where it went, what a lot was made of and
where its items went.

Every answer is built from the code table (the current-state projection of the event log):
item → case → pallet (``parent_id``), the order and dealer it shipped to, its lot and the
lot's materials and suppliers. A caller scoped to a dealer sees only codes shipped to that
dealer; any other code is "not found", exactly like a code that does not exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from hub.domain.access import Principal
from hub.errors import InvalidRequestError, NotFoundError
from hub.models import Code, Dealer, Lot, LotMaterial, Order, Product, Station
from hub.timeutil import as_utc
from protocols.codes import Keyring, check_code
from protocols.errors import CodeError

MAX_CODES = 1000
MAX_DEPTH = 8  # item → case → pallet, with room to spare; a cycle can never loop forever


def split_codes(text: str) -> list[str]:
    """The codes of a multi-code query: separated by ``;`` (or new lines), blanks dropped,
    at most MAX_CODES."""
    parts = [p.strip() for p in text.replace("\r", "\n").replace("\n", ";").split(";")]
    codes = [p for p in parts if p]
    if not codes:
        raise InvalidRequestError("No codes given: expected codes separated by ';'")
    if len(codes) > MAX_CODES:
        raise InvalidRequestError(f"{len(codes)} codes given: expected at most {MAX_CODES}")
    return codes


@dataclass(frozen=True)
class Link:
    """One container of the chain (a case or a pallet)."""

    serial: str
    kind: str
    state: str


@dataclass
class CodeTrace:
    query: str
    serial: str
    kind: str
    state: str
    product: dict[str, Any]
    code_batch: int
    seq: int
    lot: str | None
    work_order: str | None
    station: str | None
    line: str | None
    site: str | None
    commissioned_at: datetime | None
    containers: list[Link]
    contents: int
    order: dict[str, Any] | None
    dealer: dict[str, Any] | None
    region: str | None
    activated_at: datetime | None
    scan_count: int
    first_scan_at: datetime | None
    last_scan_at: datetime | None


@dataclass
class TraceMiss:
    query: str
    error: str


def _visible(query: Any, principal: Principal) -> Any:
    if principal.role == "dealer":
        return query.where(Code.dealer_id == principal.dealer_id)
    return query


async def trace_codes(
    session: AsyncSession, keyring: Keyring, texts: Sequence[str], principal: Principal
) -> list[CodeTrace | TraceMiss]:
    """The chain of each code text, in the order given; a text that names no code the
    caller may see is a TraceMiss with the reason."""
    checked: dict[int, str] = {}
    out: list[CodeTrace | TraceMiss | None] = []
    for index, text in enumerate(texts):
        try:
            checked[index] = check_code(text, keyring).serial
            out.append(None)
        except CodeError as exc:
            out.append(TraceMiss(text[:200], f"not a code of this brand: {exc}"))
    serials = sorted(set(checked.values()))
    rows: dict[str, Any] = {}
    for start in range(0, len(serials), 500):
        query = (
            select(Code, Product, Station, Order, Dealer)
            .join(Product, Product.id == Code.product_id)
            .outerjoin(Station, Station.id == Code.station_id)
            .outerjoin(Order, Order.id == Code.order_id)
            .outerjoin(Dealer, Dealer.id == Code.dealer_id)
            .where(Code.serial.in_(serials[start : start + 500]))
        )
        for found in await session.execute(_visible(query, principal)):
            rows[found.Code.serial] = found
    for index, serial in checked.items():
        row = rows.get(serial)
        if row is None:
            out[index] = TraceMiss(texts[index][:200], f"no code {serial} found")
            continue
        out[index] = await _trace_one(session, texts[index], row)
    return [item for item in out if item is not None]


async def trace_code(
    session: AsyncSession, keyring: Keyring, text: str, principal: Principal
) -> CodeTrace:
    """The chain of one code; NotFoundError when the caller may not see it."""
    (result,) = await trace_codes(session, keyring, [text], principal)
    if isinstance(result, TraceMiss):
        raise NotFoundError(f"Not found: {result.error}")
    return result


async def _trace_one(session: AsyncSession, text: str, row: Any) -> CodeTrace:
    code: Code = row.Code
    containers: list[Link] = []
    parent_id = code.parent_id
    seen = {code.id}
    while parent_id is not None and parent_id not in seen and len(containers) < MAX_DEPTH:
        seen.add(parent_id)
        parent = (
            await session.execute(
                select(Code.id, Code.serial, Code.kind, Code.state, Code.parent_id).where(
                    Code.id == parent_id
                )
            )
        ).first()
        if parent is None:
            break
        containers.append(Link(parent.serial, parent.kind, parent.state))
        parent_id = parent.parent_id
    contents = int(
        await session.scalar(
            select(func.count()).select_from(Code).where(Code.parent_id == code.id)
        )
        or 0
    )
    order: Order | None = row.Order
    dealer: Dealer | None = row.Dealer
    product: Product = row.Product
    station: Station | None = row.Station
    return CodeTrace(
        query=text[:200],
        serial=code.serial,
        kind=code.kind,
        state=code.state,
        product={"sku": product.sku, "name": product.name, "gtin": product.gtin},
        code_batch=code.batch_id,
        seq=code.seq,
        lot=code.lot,
        work_order=code.work_order,
        station=code.station_id,
        line=station.line if station else None,
        site=station.site if station else None,
        commissioned_at=as_utc(code.commissioned_at),
        containers=containers,
        contents=contents,
        order=None
        if order is None
        else {
            "number": order.number,
            "state": order.state,
            "region": order.region,
            "shipped_at": as_utc(order.shipped_at),
        },
        dealer=None if dealer is None else {"code": dealer.code, "name": dealer.name},
        region=code.region,
        activated_at=as_utc(code.activated_at),
        scan_count=code.scan_count,
        first_scan_at=as_utc(code.first_scan_at),
        last_scan_at=as_utc(code.last_scan_at),
    )


# Lots -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LotRef:
    """A production lot: a product and the lot number its codes were commissioned under."""

    product_id: int
    sku: str
    lot: str

    def where(self) -> tuple[Any, ...]:
        return (Code.product_id == self.product_id, Code.lot == self.lot)


async def lot_ref(session: AsyncSession, sku: str, lot: str) -> LotRef:
    product_id = await session.scalar(select(Product.id).where(Product.sku == sku))
    if product_id is None:
        raise NotFoundError(f"Unknown product {sku[:64]!r}")
    known = await session.scalar(
        select(Lot.id).where(Lot.product_id == product_id, Lot.lot_no == lot)
    ) or await session.scalar(
        select(Code.id).where(Code.product_id == product_id, Code.lot == lot).limit(1)
    )
    if known is None:
        raise NotFoundError(f"Unknown lot {lot[:64]!r} of product {sku[:64]!r}")
    return LotRef(product_id, sku, lot)


async def lots_of_material(
    session: AsyncSession, supplier_lot: str, supplier: str | None = None
) -> list[LotRef]:
    """The lots made with a supplier's lot of a raw material (for a recall upstream)."""
    query = (
        select(Lot.product_id, Product.sku, Lot.lot_no)
        .join(LotMaterial, LotMaterial.lot_id == Lot.id)
        .join(Product, Product.id == Lot.product_id)
        .where(LotMaterial.supplier_lot == supplier_lot)
        .distinct()
        .order_by(Product.sku, Lot.lot_no)
    )
    if supplier is not None:
        query = query.where(LotMaterial.supplier == supplier)
    rows = (await session.execute(query)).all()
    if not rows:
        named = f" of supplier {supplier[:100]!r}" if supplier else ""
        raise NotFoundError(f"No lot used material lot {supplier_lot[:64]!r}{named}")
    return [LotRef(r.product_id, r.sku, r.lot_no) for r in rows]


@dataclass
class Destination:
    """Where codes of a lot went: one order of one dealer, and how many codes."""

    dealer: str
    dealer_name: str
    contact: str | None
    phone: str | None
    order: str
    region: str
    shipped_at: datetime | None
    codes: int


@dataclass
class LotTrace:
    sku: str
    lot: str
    product: str
    details: dict[str, Any] | None  # the lot's master data, when it was registered
    materials: list[dict[str, Any]]
    states: dict[str, int]
    code_batches: list[int]
    destinations: list[Destination]


async def destinations(session: AsyncSession, lots: Sequence[LotRef]) -> list[Destination]:
    """Every dealer and order that codes of ``lots`` shipped under, with counts."""
    out: list[Destination] = []
    for ref in lots:
        rows = await session.execute(
            select(
                Dealer.code,
                Dealer.name,
                Dealer.contact,
                Dealer.phone,
                Order.number,
                Order.region,
                Order.shipped_at,
                func.count(Code.id),
            )
            .join(Order, Order.id == Code.order_id)
            .join(Dealer, Dealer.id == Code.dealer_id)
            .where(*ref.where())
            .group_by(
                Dealer.code,
                Dealer.name,
                Dealer.contact,
                Dealer.phone,
                Order.number,
                Order.region,
                Order.shipped_at,
            )
        )
        out.extend(
            Destination(r[0], r[1], r[2], r[3], r[4], r[5], as_utc(r[6]), int(r[7])) for r in rows
        )
    merged: dict[tuple[str, str], Destination] = {}
    for d in out:
        key = (d.dealer, d.order)
        if key in merged:
            merged[key].codes += d.codes
        else:
            merged[key] = d
    return sorted(merged.values(), key=lambda d: (d.dealer, d.order))


async def trace_lot(session: AsyncSession, ref: LotRef) -> LotTrace:
    """A lot: its master data and materials, its codes by state, and where they went."""
    product_name = await session.scalar(select(Product.name).where(Product.id == ref.product_id))
    lot = await session.scalar(
        select(Lot).where(Lot.product_id == ref.product_id, Lot.lot_no == ref.lot)
    )
    materials: list[dict[str, Any]] = []
    details = None
    if lot is not None:
        details = {
            "produced_on": lot.produced_on.isoformat() if lot.produced_on else None,
            "expires_on": lot.expires_on.isoformat() if lot.expires_on else None,
            "factory": lot.factory,
            "workshop": lot.workshop,
            "line": lot.line,
            "shift": lot.shift,
            "operator": lot.operator,
        }
        for m in await session.scalars(
            select(LotMaterial).where(LotMaterial.lot_id == lot.id).order_by(LotMaterial.id)
        ):
            materials.append(
                {
                    "material": m.material,
                    "supplier": m.supplier,
                    "supplier_lot": m.supplier_lot,
                    "quantity": m.quantity,
                }
            )
    states = {
        state: int(n)
        for state, n in await session.execute(
            select(Code.state, func.count()).where(*ref.where()).group_by(Code.state)
        )
    }
    batches = sorted(await session.scalars(select(Code.batch_id).where(*ref.where()).distinct()))
    return LotTrace(
        sku=ref.sku,
        lot=ref.lot,
        product=product_name or "",
        details=details,
        materials=materials,
        states=dict(sorted(states.items())),
        code_batches=list(batches),
        destinations=await destinations(session, [ref]),
    )


ITEM_COLUMNS = (
    "serial",
    "kind",
    "state",
    "container",
    "order",
    "dealer",
    "region",
    "commissioned_at",
    "activated_at",
    "scan_count",
)


async def lot_items(
    session: AsyncSession, ref: LotRef, chunk: int = 5000
) -> AsyncIterator[list[tuple[str, ...]]]:
    """Every code of a lot and where it went, in chunks (never the whole lot in memory)."""
    parent = aliased(Code)
    after = 0
    while True:
        rows = (
            await session.execute(
                select(
                    Code.id,
                    Code.serial,
                    Code.kind,
                    Code.state,
                    parent.serial,
                    Order.number,
                    Dealer.code,
                    Code.region,
                    Code.commissioned_at,
                    Code.activated_at,
                    Code.scan_count,
                )
                .outerjoin(parent, parent.id == Code.parent_id)
                .outerjoin(Order, Order.id == Code.order_id)
                .outerjoin(Dealer, Dealer.id == Code.dealer_id)
                .where(*ref.where(), Code.id > after)
                .order_by(Code.id)
                .limit(chunk)
            )
        ).all()
        if not rows:
            return
        after = rows[-1][0]
        yield [
            (
                r[1],
                r[2],
                r[3],
                r[4] or "",
                r[5] or "",
                r[6] or "",
                r[7] or "",
                _iso(r[8]),
                _iso(r[9]),
                str(r[10]),
            )
            for r in rows
        ]


def _iso(moment: datetime | None) -> str:
    utc = as_utc(moment)
    return "" if utc is None else utc.isoformat(timespec="seconds")


__all__ = [
    "MAX_CODES",
    "CodeTrace",
    "Destination",
    "LotRef",
    "LotTrace",
    "TraceMiss",
]

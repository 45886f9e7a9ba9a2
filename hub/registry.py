"""Master data the other records point at: products, production lots with their materials and
inspection report, stations, dealers with their authorised regions, warehouses, stores."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from hub import regions
from hub.errors import ConflictError, InvalidRequestError, NotFoundError
from hub.models import (
    Dealer,
    DealerRegion,
    Document,
    Lot,
    LotMaterial,
    Product,
    Station,
    Store,
    Warehouse,
)
from hub.timeutil import utcnow
from protocols.codes import normalize_gtin
from protocols.errors import CodeFormatError, TopicError
from protocols.topics import check_station_id

Row = TypeVar("Row", Product, Station, Dealer, Lot, Warehouse, Store)
MAX_REPORT_BYTES = 10 * 1024 * 1024
REPORT_TYPES = ("application/pdf", "image/png", "image/jpeg")


async def _add_unique(session: AsyncSession, row: Row, conflict: str) -> Row:
    """Insert ``row`` in a savepoint; a unique-key clash becomes ConflictError(conflict)
    and leaves the caller's transaction usable."""
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise ConflictError(conflict) from None
    return row


async def create_product(
    session: AsyncSession,
    sku: str,
    name: str,
    gtin: str | None,
    *,
    name_en: str | None = None,
    spec: str | None = None,
    image_url: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> Product:
    if not sku or len(sku) > 64:
        raise InvalidRequestError(f"Invalid SKU {sku!r}: expected 1-64 characters")
    if gtin is not None:
        try:
            gtin = normalize_gtin(gtin)
        except CodeFormatError as exc:
            raise InvalidRequestError(str(exc)) from None
    product = Product(
        sku=sku,
        name=name,
        gtin=gtin,
        name_en=name_en,
        spec=spec,
        image_url=image_url,
        attributes=attributes or None,
        created_at=utcnow(),
    )
    return await _add_unique(session, product, f"Product {sku!r} or GTIN {gtin} already exists")


async def list_rows(session: AsyncSession, model: type[Row], limit: int, offset: int) -> list[Row]:
    """A page of ``model`` rows in the order they were added."""
    rows = await session.scalars(select(model).order_by(model.id).limit(limit).offset(offset))
    return list(rows)


async def count_rows(session: AsyncSession, model: type[Any]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def product_by_sku(session: AsyncSession, sku: str) -> Product:
    product = await session.scalar(select(Product).where(Product.sku == sku))
    if product is None:
        raise NotFoundError(f"Unknown product {sku!r}")
    return product


async def create_station(
    session: AsyncSession, station_id: str, line: str, site: str | None = None
) -> Station:
    try:
        check_station_id(station_id)
    except TopicError as exc:
        raise InvalidRequestError(str(exc)) from None
    station = Station(id=station_id, line=line, site=site, created_at=utcnow())
    return await _add_unique(session, station, f"Station {station_id!r} already exists")


async def station_by_id(session: AsyncSession, station_id: str) -> Station:
    station = await session.get(Station, station_id)
    if station is None:
        raise NotFoundError(f"Unknown station {station_id!r}")
    return station


def check_region_codes(codes: Iterable[str]) -> list[str]:
    """Division codes in their 6-digit form, each one known (hub.regions); duplicates once."""
    out: list[str] = []
    for code in codes:
        try:
            normal = regions.region(code).code
        except (regions.RegionCodeError, regions.UnknownRegionError) as exc:
            raise InvalidRequestError(str(exc)) from None
        if normal not in out:
            out.append(normal)
    return out


async def create_dealer(
    session: AsyncSession,
    code: str,
    name: str,
    region: str,
    *,
    authorised: Sequence[str] = (),
    contact: str | None = None,
    phone: str | None = None,
) -> Dealer:
    """A dealer; ``authorised`` are the division codes (province, city or district) it may
    sell in."""
    if not code or len(code) > 64:
        raise InvalidRequestError(f"Invalid dealer code {code!r}: expected 1-64 characters")
    codes = check_region_codes(authorised)
    dealer = Dealer(
        code=code, name=name, region=region, contact=contact, phone=phone, created_at=utcnow()
    )
    dealer = await _add_unique(session, dealer, f"Dealer {code!r} already exists")
    await session.flush()
    session.add_all(DealerRegion(dealer_id=dealer.id, region_code=c) for c in codes)
    await session.flush()
    return dealer


async def set_dealer_regions(
    session: AsyncSession, dealer: Dealer, authorised: Sequence[str]
) -> None:
    codes = check_region_codes(authorised)
    await session.execute(delete(DealerRegion).where(DealerRegion.dealer_id == dealer.id))
    session.add_all(DealerRegion(dealer_id=dealer.id, region_code=c) for c in codes)
    await session.flush()


async def authorised_regions(
    session: AsyncSession, dealer_ids: Sequence[int]
) -> dict[int, list[str]]:
    """Each dealer's authorised division codes."""
    out: dict[int, list[str]] = {i: [] for i in dealer_ids}
    if dealer_ids:
        rows = await session.execute(
            select(DealerRegion.dealer_id, DealerRegion.region_code)
            .where(DealerRegion.dealer_id.in_(dealer_ids))
            .order_by(DealerRegion.region_code)
        )
        for dealer_id, code in rows:
            out[dealer_id].append(code)
    return out


async def is_authorised(session: AsyncSession, dealer_id: int, region_code: str) -> bool:
    """Whether a dealer may sell in the division ``region_code`` (inside one of its
    authorised divisions)."""
    codes = (await authorised_regions(session, [dealer_id]))[dealer_id]
    return regions.within(region_code, codes)


@dataclass(frozen=True)
class MaterialSpec:
    material: str
    supplier: str
    supplier_lot: str
    quantity: str | None = None


async def create_lot(
    session: AsyncSession,
    sku: str,
    lot_no: str,
    *,
    produced_on: date | None = None,
    expires_on: date | None = None,
    factory: str | None = None,
    workshop: str | None = None,
    line: str | None = None,
    shift: str | None = None,
    operator: str | None = None,
    materials: Sequence[MaterialSpec] = (),
) -> Lot:
    """A production lot (生产批次) of a product with the raw materials that went into it."""
    if not lot_no or len(lot_no) > 64:
        raise InvalidRequestError(f"Invalid lot number {lot_no!r}: expected 1-64 characters")
    if produced_on and expires_on and expires_on < produced_on:
        raise InvalidRequestError(
            f"Lot {lot_no!r} expires on {expires_on}, before it was produced ({produced_on}): "
            "expected an expiry date on or after the production date"
        )
    product = await product_by_sku(session, sku)
    lot = Lot(
        product_id=product.id,
        lot_no=lot_no,
        produced_on=produced_on,
        expires_on=expires_on,
        factory=factory,
        workshop=workshop,
        line=line,
        shift=shift,
        operator=operator,
        created_at=utcnow(),
    )
    lot = await _add_unique(session, lot, f"Lot {lot_no!r} of product {sku!r} already exists")
    await session.flush()
    session.add_all(
        LotMaterial(
            lot_id=lot.id,
            material=m.material,
            supplier=m.supplier,
            supplier_lot=m.supplier_lot,
            quantity=m.quantity,
        )
        for m in materials
    )
    await session.flush()
    return lot


async def lot_by_id(session: AsyncSession, lot_id: int) -> Lot:
    lot = await session.get(Lot, lot_id)
    if lot is None:
        raise NotFoundError(f"Unknown lot {lot_id}")
    return lot


async def lot_materials(
    session: AsyncSession, lot_ids: Sequence[int]
) -> dict[int, list[LotMaterial]]:
    out: dict[int, list[LotMaterial]] = {i: [] for i in lot_ids}
    if lot_ids:
        rows = await session.scalars(
            select(LotMaterial).where(LotMaterial.lot_id.in_(lot_ids)).order_by(LotMaterial.id)
        )
        for m in rows:
            out[m.lot_id].append(m)
    return out


async def set_lot_report(
    session: AsyncSession, lot_id: int, filename: str, content_type: str, data: bytes
) -> Document:
    """Store the inspection report file of a lot (replacing an earlier one)."""
    lot = await lot_by_id(session, lot_id)
    if content_type not in REPORT_TYPES:
        raise InvalidRequestError(
            f"Inspection report of type {content_type[:60]!r}: expected one of "
            f"{', '.join(REPORT_TYPES)}"
        )
    if not data or len(data) > MAX_REPORT_BYTES:
        raise InvalidRequestError(
            f"Inspection report of {len(data)} bytes: expected 1..{MAX_REPORT_BYTES} bytes"
        )
    document = Document(
        filename=filename[:200] or "report",
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
        created_at=utcnow(),
    )
    session.add(document)
    await session.flush()
    lot.inspection_report_id = document.id
    await session.flush()
    return document


async def lot_report(session: AsyncSession, lot_id: int) -> Document:
    lot = await lot_by_id(session, lot_id)
    if lot.inspection_report_id is None:
        raise NotFoundError(f"Lot {lot_id} has no inspection report")
    document = await session.scalar(
        select(Document)
        .where(Document.id == lot.inspection_report_id)
        .options(undefer(Document.data))
    )
    assert document is not None
    return document


async def create_warehouse(
    session: AsyncSession,
    code: str,
    name: str,
    region_code: str | None = None,
    address: str | None = None,
) -> Warehouse:
    if not code or len(code) > 64:
        raise InvalidRequestError(f"Invalid warehouse code {code!r}: expected 1-64 characters")
    region = check_region_codes([region_code])[0] if region_code else None
    warehouse = Warehouse(
        code=code, name=name, region_code=region, address=address, created_at=utcnow()
    )
    return await _add_unique(session, warehouse, f"Warehouse {code!r} already exists")


async def create_store(
    session: AsyncSession,
    code: str,
    name: str,
    dealer_code: str | None = None,
    region_code: str | None = None,
    address: str | None = None,
) -> Store:
    if not code or len(code) > 64:
        raise InvalidRequestError(f"Invalid store code {code!r}: expected 1-64 characters")
    region = check_region_codes([region_code])[0] if region_code else None
    dealer = await dealer_by_code(session, dealer_code) if dealer_code else None
    store = Store(
        code=code,
        name=name,
        dealer_id=dealer.id if dealer else None,
        region_code=region,
        address=address,
        created_at=utcnow(),
    )
    return await _add_unique(session, store, f"Store {code!r} already exists")


async def dealer_by_code(session: AsyncSession, code: str) -> Dealer:
    dealer = await session.scalar(select(Dealer).where(Dealer.code == code))
    if dealer is None:
        raise NotFoundError(f"Unknown dealer {code!r}")
    return dealer

"""Products, stations and dealers: the master data other records point at."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import ConflictError, InvalidRequestError, NotFoundError
from hub.models import Dealer, Product, Station
from hub.timeutil import utcnow
from protocols.codes import normalize_gtin
from protocols.errors import CodeFormatError, TopicError
from protocols.topics import check_station_id

Row = TypeVar("Row", Product, Station, Dealer)


async def _add_unique(session: AsyncSession, row: Row, conflict: str) -> Row:
    """Insert ``row`` in a savepoint; a unique-key clash becomes ConflictError(conflict)
    and leaves the caller's transaction usable."""
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise ConflictError(conflict) from None
    return row


async def create_product(session: AsyncSession, sku: str, name: str, gtin: str | None) -> Product:
    if not sku or len(sku) > 64:
        raise InvalidRequestError(f"Invalid SKU {sku!r}: expected 1-64 characters")
    if gtin is not None:
        try:
            gtin = normalize_gtin(gtin)
        except CodeFormatError as exc:
            raise InvalidRequestError(str(exc)) from None
    product = Product(sku=sku, name=name, gtin=gtin, created_at=utcnow())
    return await _add_unique(session, product, f"Product {sku!r} or GTIN {gtin} already exists")


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


async def create_dealer(session: AsyncSession, code: str, name: str, region: str) -> Dealer:
    if not code or len(code) > 64:
        raise InvalidRequestError(f"Invalid dealer code {code!r}: expected 1-64 characters")
    dealer = Dealer(code=code, name=name, region=region, created_at=utcnow())
    return await _add_unique(session, dealer, f"Dealer {code!r} already exists")


async def dealer_by_code(session: AsyncSession, code: str) -> Dealer:
    dealer = await session.scalar(select(Dealer).where(Dealer.code == code))
    if dealer is None:
        raise NotFoundError(f"Unknown dealer {code!r}")
    return dealer

"""Master data: products, production lots with their materials, stations, dealers with their
authorised regions, warehouses, stores, and stored documents (inspection reports)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))  # Chinese: the name on the label
    name_en: Mapped[str | None] = mapped_column(String(200))
    gtin: Mapped[str | None] = mapped_column(String(14), unique=True)
    spec: Mapped[str | None] = mapped_column(String(200), comment="规格, e.g. 500ml x 12")
    image_url: Mapped[str | None] = mapped_column(String(500))
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]


class Document(Base):
    """A stored file (an inspection report); the bytes live in the database so that a backup
    of the database is a backup of everything."""

    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime]


class Lot(Base):
    """A production batch (生产批次) of one product; codes name it by ``lot_no``."""

    __tablename__ = "lots"
    __table_args__ = (UniqueConstraint("product_id", "lot_no"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    lot_no: Mapped[str] = mapped_column(String(64))
    produced_on: Mapped[date | None]
    expires_on: Mapped[date | None]
    factory: Mapped[str | None] = mapped_column(String(100))
    workshop: Mapped[str | None] = mapped_column(String(100))
    line: Mapped[str | None] = mapped_column(String(64))
    shift: Mapped[str | None] = mapped_column(String(32))
    operator: Mapped[str | None] = mapped_column(String(100))
    inspection_report_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    created_at: Mapped[datetime]


class LotMaterial(Base):
    """A raw material that went into a lot, with the supplier's own lot (for recalls)."""

    __tablename__ = "lot_materials"
    __table_args__ = (Index("ix_lot_materials_supplier_lot", "supplier_lot"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"), index=True)
    material: Mapped[str] = mapped_column(String(200))
    supplier: Mapped[str] = mapped_column(String(200))
    supplier_lot: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[str | None] = mapped_column(String(64))


class Station(Base):
    __tablename__ = "stations"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line: Mapped[str] = mapped_column(String(64))
    site: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    last_seen_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    mqtt_password_hash: Mapped[str | None] = mapped_column(
        String(200), comment="broker password (mosquitto $7$ hash); None: no credentials issued"
    )
    work_order: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, comment="the work order last sent; every command carries it"
    )


class Dealer(Base):
    __tablename__ = "dealers"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(100))  # default destination of its orders
    contact: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]


class DealerRegion(Base):
    """A division (GB/T 2260 code, hub.regions) a dealer is authorised to sell in."""

    __tablename__ = "dealer_regions"
    dealer_id: Mapped[int] = mapped_column(
        ForeignKey("dealers.id", ondelete="CASCADE"), primary_key=True
    )
    region_code: Mapped[str] = mapped_column(String(6), primary_key=True)


class Warehouse(Base):
    __tablename__ = "warehouses"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str | None] = mapped_column(String(6))
    address: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]


class Store(Base):
    __tablename__ = "stores"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    dealer_id: Mapped[int | None] = mapped_column(ForeignKey("dealers.id"), index=True)
    region_code: Mapped[str | None] = mapped_column(String(6))
    address: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]

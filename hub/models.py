"""SQLAlchemy models: the code table is the current-state projection of the event log.

Schema changes go through alembic (hub/migrations); keep this module and the newest
migration in step (tests/hub/test_migrations.py compares them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments INTEGER PRIMARY KEY, so big ids are BIGINT elsewhere only.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
    }


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    gtin: Mapped[str | None] = mapped_column(String(14), unique=True)
    created_at: Mapped[datetime]


class CodeKeyCounter(Base):
    """Next free counter of each code key; batches reserve ranges with one atomic UPDATE."""

    __tablename__ = "code_key_counters"
    key_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    next_counter: Mapped[int] = mapped_column(BigInteger, default=0)


class CodeBatch(Base):
    __tablename__ = "code_batches"
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    kind: Mapped[str] = mapped_column(String(10))
    key_id: Mapped[int]
    counter_start: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int]
    with_pin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class Station(Base):
    __tablename__ = "stations"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line: Mapped[str] = mapped_column(String(64))
    site: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    last_seen_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Dealer(Base):
    __tablename__ = "dealers"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    dealer_id: Mapped[int] = mapped_column(ForeignKey("dealers.id"))
    region: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime]
    shipped_at: Mapped[datetime | None]


class Code(Base):
    __tablename__ = "codes"
    __table_args__ = (
        UniqueConstraint("batch_id", "seq"),
        Index("ix_codes_state", "state"),
        Index("ix_codes_parent_id", "parent_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    serial: Mapped[str] = mapped_column(String(20), unique=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("code_batches.id"))
    seq: Mapped[int] = mapped_column(comment="卡序号: position inside the generation batch, from 1")
    kind: Mapped[str] = mapped_column(String(10))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    state: Mapped[str] = mapped_column(String(16))
    lot: Mapped[str | None] = mapped_column(String(64))
    work_order: Mapped[str | None] = mapped_column(String(64))
    station_id: Mapped[str | None] = mapped_column(ForeignKey("stations.id"))
    commissioned_at: Mapped[datetime | None]
    parent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("codes.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    dealer_id: Mapped[int | None] = mapped_column(ForeignKey("dealers.id"))
    region: Mapped[str | None] = mapped_column(String(100))
    activated_at: Mapped[datetime | None]
    scan_count: Mapped[int] = mapped_column(default=0)
    first_scan_at: Mapped[datetime | None]
    last_scan_at: Mapped[datetime | None]


class Event(Base):
    """Append-only event log (EPCIS-shaped). The id is assigned where the event happened."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_occurred_at", "occurred_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(80), comment="station:<id>, api:<role>, ...")
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16), comment="applied | refused")
    reason: Mapped[str | None] = mapped_column(String(300))
    payload: Mapped[dict[str, Any]]


class ScanLog(Base):
    """Every consumer verification, whatever its verdict."""

    __tablename__ = "scan_log"
    __table_args__ = (Index("ix_scan_log_code_id", "code_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    raw: Mapped[str] = mapped_column(String(512))
    serial: Mapped[str | None] = mapped_column(String(20))
    code_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("codes.id"))
    verdict: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(300))
    client: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))


class DeadLetter(Base):
    """An MQTT message that could not be applied, kept with the reason for an operator."""

    __tablename__ = "dead_letters"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[datetime]
    topic: Mapped[str] = mapped_column(String(300))
    station_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    payload_size: Mapped[int]

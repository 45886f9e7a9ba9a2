"""Orders that codes ship under: lines to fill, scans a PDA uploaded, and the claims that
reserve a code for one order until it ships (so two devices cannot ship one case)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, BigId


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    dealer_id: Mapped[int] = mapped_column(ForeignKey("dealers.id"))
    region: Mapped[str] = mapped_column(String(100))
    # open | in_progress | complete | short_shipped | cancelled (hub.domain.orders)
    state: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime]
    shipped_at: Mapped[datetime | None]
    notes: Mapped[str | None] = mapped_column(Text)
    assigned_to: Mapped[str | None] = mapped_column(
        String(64), comment="warehouse user or device id the order is assigned to"
    )
    short_reason: Mapped[str | None] = mapped_column(String(300))
    backorder_of: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "product_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int] = mapped_column(comment="items (units) to ship")


class OrderScan(Base):
    """One scan a PDA uploaded; its id is chosen on the device, so a re-upload is a no-op."""

    __tablename__ = "order_scans"
    __table_args__ = (Index("ix_order_scans_order_id", "order_id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    device: Mapped[str] = mapped_column(String(64))
    raw: Mapped[str] = mapped_column(String(300))
    code_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("codes.id"))
    result: Mapped[str] = mapped_column(String(24), comment="ok or the refusal (ScanResult)")
    reason: Mapped[str | None] = mapped_column(String(300))
    items: Mapped[int] = mapped_column(default=0, comment="items this scan counts")
    scanned_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]
    removed_reason: Mapped[str | None] = mapped_column(String(300))


class OrderClaim(Base):
    """A code reserved for an order by an accepted scan (a case claims its contents too).
    The primary key makes the claim exclusive: of two devices, the first insert wins."""

    __tablename__ = "order_claims"
    __table_args__ = (
        Index("ix_order_claims_order_id", "order_id"),
        Index("ix_order_claims_scan_id", "scan_id"),
    )
    code_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("codes.id"), primary_key=True, autoincrement=False
    )
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    scan_id: Mapped[str] = mapped_column(String(36), ForeignKey("order_scans.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    kind: Mapped[str] = mapped_column(String(10))

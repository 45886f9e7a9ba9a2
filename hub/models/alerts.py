"""Alerts for the brand: copied codes, leaked factory codes, serial enumeration."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, BigId


class Alert(Base):
    """One alert per code and signal (or per client for enumeration): a repeat of the same
    signal bumps ``count`` and ``last_at`` instead of adding a row, so several hub processes
    raise it once."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_dealer_id", "dealer_id"),
        Index("ix_alerts_last_at", "last_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True, comment="<kind>:<code id or client>")
    kind: Mapped[str] = mapped_column(String(32), comment="the signal's name")
    code_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("codes.id"))
    serial: Mapped[str | None] = mapped_column(String(20))
    client: Mapped[str | None] = mapped_column(String(48), comment="the scanner's network")
    dealer_id: Mapped[int | None] = mapped_column(ForeignKey("dealers.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    region: Mapped[str | None] = mapped_column(String(100), comment="region the code shipped to")
    evidence: Mapped[dict[str, Any]]
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    count: Mapped[int] = mapped_column(default=1)

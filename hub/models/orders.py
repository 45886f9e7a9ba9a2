"""Orders that codes ship under (the PDA issue extends them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    dealer_id: Mapped[int] = mapped_column(ForeignKey("dealers.id"))
    region: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime]
    shipped_at: Mapped[datetime | None]

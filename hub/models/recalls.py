"""Recalls (召回): what was recalled, why, by whom, and what it did."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base


class Recall(Base):
    __tablename__ = "recalls"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(80), comment="user:<name> or token:<fingerprint>")
    reason: Mapped[str] = mapped_column(String(500), comment="shown to the brand's staff")
    selection: Mapped[dict[str, Any]] = mapped_column(comment="the lots or material lot recalled")
    lots: Mapped[list[Any]] = mapped_column(JSON, comment="[[sku, lot], ...] the selection reached")
    moved: Mapped[int] = mapped_column(comment="codes moved to recalled")
    refused: Mapped[dict[str, Any]] = mapped_column(comment="codes left alone, by reason")

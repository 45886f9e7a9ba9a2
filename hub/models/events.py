"""The append-only event log, the consumer scan log and dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, BigId


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
    verdict: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(300))
    client: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))
    # Who and where, for the copied-code signals (hub.domain.signals).
    device: Mapped[str | None] = mapped_column(String(32), comment="the page's device cookie")
    network: Mapped[str | None] = mapped_column(String(48), comment="IPv4 /24 or IPv6 /48")
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    place_region: Mapped[str | None] = mapped_column(String(12), comment="division code")
    place_source: Mapped[str | None] = mapped_column(String(8), comment="gps, picked or ip")
    denied_earlier: Mapped[bool | None] = mapped_column(
        Boolean, comment='answered no to "did you scan this before?"'
    )
    signals: Mapped[str | None] = mapped_column(
        String(200), comment="names of the signals this scan raised, comma-separated"
    )


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

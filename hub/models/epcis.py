"""EPCIS 2.0: the events partners can query (captured ones and hub events written as EPCIS),
the identifiers each names, and capture jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, BigId


class EpcisEvent(Base):
    """One EPCIS event, stored with hub codes as markers (rendered as EPC URN or Digital Link
    when queried). Every row is also in the hub's event log (``hub_event_id``)."""

    __tablename__ = "epcis_events"
    __table_args__ = (Index("ix_epcis_events_event_time", "event_time", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(
        String(512), unique=True, comment="eventID as captured, or the content hash"
    )
    hub_event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    event_time: Mapped[datetime]
    record_time: Mapped[datetime]
    biz_step: Mapped[str | None] = mapped_column(String(200))
    digest: Mapped[str] = mapped_column(String(64), comment="SHA-256 of the event's contents")
    capture_id: Mapped[str | None] = mapped_column(String(36))
    document: Mapped[dict[str, Any]]


class EpcisEventEpc(Base):
    """An identifier an EPCIS event names, for MATCH_ queries: the serial of a hub code, or
    the URI of a foreign one."""

    __tablename__ = "epcis_event_epcs"
    __table_args__ = (
        Index("ix_epcis_event_epcs_key", "key"),
        Index("ix_epcis_event_epcs_gtin", "gtin"),
        Index("ix_epcis_event_epcs_event", "event"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event: Mapped[int] = mapped_column(BigId, ForeignKey("epcis_events.id"))
    role: Mapped[str] = mapped_column(String(8), comment="epc, parent, child, input, output")
    key: Mapped[str] = mapped_column(String(512))
    gtin: Mapped[str | None] = mapped_column(String(14))


class EpcisCapture(Base):
    """A capture job (EPCIS 2.0 ``/capture/{captureID}``) and what became of each event."""

    __tablename__ = "epcis_captures"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    running: Mapped[bool]
    success: Mapped[bool]
    error_behaviour: Mapped[str] = mapped_column(String(8), comment="rollback | proceed")
    source: Mapped[str] = mapped_column(String(80))
    event_count: Mapped[int]
    applied: Mapped[int]
    duplicates: Mapped[int]
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)

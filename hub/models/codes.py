"""Code keys' counters, generation batches and the code table (current state of each code)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, BigId


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
    # 卡序号 printed for a human: prefix + (seq_start + seq - 1), zero-padded to seq_width.
    seq_prefix: Mapped[str | None] = mapped_column(String(16))
    seq_start: Mapped[int] = mapped_column(BigInteger, server_default="1")
    seq_width: Mapped[int] = mapped_column(server_default="0")
    # Pallets may carry an SSCC: extension digit + GS1 company prefix, serial reference
    # counted from sscc_start.
    sscc_prefix: Mapped[str | None] = mapped_column(String(17))
    sscc_start: Mapped[int | None] = mapped_column(BigInteger)
    # The generation job: queued -> running -> done | cancelled | failed; ``generated``
    # codes exist (seq 1..generated), written in short transactions, so a restarted hub
    # resumes at generated + 1.
    status: Mapped[str] = mapped_column(String(16), server_default="done")
    generated: Mapped[int] = mapped_column(BigInteger, server_default="0")
    error: Mapped[str | None] = mapped_column(String(500))
    owner: Mapped[str | None] = mapped_column(String(64), comment="process running the job")
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class Code(Base):
    __tablename__ = "codes"
    __table_args__ = (
        UniqueConstraint("batch_id", "seq"),
        Index("ix_codes_state", "state"),
        Index("ix_codes_parent_id", "parent_id"),
        Index("ix_codes_sscc", "sscc", unique=True),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    serial: Mapped[str] = mapped_column(String(20), unique=True)
    sscc: Mapped[str | None] = mapped_column(String(18))
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

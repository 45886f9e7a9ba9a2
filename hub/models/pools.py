"""Code pools: ranges of a generation batch (by 卡序号 seq) allocated to a production line.

A batch with pools may be commissioned only inside them, and only by a station of the line
that holds the range; a batch without pools is not restricted (hub.pools)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base


class CodePool(Base):
    __tablename__ = "code_pools"
    __table_args__ = (Index("code_pools_batch", "batch_id", "first_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("code_batches.id"))
    first_seq: Mapped[int]
    last_seq: Mapped[int]
    line: Mapped[str] = mapped_column(String(64), comment="production line (stations.line)")
    work_order: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]

"""A one-way fingerprint of each code key the database has been used with."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base


class CodeKeyFingerprint(Base):
    __tablename__ = "code_key_fingerprints"
    key_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    fingerprint: Mapped[str] = mapped_column(String(64))
    first_used_at: Mapped[datetime]

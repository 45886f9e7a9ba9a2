"""Users of the back office and the PDA, their login tokens, and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, BigId


class User(Base):
    """A person who logs in. Scoped roles carry the record they are scoped to: a dealer
    user its dealer, a store clerk its store, a warehouse user (optionally) its warehouse."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200), comment="argon2id, PHC string")
    role: Mapped[str] = mapped_column(String(16))
    dealer_id: Mapped[int | None] = mapped_column(ForeignKey("dealers.id"))
    store_id: Mapped[int | None] = mapped_column(comment="the store a store clerk works for")
    warehouse_id: Mapped[int | None] = mapped_column(comment="the warehouse a PDA user works in")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class LoginToken(Base):
    """A bearer token handed out by ``POST /api/v1/login``; only its SHA-256 is stored."""

    __tablename__ = "login_tokens"
    __table_args__ = (Index("ix_login_tokens_user_id", "user_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Who did what, when, from where: every admin action and every login attempt."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(80), comment="user:<name> or token:<fingerprint>")
    user_id: Mapped[int | None] = mapped_column(comment="no foreign key: entries outlive users")
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(120), comment="login, or METHOD route")
    target: Mapped[str | None] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(16), comment="ok, refused or an HTTP status")
    client: Mapped[str | None] = mapped_column(String(64), comment="remote address")
    details: Mapped[dict[str, Any] | None]

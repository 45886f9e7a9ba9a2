"""The audit log: who did what, when, from where. Written for every login attempt and every
state-changing request of the back office; kept for ``audit_retention_days``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.domain.access import Principal
from hub.models import AuditEntry
from hub.timeutil import as_utc, utcnow


def entry(
    *,
    actor: str,
    action: str,
    outcome: str,
    principal: Principal | None = None,
    target: str | None = None,
    client: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """An audit row (the caller adds it to a session), every text cut to its column."""
    return AuditEntry(
        at=utcnow(),
        actor=actor[:80],
        user_id=principal.user_id if principal else None,
        role=principal.role if principal else None,
        action=action[:120],
        target=target[:300] if target else None,
        outcome=outcome[:16],
        client=client[:64] if client else None,
        details=details,
    )


@dataclass(frozen=True)
class AuditView:
    at: datetime
    actor: str
    role: str | None
    action: str
    target: str | None
    outcome: str
    client: str | None
    details: dict[str, Any] | None


async def entries(
    session: AsyncSession,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[tuple[int, AuditView]]:
    """Newest first."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    rows = (await session.scalars(query)).all()
    return [
        (
            row.id,
            AuditView(
                at=as_utc(row.at) or row.at,
                actor=row.actor,
                role=row.role,
                action=row.action,
                target=row.target,
                outcome=row.outcome,
                client=row.client,
                details=row.details,
            ),
        )
        for row in rows
    ]


async def cleanup(session: AsyncSession, retention_days: int, now: datetime | None = None) -> int:
    """Delete entries older than the retention (caller commits); returns how many."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    result = await session.execute(delete(AuditEntry).where(AuditEntry.at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)

"""Recall (召回) by production lot or by a supplier's material lot.

Every code of the selected lots goes to ``recalled`` through the lifecycle gate (codes it
may not move, e.g. never commissioned or already void, are counted by the gate's reason);
the recall is recorded with who, when and why, as a recall row and a ``recalling`` event;
the dealers and orders to contact come from where the codes shipped. Consumers scanning a
recalled code see the recall notice (verdict ``recalled``).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import metrics
from hub.domain import gate
from hub.domain.access import Principal
from hub.domain.lifecycle import Step
from hub.errors import NotFoundError
from hub.models import Code, Event, Product, Recall
from hub.timeutil import as_utc, utcnow
from hub.trace import Destination, LotRef, destinations

_CHUNK = 5000


@dataclass
class RecallResult:
    id: int
    created_at: datetime
    actor: str
    reason: str
    selection: dict[str, Any]
    lots: list[tuple[str, str]]
    moved: int
    refused: dict[str, int]


async def recall(
    session: AsyncSession,
    lots: Sequence[LotRef],
    reason: str,
    selection: dict[str, Any],
    principal: Principal,
) -> RecallResult:
    """Recall every code of ``lots`` (caller commits)."""
    now = utcnow()
    moved = 0
    refused: Counter[str] = Counter()
    for ref in lots:
        after = 0
        while True:
            ids = list(
                await session.scalars(
                    select(Code.id)
                    .where(*ref.where(), Code.id > after)
                    .order_by(Code.id)
                    .limit(_CHUNK)
                )
            )
            if not ids:
                break
            after = ids[-1]
            result = await gate.move(session, Step.RECALLING, ids)
            moved += len(result.moved)
            refused.update(result.refused.values())
    row = Recall(
        created_at=now,
        actor=principal.subject[:80],
        reason=reason[:500],
        selection=selection,
        lots=[[ref.sku, ref.lot] for ref in lots],
        moved=moved,
        refused=dict(refused),
    )
    session.add(row)
    await session.flush()
    session.add(
        Event(
            id=str(uuid.uuid4()),
            type=Step.RECALLING.value,
            source=principal.event_source,
            occurred_at=now,
            recorded_at=now,
            outcome="applied" if moved else "refused",
            reason=None if moved else "no code of the selection could be recalled",
            payload={
                "recall_id": row.id,
                "reason": reason[:500],
                "selection": selection,
                "lots": row.lots,
                "moved": moved,
                "refused": dict(refused),
            },
        )
    )
    metrics.RECALLED.inc(moved)
    return _result(row)


def _result(row: Recall) -> RecallResult:
    return RecallResult(
        id=row.id,
        created_at=as_utc(row.created_at) or row.created_at,
        actor=row.actor,
        reason=row.reason,
        selection=row.selection,
        lots=[(sku, lot) for sku, lot in row.lots],
        moved=row.moved,
        refused=dict(row.refused),
    )


async def get_recall(session: AsyncSession, recall_id: int) -> RecallResult:
    row = await session.get(Recall, recall_id)
    if row is None:
        raise NotFoundError(f"Unknown recall {recall_id}")
    return _result(row)


async def list_recalls(session: AsyncSession) -> list[RecallResult]:
    rows = await session.scalars(select(Recall).order_by(Recall.id.desc()))
    return [_result(row) for row in rows]


async def contacts(session: AsyncSession, recall_id: int) -> list[Destination]:
    """The dealers and orders to contact about a recall: where its lots' codes shipped."""
    row = await get_recall(session, recall_id)
    refs = []
    for sku, lot in row.lots:
        product_id = await session.scalar(select(Product.id).where(Product.sku == sku))
        if product_id is not None:
            refs.append(LotRef(product_id, sku, lot))
    return await destinations(session, refs)


CONTACT_COLUMNS = (
    "dealer",
    "dealer_name",
    "contact",
    "phone",
    "order",
    "region",
    "shipped_at",
    "codes",
)


def contact_rows(found: Sequence[Destination]) -> list[tuple[str, ...]]:
    return [
        (
            d.dealer,
            d.dealer_name,
            d.contact or "",
            d.phone or "",
            d.order,
            d.region,
            d.shipped_at.isoformat(timespec="seconds") if d.shipped_at else "",
            str(d.codes),
        )
        for d in found
    ]

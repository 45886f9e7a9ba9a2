"""The lifecycle gate: the one function through which every state change of a code is
written, by any caller (ingest, shipping, recall, void, receiving, EPCIS capture).

It writes with a conditional UPDATE (``WHERE state IN (allowed sources)``) and reads back
which rows it moved, so two hub processes racing on PostgreSQL can never overwrite a
``shipped`` code with ``packed``: the loser's UPDATE matches nothing and it is told why.
The rules themselves live in ``hub.domain.lifecycle``; this module only applies them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.domain.lifecycle import State, Step, sources, target, why_not
from hub.models import Code

_CHUNK = 500


@dataclass
class Moved:
    """What one gate call did: the codes it moved, and why it left the others alone."""

    moved: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.refused


async def move(
    session: AsyncSession,
    step: Step,
    code_ids: Collection[int],
    values: Mapping[str, Any] | None = None,
    *,
    only_from: Collection[State] | None = None,
) -> Moved:
    """Apply ``step`` to the codes ``code_ids`` (caller commits), setting ``values`` too.

    ``only_from`` narrows the allowed source states further (a caller that read a code as
    ``packed`` and planned for that). Codes listed twice are moved once.
    """
    new_state = target(step)
    if new_state is None:
        raise ValueError(f"{step.value} changes no state: record it as an event instead")
    allowed = sources(step) if only_from is None else sources(step) & frozenset(only_from)
    wanted = list(dict.fromkeys(code_ids))
    result = Moved()
    if not wanted:
        return result
    assignments = {"state": new_state.value, **(values or {})}
    allowed_values = sorted(s.value for s in allowed)
    for start in range(0, len(wanted), _CHUNK):
        part = wanted[start : start + _CHUNK]
        rows = await session.execute(
            update(Code)
            .where(Code.id.in_(part), Code.state.in_(allowed_values))
            .values(assignments)
            .returning(Code.id)
            .execution_options(synchronize_session=False)
        )
        result.moved.extend(rows.scalars())
    missing = set(wanted).difference(result.moved)
    if missing:
        result.refused = await explain(session, step, missing, allowed)
    return result


async def explain(
    session: AsyncSession, step: Step, code_ids: Collection[int], allowed: Collection[State]
) -> dict[int, str]:
    """Why ``step`` did not move each of ``code_ids``, from their current state."""
    reasons: dict[int, str] = {}
    ids = list(code_ids)
    for start in range(0, len(ids), _CHUNK):
        part = ids[start : start + _CHUNK]
        for code_id, state in await session.execute(
            select(Code.id, Code.state).where(Code.id.in_(part))
        ):
            reasons[code_id] = why_not(state, step) or (
                f"{step.value} refused: code is {state}, expected "
                + " or ".join(sorted(s.value for s in allowed))
            )
    for code_id in ids:
        reasons.setdefault(code_id, f"{step.value} refused: no code with id {code_id}")
    return reasons

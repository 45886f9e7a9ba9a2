"""Apply station event batches in one transaction and say what to acknowledge.

The caller commits the session and only then publishes the acks (an ack promises the events
are durable). Dedup is by event id, so a replayed batch changes nothing and is acked again
with the outcome first recorded. Anything malformed becomes a dead letter with its reason;
events that parse but cannot be applied are recorded as refused and acked as rejected.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.domain.lifecycle import State, Step, transition
from hub.errors import TransitionRefused
from hub.models import Code, DeadLetter, Event, Product, Station
from hub.sql import chunks
from protocols.codes import CodeKind, CodeRef, Keyring, parse_code
from protocols.errors import CodeError, ForgedCodeError, MessageError, TopicError
from protocols.messages import (
    MAX_ACK_IDS,
    MAX_PAYLOAD_BYTES,
    Ack,
    AggregateEvent,
    CommissionEvent,
    EventBatch,
    Rejection,
    StationEvent,
    Status,
)
from protocols.topics import Channel, Topics

log = logging.getLogger(__name__)
_IN_CHUNK = 500


@dataclass
class IngestReport:
    acks: list[Ack] = field(default_factory=list)
    applied: int = 0
    refused: int = 0
    duplicates: int = 0
    dead_letters: int = 0


@dataclass
class _CodeRow:
    id: int
    serial: str
    kind: str
    state: str
    sku: str
    gtin: str | None
    changes: dict[str, Any] = field(default_factory=dict)

    def set(self, **values: Any) -> None:
        self.changes.update(values)
        if "state" in values:
            self.state = values["state"]


class _Refused(Exception):
    pass


class _Batch:
    """State of one ingestion transaction."""

    def __init__(self, session: AsyncSession, keyring: Keyring, now: datetime) -> None:
        self.session = session
        self.keyring = keyring
        self.now = now
        self.codes: dict[str, _CodeRow] = {}
        self._checked: dict[str, CodeRef | str] = {}
        self.report = IngestReport()
        self.applied: dict[str, list[str]] = defaultdict(list)
        self.rejected: dict[str, list[Rejection]] = defaultdict(list)
        self.event_rows: list[dict[str, Any]] = []

    def dead_letter(self, topic: str, station_id: str | None, reason: str, payload: bytes) -> None:
        log.warning("dead letter from %s: %s", topic[:120], reason[:300])
        self.report.dead_letters += 1
        self.session.add(
            DeadLetter(
                received_at=self.now,
                topic=topic[:300],
                station_id=station_id,
                reason=reason,
                payload=payload[:MAX_PAYLOAD_BYTES],
                payload_size=len(payload),
            )
        )

    def check(self, text: str) -> CodeRef | str:
        """Format and keyed check of a code text, once per text: the reference, or why not."""
        checked = self._checked.get(text)
        if checked is None:
            try:
                checked = parse_code(text)
                self.keyring.open(checked.serial)
            except ForgedCodeError:
                checked = f"forged code (fails the keyed check): {text[:80]!r}"
            except CodeError as exc:
                checked = f"malformed code: {exc}"
            self._checked[text] = checked
        return checked

    async def load_codes(self, texts: Sequence[str]) -> None:
        """Fetch the rows of every code that passed the checks: forged ones cost no query."""
        serials = {ref.serial.value for ref in map(self.check, texts) if isinstance(ref, CodeRef)}
        wanted = [s for s in serials if s not in self.codes]
        for part in chunks(wanted, _IN_CHUNK):
            rows = await self.session.execute(
                select(Code.id, Code.serial, Code.kind, Code.state, Product.sku, Product.gtin)
                .join(Product, Product.id == Code.product_id)
                .where(Code.serial.in_(part))
            )
            for row in rows:
                self.codes[row.serial] = _CodeRow(
                    row.id, row.serial, row.kind, row.state, row.sku, row.gtin
                )

    def resolve(self, text: str, role: str) -> _CodeRow:
        """Format check, keyed check, then the code table; refuse with the first failure."""
        ref = self.check(text)
        if isinstance(ref, str):
            raise _Refused(f"{role}: {ref}")
        row = self.codes.get(ref.serial.value)
        if row is None:
            raise _Refused(f"{role}: unknown code {ref.serial.value}: not issued by this hub")
        if ref.gtin is not None and ref.gtin != row.gtin:
            raise _Refused(
                f"{role}: GTIN mismatch: label says {ref.gtin}, code {row.serial} belongs to "
                f"{row.gtin or 'a product without GTIN'}"
            )
        return row

    def commission(self, station: Station, event: CommissionEvent) -> None:
        row = self.resolve(event.code, "code")
        if event.sku is not None and event.sku != row.sku:
            raise _Refused(
                f"wrong product: work order is for {event.sku!r}, code {row.serial} "
                f"belongs to {row.sku!r}"
            )
        try:
            state = transition(row.state, Step.COMMISSIONING)
        except TransitionRefused as exc:
            raise _Refused(f"code {row.serial}: {exc}") from None
        row.set(
            state=state.value,
            lot=event.lot,
            work_order=event.work_order,
            station_id=station.id,
            commissioned_at=event.at,
        )

    def aggregate(self, station: Station, event: AggregateEvent) -> None:
        parent = self.resolve(event.parent, "parent")
        parent_kind = CodeKind.parse(parent.kind)
        if parent_kind is CodeKind.ITEM:
            raise _Refused(f"parent {parent.serial} is an item code: expected a case or pallet")
        children = [self.resolve(text, f"children[{i}]") for i, text in enumerate(event.children)]
        for child in children:
            if CodeKind.parse(child.kind) >= parent_kind:
                raise _Refused(
                    f"child {child.serial} is a {child.kind}: cannot go into a {parent.kind}"
                )
        if len({c.serial for c in children}) != len(children):
            raise _Refused("the same child is listed twice")
        # Check every transition first: an aggregation applies whole or not at all.
        try:
            for child in children:
                transition(child.state, Step.PACKING)
            parent_state = (
                transition(parent.state, Step.COMMISSIONING).value
                if parent.state == State.GENERATED
                else parent.state
            )
        except TransitionRefused as exc:
            raise _Refused(str(exc)) from None
        if parent_state not in (State.COMMISSIONED, State.PACKED):
            raise _Refused(f"parent {parent.serial} is {parent_state}: cannot take children")
        if parent.state == State.GENERATED:
            parent.set(state=parent_state, station_id=station.id, commissioned_at=event.at)
        for child in children:
            child.set(state=State.PACKED.value, parent_id=parent.id)

    def record(self, station_id: str, event: StationEvent, reason: str | None) -> None:
        self.event_rows.append(
            {
                "id": event.id,
                "type": event.TYPE,
                "source": f"station:{station_id}",
                "occurred_at": event.at,
                "recorded_at": self.now,
                "outcome": "applied" if reason is None else "refused",
                "reason": None if reason is None else reason[:300],
                "payload": event.as_dict(),
            }
        )
        if reason is None:
            self.applied[station_id].append(event.id)
            self.report.applied += 1
        else:
            self.rejected[station_id].append(Rejection(event.id, reason))
            self.report.refused += 1


async def ingest(
    session: AsyncSession,
    keyring: Keyring,
    topics: Topics,
    messages: Sequence[tuple[str, bytes]],
    now: datetime,
) -> IngestReport:
    """Apply MQTT messages (topic, payload) inside ``session``; the caller commits."""
    work = _Batch(session, keyring, now)
    parsed: list[tuple[str, str, bytes, EventBatch]] = []
    statuses: list[tuple[str, str, bytes]] = []
    for topic, payload in messages:
        try:
            station_id, channel = topics.parse(topic)
        except TopicError as exc:
            work.dead_letter(topic, None, str(exc), payload)
            continue
        if channel is Channel.STATUS:
            statuses.append((topic, station_id, payload))
            continue
        if channel is not Channel.EVENTS:
            work.dead_letter(topic, station_id, f"unexpected channel {channel.value!r}", payload)
            continue
        try:
            batch = EventBatch.parse(payload)
        except MessageError as exc:
            work.dead_letter(topic, station_id, f"{type(exc).__name__}: {exc}", payload)
            continue
        if batch.station_id != station_id:
            work.dead_letter(
                topic,
                station_id,
                f"station_id {batch.station_id!r} in the payload does not match the topic's "
                f"station {station_id!r}",
                payload,
            )
            continue
        parsed.append((topic, station_id, payload, batch))

    station_ids = {station_id for _, station_id, _, _ in parsed}
    station_ids.update(station_id for _, station_id, _ in statuses)
    stations = {
        s.id: s for s in await session.scalars(select(Station).where(Station.id.in_(station_ids)))
    }
    all_ids = [e.id for *_, batch in parsed for e in batch.events]
    recorded: dict[str, tuple[str, str | None]] = {}
    for part in chunks(all_ids, _IN_CHUNK):
        rows = await session.execute(
            select(Event.id, Event.outcome, Event.reason).where(Event.id.in_(part))
        )
        recorded.update({r.id: (r.outcome, r.reason) for r in rows})
    texts = [
        text
        for *_, batch in parsed
        for e in batch.events
        for text in ((e.code,) if isinstance(e, CommissionEvent) else (e.parent, *e.children))
    ]
    await work.load_codes(texts)

    for topic, station_id, payload in statuses:
        if not payload:
            continue  # a cleared retained message
        try:
            status = Status.parse(payload)
        except MessageError as exc:
            work.dead_letter(topic, station_id, f"{type(exc).__name__}: {exc}", payload)
            continue
        if station_id in stations and status.station_id == station_id:
            stations[station_id].status = status.state
            stations[station_id].last_seen_at = status.at

    for topic, station_id, payload, batch in parsed:
        station = stations.get(station_id)
        if station is None:
            reason = f"unknown station {station_id!r}: register it on the hub first"
            work.dead_letter(topic, station_id, reason, payload)
            work.rejected[station_id].extend(Rejection(e.id, reason) for e in batch.events)
            continue
        station.last_seen_at = now
        station.status = "online"
        for event in batch.events:
            if event.id in recorded:
                outcome, first_reason = recorded[event.id]
                work.report.duplicates += 1
                if outcome == "applied":
                    work.applied[station_id].append(event.id)
                else:
                    work.rejected[station_id].append(Rejection(event.id, first_reason or "refused"))
                continue
            try:
                if isinstance(event, CommissionEvent):
                    work.commission(station, event)
                else:
                    work.aggregate(station, event)
            except _Refused as exc:
                work.record(station_id, event, str(exc))
                recorded[event.id] = ("refused", str(exc))
            else:
                work.record(station_id, event, None)
                recorded[event.id] = ("applied", None)

    if work.event_rows:
        await session.execute(insert(Event), work.event_rows)
    changed = [{"id": c.id, **c.changes} for c in work.codes.values() if c.changes]
    # One executemany per distinct set of columns (commission and packing touch different ones).
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in changed:
        by_columns[tuple(sorted(row))].append(row)
    for same_columns in by_columns.values():
        await session.execute(update(Code), same_columns)
    for station_id in sorted(set(work.applied) | set(work.rejected)):
        work.report.acks.extend(
            split_ack(
                station_id, work.applied.get(station_id, []), work.rejected.get(station_id, [])
            )
        )
    return work.report


def split_ack(station_id: str, applied: list[str], rejected: list[Rejection]) -> list[Ack]:
    """Acks of at most MAX_ACK_IDS ids each (one transaction may hold more)."""
    entries: list[str | Rejection] = [*applied, *rejected]
    return [
        Ack(
            station_id=station_id,
            ids=tuple(e for e in part if isinstance(e, str)),
            rejected=tuple(e for e in part if isinstance(e, Rejection)),
        )
        for part in chunks(entries, MAX_ACK_IDS)
    ]

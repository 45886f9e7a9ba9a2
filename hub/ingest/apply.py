"""Apply station event batches in one transaction and say what to acknowledge.

The caller commits the session and only then publishes the acks (an ack promises the events
are durable: see ``hub.ingest.service``). Every event ends applied or refused, and every
message applied, refused or dead-lettered:

* Dedup is by event id: a replayed event changes nothing and is acked again with the outcome
  first recorded. An id that comes back with other contents (an old id reused, or one id twice
  with different contents in one message) is refused, never acked as applied.
* An event that does not parse is refused on its own (when its id is readable), so it never
  blocks the good events beside it; a payload whose envelope does not parse is a dead letter.
* State changes go through the lifecycle gate (``hub.domain.gate``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.domain import gate, rules
from hub.domain.lifecycle import State, Step, why_not
from hub.models import Code, DeadLetter, Event, Product, Station
from hub.pools import PoolRange, pool_refusal, pools_of
from hub.sql import chunks
from protocols.codes import CheckedCode, CodeKind, Keyring, check_codes
from protocols.errors import CodeError, ForgedCodeError, MessageError, TopicError
from protocols.messages import (
    MAX_ACK_IDS,
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
_CODES = Code.__table__
# Core statements run as one executemany, without the ORM's bulk bookkeeping per row.
_SET_COMMISSIONED_AT = (
    update(_CODES).where(_CODES.c.id == bindparam("b_id")).values(commissioned_at=bindparam("b_at"))
)
_INSERT_EVENTS = insert(Event.__table__)
DEAD_LETTER_PAYLOAD_BYTES = 4096  # enough to see what went wrong; the size is kept apart


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
    kind: CodeKind
    state: str
    sku: str
    gtin: str | None
    batch_id: int | None = None
    seq: int | None = None


async def prune_dead_letters(
    session: AsyncSession, now: datetime, keep_rows: int, keep_days: int
) -> int:
    """Keep dead letters bounded: at most ``keep_rows``, none older than ``keep_days``.
    Junk on the events topic must not be able to fill the disk."""
    newest_dropped = (
        select(DeadLetter.id).order_by(DeadLetter.id.desc()).offset(keep_rows).limit(1)
    ).scalar_subquery()
    by_count = await session.execute(delete(DeadLetter).where(DeadLetter.id <= newest_dropped))
    by_age = await session.execute(
        delete(DeadLetter).where(DeadLetter.received_at < now - timedelta(days=keep_days))
    )
    return int(by_count.rowcount or 0) + int(by_age.rowcount or 0)  # type: ignore[attr-defined]


def _why_not(text: str, result: CheckedCode | CodeError) -> CheckedCode | str:
    if isinstance(result, ForgedCodeError):
        return f"forged code (fails the keyed check): {text[:80]!r}"
    if isinstance(result, CodeError):
        return f"malformed code: {result}"
    return result


class _Refused(Exception):
    pass


@dataclass
class _Commission:
    event: CommissionEvent
    row: _CodeRow
    station_id: str
    contents: dict[str, Any]


class _Transaction:
    """State of one ingestion transaction."""

    def __init__(self, session: AsyncSession, keyring: Keyring, now: datetime) -> None:
        self.session = session
        self.keyring = keyring
        self.now = now
        self.codes: dict[str, _CodeRow] = {}
        self._checked: dict[str, CheckedCode | str] = {}
        self.report = IngestReport()
        self.applied: dict[str, list[str]] = defaultdict(list)
        self.rejected: dict[str, list[Rejection]] = defaultdict(list)
        self.event_rows: list[dict[str, Any]] = []
        self.pending: list[_Commission] = []
        self.pools: dict[int, list[PoolRange]] = {}  # code pools of the loaded codes' batches
        self.lines: dict[str, str] = {}  # station id -> its production line

    def dead_letter(self, topic: str, station_id: str | None, reason: str, payload: bytes) -> None:
        log.warning("dead letter from %s: %s", topic[:120], reason[:300])
        self.report.dead_letters += 1
        self.session.add(
            DeadLetter(
                received_at=self.now,
                topic=topic[:300],
                station_id=station_id,
                reason=reason[:1000],
                payload=payload[:DEAD_LETTER_PAYLOAD_BYTES],
                payload_size=len(payload),
            )
        )

    def check(self, text: str) -> CheckedCode | str:
        """Every check of a code text, once per text: the checked code, or why not."""
        checked = self._checked.get(text)
        if checked is None:
            self.check_all([text])
            checked = self._checked[text]
        return checked

    def check_all(self, texts: Sequence[str]) -> None:
        """Check the texts not checked yet, with the keyed check in bulk."""
        new = [t for t in dict.fromkeys(texts) if t not in self._checked]
        for text, result in zip(new, check_codes(new, self.keyring), strict=True):
            self._checked[text] = _why_not(text, result)

    async def load_codes(self, texts: Sequence[str]) -> None:
        """Fetch the rows of every code that passed the checks: forged ones cost no query."""
        self.check_all(texts)
        serials = {c.serial for c in map(self.check, texts) if isinstance(c, CheckedCode)}
        wanted = [s for s in serials if s not in self.codes]
        for part in chunks(wanted, _IN_CHUNK):
            rows = await self.session.execute(
                select(
                    Code.id,
                    Code.serial,
                    Code.kind,
                    Code.state,
                    Product.sku,
                    Product.gtin,
                    Code.batch_id,
                    Code.seq,
                )
                .join(Product, Product.id == Code.product_id)
                .where(Code.serial.in_(part))
            )
            for row in rows:
                self.codes[row.serial] = _CodeRow(
                    row.id,
                    row.serial,
                    CodeKind.parse(row.kind),
                    row.state,
                    row.sku,
                    row.gtin,
                    row.batch_id,
                    row.seq,
                )
        batches = {r.batch_id for r in self.codes.values() if r.batch_id is not None}
        missing = batches - set(self.pools)
        if missing:
            self.pools.update(await pools_of(self.session, missing))

    def resolve(self, text: str, role: str) -> _CodeRow:
        """Format check, keyed check, then the code table; refuse with the first failure."""
        checked = self.check(text)
        if isinstance(checked, str):
            raise _Refused(f"{role}: {checked}")
        row = self.codes.get(checked.serial)
        if row is None:
            raise _Refused(f"{role}: unknown code {checked.serial}: not issued by this hub")
        why = rules.gtin_mismatch(checked.gtin, row.gtin, row.serial)
        if why is not None:
            raise _Refused(f"{role}: {why}")
        return row

    def commission(self, station_id: str, event: CommissionEvent, contents: dict[str, Any]) -> None:
        """Check one commissioning; it is written with the next flush."""
        row = self.resolve(event.code, "code")
        why = rules.wrong_product(event.sku, row.sku, row.serial)
        if why is not None:
            raise _Refused(why)
        if row.batch_id is not None and row.seq is not None:
            why = pool_refusal(
                row.serial, row.seq, self.lines.get(station_id), self.pools.get(row.batch_id, [])
            )
            if why is not None:
                raise _Refused(why)
        why = why_not(row.state, Step.COMMISSIONING)
        if why is not None:
            raise _Refused(f"code {row.serial}: {why}")
        row.state = State.COMMISSIONED.value  # later events in this transaction see it
        self.pending.append(_Commission(event, row, station_id, contents))

    async def flush(self) -> None:
        """Write the pending commissionings through the gate, one UPDATE per work order."""
        pending, self.pending = self.pending, []
        groups: dict[tuple[Any, ...], list[_Commission]] = defaultdict(list)
        for c in pending:
            groups[(c.station_id, c.event.lot, c.event.work_order)].append(c)
        moved: set[int] = set()
        refused: dict[int, str] = {}
        for (station_id, lot, work_order), members in groups.items():
            result = await gate.move(
                self.session,
                Step.COMMISSIONING,
                [c.row.id for c in members],
                {"lot": lot, "work_order": work_order, "station_id": station_id},
            )
            moved.update(result.moved)
            refused.update(result.refused)
        if moved:
            # Not a state change (the gate made that): each code's own read time.
            await self.session.execute(
                _SET_COMMISSIONED_AT,
                [{"b_id": c.row.id, "b_at": c.event.at} for c in pending if c.row.id in moved],
            )
        for c in pending:
            if c.row.id in refused:
                # Taken by another hub process since we read it: say so, keep its real state.
                why = f"code {c.row.serial}: {refused[c.row.id]}"
                self.record(c.station_id, c.event, why, c.contents)
            else:
                self.record(c.station_id, c.event, None, c.contents)

    async def aggregate(self, station_id: str, event: AggregateEvent) -> None:
        """Pack the children into the parent, all or nothing."""
        parent = self.resolve(event.parent, "parent")
        children = [self.resolve(text, f"children[{i}]") for i, text in enumerate(event.children)]
        why = rules.packing_refusal(
            parent.serial,
            parent.kind,
            parent.state,
            [(c.serial, c.kind, c.state) for c in children],
        )
        if why is not None:
            raise _Refused(why)
        await self.flush()  # the children may have been commissioned earlier in this message
        async with self.session.begin_nested():  # a refusal inside rolls back all of it
            if parent.state == State.GENERATED:
                done = await gate.move(
                    self.session,
                    Step.COMMISSIONING,
                    [parent.id],
                    {"station_id": station_id, "commissioned_at": event.at},
                )
                if not done.complete:
                    raise _Refused(f"parent {parent.serial}: {done.refused[parent.id]}")
            packed = await gate.move(
                self.session, Step.PACKING, [c.id for c in children], {"parent_id": parent.id}
            )
            if not packed.complete:
                code_id, reason = next(iter(packed.refused.items()))
                serial = next(c.serial for c in children if c.id == code_id)
                raise _Refused(f"child {serial}: {reason}")
        if parent.state == State.GENERATED:
            parent.state = State.COMMISSIONED.value
        for child in children:
            child.state = State.PACKED.value

    def record(
        self,
        station_id: str,
        event: StationEvent,
        reason: str | None,
        contents: dict[str, Any] | None = None,
    ) -> None:
        self.event_rows.append(
            {
                "id": event.id,
                "type": event.TYPE,
                "source": f"station:{station_id}",
                "occurred_at": event.at,
                "recorded_at": self.now,
                "outcome": "applied" if reason is None else "refused",
                "reason": None if reason is None else reason[:300],
                "payload": event.as_dict() if contents is None else contents,
            }
        )
        if reason is None:
            self.applied[station_id].append(event.id)
            self.report.applied += 1
        else:
            self.rejected[station_id].append(Rejection(event.id, reason[:300]))
            self.report.refused += 1

    def refuse_unparsed(self, station_id: str, event_id: str, reason: str) -> None:
        self.event_rows.append(
            {
                "id": event_id,
                "type": "invalid",
                "source": f"station:{station_id}",
                "occurred_at": self.now,
                "recorded_at": self.now,
                "outcome": "refused",
                "reason": reason[:300],
                "payload": {},
            }
        )
        self.rejected[station_id].append(Rejection(event_id, reason[:300]))
        self.report.refused += 1


@dataclass
class _Parsed:
    topic: str
    station_id: str
    payload: bytes
    batch: EventBatch
    refusals: list[Rejection]  # events refused before applying: invalid, or ids reused


def _without_id_clashes(batch: EventBatch) -> tuple[EventBatch, list[Rejection]]:
    """One event per id: exact repeats inside a message count once; an id given to events
    with different contents applies none of them (which one did the station mean?)."""
    by_id: dict[str, list[StationEvent]] = defaultdict(list)
    for e in batch.events:
        by_id[e.id].append(e)
    if all(len(same) == 1 for same in by_id.values()):
        return batch, []
    kept: list[StationEvent] = []
    clashes: list[Rejection] = []
    for event_id, same in by_id.items():
        first = same[0].as_dict()
        if all(e.as_dict() == first for e in same[1:]):
            kept.append(same[0])
        else:
            clashes.append(
                Rejection(
                    event_id,
                    f"event id {event_id} was given to {len(same)} different events in one "
                    "message: none applied (give every event its own id)",
                )
            )
    kept.sort(key=batch.events.index)
    return EventBatch(batch.station_id, batch.sent_at, tuple(kept)), clashes


def _code_texts(event: StationEvent) -> tuple[str, ...]:
    if isinstance(event, CommissionEvent):
        return (event.code,)
    if isinstance(event, AggregateEvent):
        return (event.parent, *event.children)
    return ()  # a reject is a record: nothing to look up


async def ingest(
    session: AsyncSession,
    keyring: Keyring,
    topics: Topics,
    messages: Sequence[tuple[str, bytes]],
    now: datetime,
) -> IngestReport:
    """Apply MQTT messages (topic, payload) inside ``session``; the caller commits."""
    work = _Transaction(session, keyring, now)
    parsed: list[_Parsed] = []
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
            batch, invalid = EventBatch.parse_each(payload)
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
        refusals = [
            Rejection(bad.id, f"invalid event: {type(bad.error).__name__}: {bad.error}")
            for bad in invalid
            if bad.id is not None
        ]
        unreadable = [bad for bad in invalid if bad.id is None]
        if unreadable:
            first = unreadable[0].error
            work.dead_letter(
                topic,
                station_id,
                f"{len(unreadable)} event(s) without a valid id cannot be applied or acknowledged "
                f"(the others were): {type(first).__name__}: {first}",
                payload,
            )
        batch, clashes = _without_id_clashes(batch)
        refusals.extend(clashes)
        parsed.append(_Parsed(topic, station_id, payload, batch, refusals))

    station_ids = {p.station_id for p in parsed} | {s for _, s, _ in statuses}
    stations = {
        s.id: s for s in await session.scalars(select(Station).where(Station.id.in_(station_ids)))
    }
    work.lines = {s.id: s.line for s in stations.values()}
    all_ids = [e.id for p in parsed for e in p.batch.events]
    all_ids += [r.id for p in parsed for r in p.refusals]
    recorded: dict[str, tuple[str, str | None, dict[str, Any]]] = {}
    for part in chunks(list(set(all_ids)), _IN_CHUNK):
        rows = await session.execute(
            select(Event.id, Event.outcome, Event.reason, Event.payload).where(Event.id.in_(part))
        )
        recorded.update({r.id: (r.outcome, r.reason, r.payload) for r in rows})
    await work.load_codes(
        [
            text
            for p in parsed
            if p.station_id in stations
            for e in p.batch.events
            for text in _code_texts(e)
        ]
    )

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

    for p in parsed:
        station_id = p.station_id
        station = stations.get(station_id)
        if station is None:
            reason = f"unknown station {station_id!r}: register it on the hub first"
            work.dead_letter(p.topic, station_id, reason, p.payload)
            work.rejected[station_id].extend(Rejection(e.id, reason) for e in p.batch.events)
            work.rejected[station_id].extend(Rejection(r.id, reason) for r in p.refusals)
            continue
        station.last_seen_at = now
        station.status = "online"
        for refusal in p.refusals:
            if refusal.id in recorded:
                work.rejected[station_id].append(Rejection(refusal.id, refusal.reason))
                continue
            work.refuse_unparsed(station_id, refusal.id, refusal.reason)
            recorded[refusal.id] = ("refused", refusal.reason, {})
        for event in p.batch.events:
            contents = event.as_dict()
            seen = recorded.get(event.id)
            if seen is not None:
                outcome, first_reason, first_contents = seen
                work.report.duplicates += 1
                if first_contents != contents:
                    work.rejected[station_id].append(
                        Rejection(
                            event.id,
                            f"event id {event.id} was already used for another event: "
                            "not applied (give every event its own id)",
                        )
                    )
                elif outcome in ("applied", "pending"):
                    # "pending": the original is in this transaction; settled below.
                    work.applied[station_id].append(event.id)
                else:
                    work.rejected[station_id].append(Rejection(event.id, first_reason or "refused"))
                continue
            recorded[event.id] = ("pending", None, contents)
            try:
                if isinstance(event, CommissionEvent):
                    work.commission(station_id, event, contents)
                    continue  # recorded when the pending commissionings are flushed
                if isinstance(event, AggregateEvent):
                    await work.aggregate(station_id, event)
                # A RejectEvent is recorded as it is: the item left the line, no code moved.
            except _Refused as exc:
                await work.flush()  # keep the event log in the order events arrived
                work.record(station_id, event, str(exc), contents)
            else:
                work.record(station_id, event, None, contents)
    await work.flush()
    _settle_duplicates(work)

    if work.event_rows:
        await session.execute(_INSERT_EVENTS, work.event_rows)
    for station_id in sorted(set(work.applied) | set(work.rejected)):
        work.report.acks.extend(
            split_ack(
                station_id, work.applied.get(station_id, []), work.rejected.get(station_id, [])
            )
        )
    return work.report


def _settle_duplicates(work: _Transaction) -> None:
    """A duplicate that arrived in the same transaction as its original was counted as
    applied before the original's outcome was known: give it the original's outcome."""
    outcomes = {row["id"]: (row["outcome"], row["reason"]) for row in work.event_rows}
    for station_id, ids in work.applied.items():
        keep: list[str] = []
        for event_id in ids:
            outcome, reason = outcomes.get(event_id, ("applied", None))
            if outcome == "applied":
                keep.append(event_id)
            else:
                work.rejected[station_id].append(Rejection(event_id, reason or "refused"))
        work.applied[station_id] = keep


def split_ack(station_id: str, applied: list[str], rejected: list[Rejection]) -> list[Ack]:
    """Acks of at most MAX_ACK_IDS ids each (one transaction may hold more); an id named
    twice (a duplicate inside one message) is named once."""
    entries: list[str | Rejection] = []
    named: set[str] = set()
    everything: list[str | Rejection] = [*applied, *rejected]
    for entry in everything:
        event_id = entry if isinstance(entry, str) else entry.id
        if event_id not in named:
            named.add(event_id)
            entries.append(entry)
    return [
        Ack(
            station_id=station_id,
            ids=tuple(e for e in part if isinstance(e, str)),
            rejected=tuple(e for e in part if isinstance(e, Rejection)),
        )
        for part in chunks(entries, MAX_ACK_IDS)
    ]

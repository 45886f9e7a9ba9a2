"""The database side of EPCIS: captured events applied through the lifecycle gate, hub
events written as EPCIS, and queries.

Capture is idempotent by event id (``eventID``, or the content hash when there is none): an
event already applied with the same contents counts as a duplicate and changes nothing; an
id that comes back with other contents is refused. Each event applies inside a savepoint,
so a refused event leaves no trace of its partial work. With the standard
``rollback`` error behaviour one refused event rolls back the whole capture; with
``proceed`` the others apply.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.domain import gate, rules
from hub.domain.lifecycle import State, Step
from hub.epcis import mapping
from hub.epcis.document import CapturedEvent, check_document, content_digest, read_event
from hub.epcis.errors import DocumentError, EpcError
from hub.epcis.identifiers import CODE_MARKER, EpcFormat, lgtin_uri, parse_epc, render_code
from hub.epcis.mapping import NotApplicable, Op, Operation
from hub.epcis.query import EventQuery, Position
from hub.models import Code, EpcisCapture, EpcisEvent, EpcisEventEpc, Event, Product
from hub.sql import chunks
from protocols.codes import CodeKind, Keyring, check_code, parse_code
from protocols.errors import CodeError, ForgedCodeError

log = logging.getLogger(__name__)
# Hub event ids of captured events are derived from their EPCIS event id (uuid5), so the
# event log has one row per applied event however often it is captured.
_EVENT_LOG_NAMESPACE = uuid.UUID("0b1d8a57-5c3e-4c1a-9d0e-6a8f2f6b7e21")
_IN_CHUNK = 500
_PROJECTED_TYPES = (
    "commission",
    "aggregate",
    "shipping",
    "receiving",
    "unshipping",
    "inspecting",
    "recalling",
)


class _Refused(Exception):
    pass


@dataclass
class CaptureJob:
    """The standard capture job resource (EPCIS 2.0 ``/capture/{captureID}``)."""

    id: str
    created_at: datetime
    finished_at: datetime | None
    running: bool
    success: bool
    error_behaviour: str
    event_count: int
    applied: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_resource(self) -> dict[str, Any]:
        from hub.epcis.document import format_time

        return {
            "captureID": self.id,
            "createdAt": format_time(self.created_at),
            "finishedAt": None if self.finished_at is None else format_time(self.finished_at),
            "running": self.running,
            "success": self.success,
            "captureErrorBehaviour": self.error_behaviour,
            "errors": self.errors,
            "eventCount": self.event_count,
            "applied": self.applied,
            "duplicates": self.duplicates,
        }

    @classmethod
    def from_row(cls, row: EpcisCapture) -> CaptureJob:
        return cls(
            id=row.id,
            created_at=_utc(row.created_at),
            finished_at=None if row.finished_at is None else _utc(row.finished_at),
            running=row.running,
            success=row.success,
            error_behaviour=row.error_behaviour,
            event_count=row.event_count,
            applied=row.applied,
            duplicates=row.duplicates,
            errors=list(row.errors),
        )


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _problem(event_id: str | None, detail: str, index: int | None = None) -> dict[str, Any]:
    """One refusal in the job's ``errors`` (RFC 7807 problem details, as EPCIS 2.0 uses)."""
    problem: dict[str, Any] = {
        "type": "epcisException:ValidationException",
        "title": "Event not applied",
        "status": 422,
        "detail": detail[:500],
    }
    if event_id is not None:
        problem["instance"] = event_id[:512]
    if index is not None:
        problem["eventIndex"] = index
    return problem


@dataclass
class _Row:
    id: int
    serial: str
    kind: CodeKind
    state: str
    gtin: str | None
    parent_id: int | None


class _Capture:
    """One capture transaction."""

    def __init__(
        self, session: AsyncSession, keyring: Keyring, job: CaptureJob, source: str, now: datetime
    ) -> None:
        self.session = session
        self.keyring = keyring
        self.job = job
        self.source = source
        self.now = now

    async def rows(self, serials: Sequence[str]) -> dict[str, _Row]:
        found: dict[str, _Row] = {}
        for part in chunks(list(dict.fromkeys(serials)), _IN_CHUNK):
            result = await self.session.execute(
                select(Code.id, Code.serial, Code.kind, Code.state, Product.gtin, Code.parent_id)
                .join(Product, Product.id == Code.product_id)
                .where(Code.serial.in_(part))
            )
            for r in result:
                found[r.serial] = _Row(
                    r.id, r.serial, CodeKind.parse(r.kind), r.state, r.gtin, r.parent_id
                )
        return found

    async def serial_of(self, uri: str, foreign_ok: bool) -> str | None:
        """The serial of the hub code ``uri`` names (None: a foreign identifier, allowed
        here); _Refused when the hub cannot accept it."""
        try:
            ref = parse_epc(uri)
        except EpcError as exc:
            raise _Refused(str(exc)) from None
        if ref.sscc is not None:
            serial = await self.session.scalar(select(Code.serial).where(Code.sscc == ref.sscc))
            if serial is None and not foreign_ok:
                raise _Refused(f"SSCC {ref.sscc} is not a code issued by this hub")
            return serial
        if ref.code is None:
            if foreign_ok:
                return None
            raise _Refused(
                f"{uri[:120]!r} names no code of this hub: expected an SGTIN EPC URI or a "
                "GS1 Digital Link of a code it issued"
            )
        try:
            checked = check_code(ref.code, self.keyring)
        except ForgedCodeError:
            if foreign_ok:
                return None
            raise _Refused(f"{uri[:120]!r}: forged code (fails the keyed check)") from None
        except CodeError as exc:
            if foreign_ok:
                return None
            raise _Refused(f"{uri[:120]!r} is not a code of this hub: {exc}") from None
        return checked.serial

    async def resolve(
        self, uris: Sequence[str], foreign_ok: bool
    ) -> tuple[list[_Row], dict[str, str]]:
        """The code rows of ``uris`` and the stored name (marker or URI) of each."""
        serials: dict[str, str | None] = {u: await self.serial_of(u, foreign_ok) for u in uris}
        rows = await self.rows([s for s in serials.values() if s is not None])
        found: list[_Row] = []
        names: dict[str, str] = {}
        for uri, serial in serials.items():
            row = rows.get(serial) if serial is not None else None
            if row is None:
                if serial is not None and not foreign_ok:
                    raise _Refused(f"unknown code {serial}: not issued by this hub")
                names[uri] = uri
                continue
            label = parse_epc(uri).code
            if label is not None:
                why = rules.gtin_mismatch(parse_code(label).gtin, row.gtin, row.serial)
                if why is not None:
                    raise _Refused(why)
            found.append(row)
            names[uri] = mapping.marker(row.serial)
        return found, names

    async def apply(self, event: CapturedEvent, operations: Sequence[Operation]) -> dict[str, str]:
        """Apply one event's operations; the stored name of every identifier it names."""
        names: dict[str, str] = {}
        for operation in operations:
            rows, op_names = await self.resolve(operation.epcs, operation.foreign_ok)
            names.update(op_names)
            parent: _Row | None = None
            if operation.parent is not None:
                parents, parent_names = await self.resolve(
                    [operation.parent], operation.op is Op.RECORD
                )
                names.update(parent_names)
                parent = parents[0] if parents else None
            if operation.op is Op.MOVE and operation.step is not None:
                await self.move(operation.step, rows, event)
            elif operation.op is Op.PACK and parent is not None:
                await self.pack(parent, rows, event)
            elif operation.op is Op.UNPACK and parent is not None:
                await self.unpack(parent, rows, bool(operation.epcs))
        return names

    async def move(self, step: Step, rows: Sequence[_Row], event: CapturedEvent) -> None:
        if not rows:
            return
        values: dict[str, Any] = {}
        if step is Step.COMMISSIONING:
            values = {"commissioned_at": event.event_time}
            if event.lot is not None:
                values["lot"] = event.lot
        elif step is Step.SHIPPING:
            values = {"activated_at": event.event_time}
        moved = await gate.move(self.session, step, [r.id for r in rows], values)
        if not moved.complete:
            code_id, reason = next(iter(moved.refused.items()))
            serial = next(r.serial for r in rows if r.id == code_id)
            raise _Refused(f"code {serial}: {reason}")

    async def pack(self, parent: _Row, children: Sequence[_Row], event: CapturedEvent) -> None:
        why = rules.packing_refusal(
            parent.serial,
            parent.kind,
            parent.state,
            [(c.serial, c.kind, c.state) for c in children],
        )
        if why is not None:
            raise _Refused(why)
        if parent.state == State.GENERATED:
            await self.move(Step.COMMISSIONING, [parent], event)
        packed = await gate.move(
            self.session, Step.PACKING, [c.id for c in children], {"parent_id": parent.id}
        )
        if not packed.complete:
            code_id, reason = next(iter(packed.refused.items()))
            serial = next(c.serial for c in children if c.id == code_id)
            raise _Refused(f"child {serial}: {reason}")

    async def unpack(self, parent: _Row, children: Sequence[_Row], listed: bool) -> None:
        if not listed:
            ids = list(
                await self.session.scalars(select(Code.id).where(Code.parent_id == parent.id))
            )
            if not ids:
                raise _Refused(f"parent {parent.serial} holds no children to unpack")
        else:
            for child in children:
                if child.parent_id != parent.id:
                    raise _Refused(f"child {child.serial} is not packed in {parent.serial}")
            ids = [c.id for c in children]
        moved = await gate.move(self.session, Step.UNPACKING, ids, {"parent_id": None})
        if not moved.complete:
            reason = next(iter(moved.refused.values()))
            raise _Refused(f"unpacking from {parent.serial}: {reason}")


def _stored(event: CapturedEvent, names: dict[str, str]) -> dict[str, Any]:
    """The event as kept: its id made explicit, hub codes as markers."""
    stored = dict(event.raw)
    stored["eventID"] = event.event_id
    stored.pop("recordTime", None)
    for key in ("epcList", "childEPCs", "inputEPCList", "outputEPCList"):
        if key in stored:
            stored[key] = [names.get(v, v) for v in stored[key]]
    if "parentID" in stored:
        stored["parentID"] = names.get(stored["parentID"], stored["parentID"])
    return stored


_ROLES = (
    ("epcList", "epc"),
    ("childEPCs", "child"),
    ("inputEPCList", "input"),
    ("outputEPCList", "output"),
)


async def _store(
    session: AsyncSession,
    stored: dict[str, Any],
    *,
    event_id: str,
    hub_event_id: str,
    event_time: datetime,
    record_time: datetime,
    digest: str,
    capture_id: str | None,
) -> None:
    """Keep one EPCIS event and index the identifiers it names."""
    row = EpcisEvent(
        event_id=event_id,
        hub_event_id=hub_event_id,
        type=str(stored.get("type"))[:32],
        event_time=event_time.astimezone(UTC),
        record_time=record_time,
        biz_step=mapping_biz_step(stored),
        digest=digest,
        capture_id=capture_id,
        document=stored,
    )
    session.add(row)
    await session.flush()
    named: list[tuple[str, str]] = [
        (role, value) for key, role in _ROLES for value in stored.get(key, ())
    ]
    if stored.get("parentID"):
        named.append(("parent", stored["parentID"]))
    serials = [v[len(CODE_MARKER) :] for _, v in named if v.startswith(CODE_MARKER)]
    gtins = await _gtins(session, serials)
    entries = []
    for role, value in named:
        if value.startswith(CODE_MARKER):
            serial = value[len(CODE_MARKER) :]
            entries.append(
                EpcisEventEpc(event=row.id, role=role, key=serial, gtin=gtins.get(serial))
            )
        else:
            entries.append(EpcisEventEpc(event=row.id, role=role, key=value[:512], gtin=None))
    session.add_all(entries)


def mapping_biz_step(stored: dict[str, Any]) -> str | None:
    from hub.epcis.document import biz_step_name

    step = biz_step_name(stored.get("bizStep"))
    return None if step is None else step[:200]


@dataclass(frozen=True)
class _Facts:
    gtin: str | None
    sscc: str | None


async def _facts(session: AsyncSession, serials: Sequence[str]) -> dict[str, _Facts]:
    """GTIN (of the product) and SSCC (of a logistic unit) of each code, by serial."""
    found: dict[str, _Facts] = {}
    for part in chunks(list(dict.fromkeys(serials)), _IN_CHUNK):
        result = await session.execute(
            select(Code.serial, Product.gtin, Code.sscc)
            .join(Product, Product.id == Code.product_id)
            .where(Code.serial.in_(part))
        )
        found.update({r.serial: _Facts(r.gtin, r.sscc) for r in result})
    return found


async def _gtins(session: AsyncSession, serials: Sequence[str]) -> dict[str, str | None]:
    return {s: f.gtin for s, f in (await _facts(session, serials)).items()}


def hub_event_id_for(event_id: str) -> str:
    return str(uuid.uuid5(_EVENT_LOG_NAMESPACE, event_id))


async def capture(
    session: AsyncSession,
    keyring: Keyring,
    document: Any,
    *,
    source: str,
    error_behaviour: str,
    now: datetime,
) -> CaptureJob:
    """Apply a capture document inside ``session`` (the caller commits, or rolls back when
    the job says so: see ``CaptureJob.success`` and :func:`keep_job`).

    Raises DocumentError when the document is not valid EPCIS 2.0 at all.
    """
    raw_events = check_document(document)
    job = CaptureJob(
        id=str(uuid.uuid4()),
        created_at=now,
        finished_at=None,
        running=True,
        success=False,
        error_behaviour=error_behaviour,
        event_count=len(raw_events),
    )
    # A write first: the per-event savepoints below then nest inside a real transaction.
    session.add(_job_row(job, source))
    await session.flush()
    work = _Capture(session, keyring, job, source, now)
    events: list[CapturedEvent] = []
    for index, raw in enumerate(raw_events):
        try:
            events.append(read_event(index, raw))
        except DocumentError as exc:
            job.errors.append(_problem(raw.get("eventID"), str(exc), index))

    existing: dict[str, str] = {}
    for part in chunks(list({e.event_id for e in events}), _IN_CHUNK):
        result = await session.execute(
            select(EpcisEvent.event_id, EpcisEvent.digest).where(EpcisEvent.event_id.in_(part))
        )
        existing.update({r.event_id: r.digest for r in result})

    for event in events:
        seen = existing.get(event.event_id)
        if seen is not None:
            if seen == event.digest:
                job.duplicates += 1
            else:
                job.errors.append(
                    _problem(
                        event.event_id,
                        f"{event.label}: eventID already used for an event with other "
                        "contents: not applied (give every event its own eventID)",
                        event.index,
                    )
                )
            continue
        try:
            operations = mapping.plan(event)
            async with session.begin_nested():
                names = await work.apply(event, operations)
        except NotApplicable as exc:
            job.errors.append(_problem(event.event_id, f"{event.label}: {exc}", event.index))
            _refusal(session, event, source, now, str(exc))
            continue
        except _Refused as exc:
            job.errors.append(_problem(event.event_id, f"{event.label}: {exc}", event.index))
            _refusal(session, event, source, now, str(exc))
            continue
        hub_event_id = hub_event_id_for(event.event_id)
        session.add(
            Event(
                id=hub_event_id,
                type=event.type[:32],
                source=source[:80],
                occurred_at=event.event_time,
                recorded_at=now,
                outcome="applied",
                reason=None,
                payload={"epcis": {"eventID": event.event_id, "captureID": job.id}},
            )
        )
        await _store(
            session,
            _stored(event, names),
            event_id=event.event_id,
            hub_event_id=hub_event_id,
            event_time=event.event_time,
            record_time=now,
            digest=event.digest,
            capture_id=job.id,
        )
        existing[event.event_id] = event.digest
        job.applied += 1
    job.running = False
    job.finished_at = now
    job.success = not job.errors
    if job.success or error_behaviour == "proceed":
        await _update_job(session, job)
    return job


def _refusal(
    session: AsyncSession, event: CapturedEvent, source: str, now: datetime, reason: str
) -> None:
    """A refused event is recorded in the event log (one row per attempt)."""
    session.add(
        Event(
            id=str(uuid.uuid4()),
            type=event.type[:32],
            source=source[:80],
            occurred_at=event.event_time,
            recorded_at=now,
            outcome="refused",
            reason=reason[:300],
            payload={"epcis": {"eventID": event.event_id}},
        )
    )


def _job_row(job: CaptureJob, source: str) -> EpcisCapture:
    return EpcisCapture(
        id=job.id,
        created_at=job.created_at,
        finished_at=job.finished_at,
        running=job.running,
        success=job.success,
        error_behaviour=job.error_behaviour,
        source=source[:80],
        event_count=job.event_count,
        applied=job.applied,
        duplicates=job.duplicates,
        errors=job.errors[:1000],
    )


async def _update_job(session: AsyncSession, job: CaptureJob) -> None:
    row = await session.get(EpcisCapture, job.id)
    assert row is not None
    row.finished_at = job.finished_at
    row.running = job.running
    row.success = job.success
    row.applied = job.applied
    row.duplicates = job.duplicates
    row.errors = job.errors[:1000]


async def keep_job(session: AsyncSession, job: CaptureJob, source: str) -> None:
    """Record a job whose capture was rolled back (nothing applied, the errors kept)."""
    job.applied = 0
    session.add(_job_row(job, source))


async def get_job(session: AsyncSession, capture_id: str) -> CaptureJob | None:
    row = await session.get(EpcisCapture, capture_id)
    return None if row is None else CaptureJob.from_row(row)


async def list_jobs(session: AsyncSession, limit: int) -> list[CaptureJob]:
    rows = await session.scalars(
        select(EpcisCapture).order_by(EpcisCapture.created_at.desc()).limit(limit)
    )
    return [CaptureJob.from_row(r) for r in rows]


# Hub events as EPCIS --------------------------------------------------------------------------


async def project_hub_events(
    session: AsyncSession, company_prefix_length: int, limit: int = 2000
) -> int:
    """Write applied hub events (station commissioning and packing, shipments, receipts,
    inspections, un-shipments) that are not EPCIS events yet as EPCIS events; returns how
    many. The caller commits; two callers racing collide on the unique hub event id, and the
    loser simply looks again."""
    rows = (
        await session.execute(
            select(Event.id, Event.type, Event.occurred_at, Event.recorded_at, Event.payload)
            .outerjoin(EpcisEvent, EpcisEvent.hub_event_id == Event.id)
            .where(
                EpcisEvent.id.is_(None),
                Event.outcome == "applied",
                Event.type.in_(_PROJECTED_TYPES),
            )
            .order_by(Event.recorded_at)
            .limit(limit)
        )
    ).all()
    ids = {int(i) for row in rows for i in _code_ids(row.payload)}
    serials: dict[int, str] = {}
    for part in chunks(sorted(ids), _IN_CHUNK):
        result = await session.execute(select(Code.id, Code.serial).where(Code.id.in_(part)))
        serials.update({r.id: r.serial for r in result})
    skus = {
        str(lot[0])
        for row in rows
        if row.type == "recalling" and isinstance(row.payload, dict)
        for lot in row.payload.get("lots", ())
        if isinstance(lot, list) and lot
    }
    gtins: dict[str, str | None] = {}
    if skus:
        result = await session.execute(
            select(Product.sku, Product.gtin).where(Product.sku.in_(sorted(skus)))
        )
        gtins = {r.sku: r.gtin for r in result}
    for row in rows:
        at = _utc(row.occurred_at)
        payload = row.payload if isinstance(row.payload, dict) else {}
        if row.type == "recalling":
            classes = [
                lgtin_uri(gtin, str(lot[1]), company_prefix_length)
                for lot in payload.get("lots", ())
                if isinstance(lot, list)
                and len(lot) == 2
                and (gtin := gtins.get(str(lot[0]))) is not None
            ]
            stored = mapping.recall_event(f"urn:uuid:{row.id}", at, classes)
        else:
            by_id = [serials[int(i)] for i in _code_ids(payload) if int(i) in serials]
            stored = _as_epcis(row.id, row.type, at, payload, by_id)
        await _store(
            session,
            stored,
            event_id=stored["eventID"],
            hub_event_id=row.id,
            event_time=at,
            record_time=_utc(row.recorded_at),
            digest=content_digest(stored),
            capture_id=None,
        )
    return len(rows)


def _code_ids(payload: Any) -> list[int]:
    ids = payload.get("code_ids") if isinstance(payload, dict) else None
    return [i for i in ids if isinstance(i, int)] if isinstance(ids, list) else []


def _serial(text: Any) -> str | None:
    try:
        return parse_code(str(text)).serial.value
    except CodeError:
        return None


def _as_epcis(
    event_id: str, kind: str, at: datetime, payload: dict[str, Any], by_id: list[str]
) -> dict[str, Any]:
    """One hub event as EPCIS (``by_id``: the serials of its ``code_ids``). Every applied
    event of a projected type gets one, so none is looked at again by the next query."""
    urn = f"urn:uuid:{event_id}"
    if kind == "commission":
        serial = _serial(payload.get("code"))
        return mapping.commissioning_event(urn, at, [serial] if serial else [], payload.get("lot"))
    if kind == "aggregate":
        parent = _serial(payload.get("parent"))
        children = [c for c in map(_serial, payload.get("children", ())) if c is not None]
        if parent is not None and children:
            return mapping.packing_event(urn, at, parent, children)
        return mapping.observation_event(urn, at, [], "packing")
    if kind == "shipping":
        activated = payload.get("result", {}).get("activated")
        serials = [str(s) for s in activated] if isinstance(activated, list) else by_id
        return mapping.shipping_event(urn, at, list(dict.fromkeys(serials)))
    if kind == "receiving":
        return mapping.observation_event(urn, at, by_id, "receiving", "in_progress")
    if kind == "unshipping":
        return mapping.observation_event(urn, at, by_id, "void_shipping", "in_progress")
    serial = _serial(payload.get("code"))  # inspecting
    return mapping.observation_event(urn, at, [serial] if serial else [], "inspecting")


# Queries ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Naming:
    """How hub codes are written in the answer."""

    form: EpcFormat
    resolver: str
    company_prefix_length: int


async def query_events(
    session: AsyncSession, query: EventQuery, naming: Naming
) -> tuple[list[dict[str, Any]], Position | None]:
    """One page of events matching ``query``, rendered, and the position after it (None
    when this is the last page)."""
    statement = select(EpcisEvent)
    if query.event_types:
        statement = statement.where(EpcisEvent.type.in_(query.event_types))
    if query.ge_event_time is not None:
        statement = statement.where(EpcisEvent.event_time >= query.ge_event_time)
    if query.lt_event_time is not None:
        statement = statement.where(EpcisEvent.event_time < query.lt_event_time)
    if query.biz_steps:
        statement = statement.where(EpcisEvent.biz_step.in_(query.biz_steps))
    for match in query.matches:
        conditions = []
        if match.keys:
            keys = list(match.keys)
            ssccs = [k for k in keys if len(k) == 18 and k.isdigit()]
            if ssccs:  # a logistic unit is indexed by its serial, whichever way it is named
                keys += list(await session.scalars(select(Code.serial).where(Code.sscc.in_(ssccs))))
            conditions.append(EpcisEventEpc.key.in_(keys))
        if match.gtins:
            conditions.append(EpcisEventEpc.gtin.in_(match.gtins))
        statement = statement.where(
            EpcisEvent.id.in_(
                select(EpcisEventEpc.event).where(
                    EpcisEventEpc.role.in_(match.roles), or_(*conditions)
                )
            )
        )
    if query.after is not None:
        after = query.after
        statement = statement.where(
            or_(
                EpcisEvent.event_time > after.event_time,
                and_(EpcisEvent.event_time == after.event_time, EpcisEvent.id > after.id),
            )
        )
    statement = statement.order_by(EpcisEvent.event_time, EpcisEvent.id).limit(query.per_page + 1)
    rows = list(await session.scalars(statement))
    more = len(rows) > query.per_page
    rows = rows[: query.per_page]
    names = await _names(session, rows, naming)
    events = [mapping.render(r.document, names, _utc(r.record_time)) for r in rows]
    last = rows[-1] if rows and more else None
    return events, None if last is None else Position(_utc(last.event_time), last.id)


async def _names(
    session: AsyncSession, rows: Sequence[EpcisEvent], naming: Naming
) -> dict[str, str]:
    serials = sorted({s for r in rows for s in mapping.serials_in(r.document)})
    facts = await _facts(session, serials)
    missing = _Facts(None, None)
    return {
        serial: render_code(
            serial,
            facts.get(serial, missing).gtin,
            form=naming.form,
            resolver=naming.resolver,
            company_prefix_length=naming.company_prefix_length,
            sscc=facts.get(serial, missing).sscc,
        )
        for serial in serials
    }

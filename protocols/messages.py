"""MQTT message types with strict parsing.

Every payload is a UTF-8 JSON object with ``schema`` (the version) and ``type``. Parsing
rejects an unknown version, a missing or unknown field, a wrong type and an oversized
payload or batch, each with its own exception that says what was expected and what was found.
Times are ISO 8601 with a UTC offset.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, ClassVar, TypeVar

from protocols.errors import (
    FieldTypeError,
    MessageDecodeError,
    MessageError,
    MessageVersionError,
    MissingFieldError,
    OversizedMessageError,
    TopicError,
    UnknownFieldError,
)
from protocols.topics import check_station_id

SCHEMA_VERSION = 1
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_BATCH_EVENTS = 500
MAX_ACK_IDS = 2000  # ids + rejected in one ack; the hub splits larger acks
MAX_CHILDREN = 1000
MAX_CODE_TEXT = 512
MAX_REASON = 300

T = TypeVar("T")


def now() -> datetime:
    return datetime.now(UTC)


def new_event_id() -> str:
    return str(uuid.uuid4())


class _Fields:
    """Reads fields off one JSON object and remembers which were read, to reject the rest."""

    def __init__(self, obj: object, where: str) -> None:
        if not isinstance(obj, dict):
            raise FieldTypeError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        self.obj: dict[str, Any] = obj
        self.where = where
        self.seen: set[str] = set()

    def _get(self, name: str, required: bool) -> Any:
        self.seen.add(name)
        if name not in self.obj or self.obj[name] is None:
            if required:
                raise MissingFieldError(f"{self.where}: missing required field {name!r}")
            return None
        return self.obj[name]

    def _typed(self, name: str, kind: type[T], label: str, required: bool) -> T | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
            raise FieldTypeError(
                f"{self.where}: field {name!r} expected {label}, got {type(value).__name__} "
                f"{_short(value)}"
            )
        return value

    def text(self, name: str, *, max_len: int = 200) -> str:
        value = self._typed(name, str, "a string", True)
        assert value is not None
        return self._check_len(name, value, max_len)

    def opt_text(self, name: str, *, max_len: int = 200) -> str | None:
        value = self._typed(name, str, "a string", False)
        return None if value is None else self._check_len(name, value, max_len)

    def _check_len(self, name: str, value: str, max_len: int) -> str:
        if not value or len(value) > max_len:
            raise FieldTypeError(
                f"{self.where}: field {name!r} expected 1-{max_len} characters, got {len(value)}"
            )
        return value

    def integer(self, name: str) -> int:
        value = self._typed(name, int, "an integer", True)
        assert value is not None
        return value

    def items(self, name: str, *, max_items: int, required: bool = True) -> list[Any]:
        value = self._typed(name, list, "a list", required)
        if value is None:
            return []
        if len(value) > max_items:
            raise OversizedMessageError(
                f"{self.where}: field {name!r} expected at most {max_items} entries, "
                f"got {len(value)}"
            )
        return value

    def event_id(self, name: str) -> str:
        return check_event_id(self.text(name, max_len=36), f"{self.where}: field {name!r}")

    def timestamp(self, name: str) -> datetime:
        return parse_time(self.text(name, max_len=40), f"{self.where}: field {name!r}")

    def choice(self, name: str, options: tuple[str, ...]) -> str:
        value = self.text(name)
        if value not in options:
            raise FieldTypeError(
                f"{self.where}: field {name!r} expected one of {', '.join(options)}, got {value!r}"
            )
        return value

    def done(self) -> None:
        extra = sorted(set(self.obj) - self.seen)
        if extra:
            raise UnknownFieldError(f"{self.where}: unknown field(s) {', '.join(extra)}")


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_event_id(value: str, where: str = "event id") -> str:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise FieldTypeError(f"{where} expected a UUID, got {_short(value)}") from None
    if str(parsed) != value:
        raise FieldTypeError(f"{where} expected a lower-case hyphenated UUID, got {value!r}")
    return value


EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2100, 1, 1, tzinfo=UTC)


def parse_time(value: str, where: str = "time") -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FieldTypeError(f"{where} expected an ISO 8601 time, got {_short(value)}") from None
    if parsed.tzinfo is None:
        raise FieldTypeError(f"{where} expected a UTC offset in {value!r}")
    # Every receiver converts to UTC and stores the time: 0001-01-01T00:00+01:00 would
    # overflow there, and a clock decades off is a broken clock, not an event time.
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST_TIME <= utc < LATEST_TIME:
        raise FieldTypeError(
            f"{where} expected a time from {EARLIEST_TIME.year} to {LATEST_TIME.year - 1}, "
            f"got {_short(value)}"
        )
    return parsed


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _load(payload: bytes, expected_type: str) -> _Fields:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise OversizedMessageError(
            f"Payload of {len(payload)} bytes: expected at most {MAX_PAYLOAD_BYTES}"
        )
    try:
        obj = json.loads(payload.decode("utf-8"))
    # ValueError covers UnicodeDecodeError, JSONDecodeError and an integer literal past the
    # int/str digit limit; deep nesting ("[[[[...") raises RecursionError.
    except (ValueError, RecursionError) as exc:
        raise MessageDecodeError(f"Payload is not UTF-8 JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise MessageDecodeError(f"Payload expected a JSON object, got {type(obj).__name__}")
    fields = _Fields(obj, expected_type)
    version = fields._get("schema", True)
    # True == 1 and 1.0 == 1 in Python: only the JSON integer 1 names version 1.
    if type(version) is not int or version != SCHEMA_VERSION:
        raise MessageVersionError(
            f"{expected_type}: unsupported schema version {_short(version)}, "
            f"expected {SCHEMA_VERSION}"
        )
    found = fields._get("type", True)
    if found != expected_type:
        raise FieldTypeError(f"Message type expected {expected_type!r}, got {_short(found)}")
    return fields


def _station(fields: _Fields) -> str:
    station_id = fields.text("station_id", max_len=64)
    try:
        return check_station_id(station_id)
    except TopicError as exc:
        raise FieldTypeError(f"{fields.where}: {exc}") from None


def _dump(obj: Mapping[str, Any]) -> bytes:
    payload = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    # Refuse here what every receiver would refuse, so the sender learns it at once instead
    # of publishing a message that is rejected on every retry.
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise OversizedMessageError(
            f"Payload of {len(payload)} bytes: expected at most {MAX_PAYLOAD_BYTES}"
        )
    return payload


@dataclass(frozen=True)
class CommissionEvent:
    """A code was read on the line and bound to the running work order."""

    TYPE: ClassVar[str] = "commission"
    id: str
    at: datetime
    code: str  # the text as read (URL, element string or serial); the hub parses it
    work_order: str | None = None
    sku: str | None = None
    lot: str | None = None
    # What else the work order binds at coding time (seed 002), carried for the record.
    production_date: str | None = None
    line: str | None = None
    shift: str | None = None
    operator: str | None = None

    _OPTIONAL: ClassVar[tuple[str, ...]] = (
        "work_order",
        "sku",
        "lot",
        "production_date",
        "line",
        "shift",
        "operator",
    )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE, "id": self.id, "at": format_time(self.at)}
        out["code"] = self.code
        for name in self._OPTIONAL:
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_fields(cls, f: _Fields) -> CommissionEvent:
        return cls(
            id=f.event_id("id"),
            at=f.timestamp("at"),
            code=f.text("code", max_len=MAX_CODE_TEXT),
            work_order=f.opt_text("work_order", max_len=64),
            sku=f.opt_text("sku", max_len=64),
            lot=f.opt_text("lot", max_len=64),
            production_date=f.opt_text("production_date", max_len=10),
            line=f.opt_text("line", max_len=64),
            shift=f.opt_text("shift", max_len=32),
            operator=f.opt_text("operator", max_len=64),
        )


@dataclass(frozen=True)
class AggregateEvent:
    """Children (items or cases) were packed into a parent (case or pallet)."""

    TYPE: ClassVar[str] = "aggregate"
    id: str
    at: datetime
    parent: str
    children: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "id": self.id,
            "at": format_time(self.at),
            "parent": self.parent,
            "children": list(self.children),
        }

    @classmethod
    def from_fields(cls, f: _Fields) -> AggregateEvent:
        children = f.items("children", max_items=MAX_CHILDREN)
        for i, child in enumerate(children):
            if not isinstance(child, str) or not 0 < len(child) <= MAX_CODE_TEXT:
                raise FieldTypeError(
                    f"{f.where}: children[{i}] expected a code string, got {_short(child)}"
                )
        return cls(
            id=f.event_id("id"),
            at=f.timestamp("at"),
            parent=f.text("parent", max_len=MAX_CODE_TEXT),
            children=tuple(children),
        )


# Why a line rejected an item (RejectEvent.reason).
REJECT_REASONS = (
    "no_read",  # nothing readable on the item
    "duplicate",  # its code was commissioned before (this run, or the hub said so)
    "foreign",  # what it carries is no code of ours
    "wrong_product",  # a code of another product than the work order's
    "multiple_codes",  # two different codes of ours on one item
    "no_work_order",  # the station has no work order: it commissions nothing
    "line_stopped",  # an alarm stops the line (e.g. the outbox is full)
)
MAX_READS_PER_ITEM = 8


@dataclass(frozen=True)
class RejectEvent:
    """The line pushed an item off (or, in manual mode, refused a scan): why, and what was read.
    A record, no change of any code's state."""

    TYPE: ClassVar[str] = "reject"
    id: str
    at: datetime
    item: int  # the item's number on this station's line (photo-eye count, or scan count)
    reason: str  # one of REJECT_REASONS
    codes: tuple[str, ...] = ()  # texts read on the item, if any
    work_order: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.TYPE,
            "id": self.id,
            "at": format_time(self.at),
            "item": self.item,
            "reason": self.reason,
            "codes": list(self.codes),
        }
        if self.work_order is not None:
            out["work_order"] = self.work_order
        return out

    @classmethod
    def from_fields(cls, f: _Fields) -> RejectEvent:
        codes = f.items("codes", max_items=MAX_READS_PER_ITEM)
        for i, code in enumerate(codes):
            if not isinstance(code, str) or not 0 < len(code) <= MAX_CODE_TEXT:
                raise FieldTypeError(
                    f"{f.where}: codes[{i}] expected a code string, got {_short(code)}"
                )
        item = f.integer("item")
        if item < 0:
            raise FieldTypeError(f"{f.where}: field 'item' expected >= 0, got {item}")
        return cls(
            id=f.event_id("id"),
            at=f.timestamp("at"),
            item=item,
            reason=f.choice("reason", REJECT_REASONS),
            codes=tuple(codes),
            work_order=f.opt_text("work_order", max_len=64),
        )


StationEvent = CommissionEvent | AggregateEvent | RejectEvent
_EVENT_TYPES: dict[str, Callable[[_Fields], StationEvent]] = {
    CommissionEvent.TYPE: CommissionEvent.from_fields,
    AggregateEvent.TYPE: AggregateEvent.from_fields,
    RejectEvent.TYPE: RejectEvent.from_fields,
}


def parse_event(obj: object, where: str = "event") -> StationEvent:
    """Strictly parse one event given as a decoded JSON object (``as_dict()`` output)."""
    fields = _Fields(obj, where)
    kind = fields.choice("type", tuple(_EVENT_TYPES))
    event = _EVENT_TYPES[kind](fields)
    fields.done()
    return event


@dataclass(frozen=True)
class EventBatch:
    """Station -> hub on the ``events`` channel: a batch of events, each with its own id."""

    TYPE: ClassVar[str] = "events"
    station_id: str
    sent_at: datetime
    events: tuple[StationEvent, ...]

    def to_json(self) -> bytes:
        if len(self.events) > MAX_BATCH_EVENTS:
            raise OversizedMessageError(
                f"Batch of {len(self.events)} events: expected at most {MAX_BATCH_EVENTS}"
            )
        return _dump(
            {
                "schema": SCHEMA_VERSION,
                "type": self.TYPE,
                "station_id": self.station_id,
                "sent_at": format_time(self.sent_at),
                "events": [e.as_dict() for e in self.events],
            }
        )

    @classmethod
    def parse(cls, payload: bytes) -> EventBatch:
        """Strict: any invalid event makes the whole payload invalid."""
        batch, invalid = cls.parse_each(payload)
        if invalid:
            raise invalid[0].error
        return batch

    @classmethod
    def parse_each(cls, payload: bytes) -> tuple[EventBatch, list[InvalidEvent]]:
        """The envelope strictly, each event on its own: one bad event does not poison the
        good events beside it. Returns the valid events and, for each invalid one, its id
        (when it has a valid one) and the error."""
        f = _load(payload, cls.TYPE)
        station_id = _station(f)
        sent_at = f.timestamp("sent_at")
        raw_events = f.items("events", max_items=MAX_BATCH_EVENTS)
        f.done()
        events: list[StationEvent] = []
        invalid: list[InvalidEvent] = []
        for i, raw in enumerate(raw_events):
            try:
                events.append(parse_event(raw, f"events[{i}]"))
            except MessageError as exc:
                invalid.append(InvalidEvent(_readable_id(raw), exc))
        return cls(station_id=station_id, sent_at=sent_at, events=tuple(events)), invalid


@dataclass(frozen=True)
class InvalidEvent:
    """An event of a batch that does not parse; ``id`` is None when it has no valid id."""

    id: str | None
    error: MessageError


def _readable_id(raw: object) -> str | None:
    value = raw.get("id") if isinstance(raw, dict) else None
    if not isinstance(value, str):
        return None
    try:
        return check_event_id(value)
    except MessageError:
        return None


@dataclass(frozen=True)
class Rejection:
    id: str
    reason: str


@dataclass(frozen=True)
class Ack:
    """Hub -> station on the ``ack`` channel, sent only after the events' transaction commits.

    ``ids`` were applied; ``rejected`` were durably recorded but refused (with a reason).
    Either way the station may delete them from its outbox.
    """

    TYPE: ClassVar[str] = "ack"
    station_id: str
    ids: tuple[str, ...]
    rejected: tuple[Rejection, ...] = ()

    @property
    def all_ids(self) -> tuple[str, ...]:
        return self.ids + tuple(r.id for r in self.rejected)

    def to_json(self) -> bytes:
        return _dump(
            {
                "schema": SCHEMA_VERSION,
                "type": self.TYPE,
                "station_id": self.station_id,
                "ids": list(self.ids),
                "rejected": [{"id": r.id, "reason": r.reason[:MAX_REASON]} for r in self.rejected],
            }
        )

    @classmethod
    def parse(cls, payload: bytes) -> Ack:
        f = _load(payload, cls.TYPE)
        station_id = _station(f)
        ids = f.items("ids", max_items=MAX_ACK_IDS)
        raw_rejected = f.items("rejected", max_items=MAX_ACK_IDS, required=False)
        f.done()
        for i, value in enumerate(ids):
            if not isinstance(value, str):
                raise FieldTypeError(f"ack: ids[{i}] expected a string, got {_short(value)}")
            check_event_id(value, f"ack: ids[{i}]")
        rejected = []
        for i, raw in enumerate(raw_rejected):
            rf = _Fields(raw, f"ack: rejected[{i}]")
            rejected.append(Rejection(rf.event_id("id"), rf.text("reason", max_len=MAX_REASON)))
            rf.done()
        return cls(station_id=station_id, ids=tuple(ids), rejected=tuple(rejected))


STATION_STATES = ("online", "offline")
MAX_STATUS_COUNTERS = 64


@dataclass(frozen=True)
class Status:
    """Station -> all on the retained ``status`` channel; the broker sends the offline will."""

    TYPE: ClassVar[str] = "status"
    station_id: str
    state: str
    at: datetime
    detail: str | None = None
    # Heartbeat: the station's counters (frames, fps, reads, rejects by reason, outbox depth...)
    # and its active alarms.
    counters: tuple[tuple[str, float], ...] = ()
    alarms: tuple[str, ...] = ()

    def to_json(self) -> bytes:
        out: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "type": self.TYPE,
            "station_id": self.station_id,
            "state": self.state,
            "at": format_time(self.at),
        }
        if self.detail is not None:
            out["detail"] = self.detail
        if self.counters:
            out["counters"] = dict(self.counters)
        if self.alarms:
            out["alarms"] = list(self.alarms)
        return _dump(out)

    @classmethod
    def parse(cls, payload: bytes) -> Status:
        f = _load(payload, cls.TYPE)
        raw_counters = f._typed("counters", dict, "an object", False) or {}
        if len(raw_counters) > MAX_STATUS_COUNTERS:
            raise OversizedMessageError(
                f"{f.where}: field 'counters' expected at most {MAX_STATUS_COUNTERS} entries, "
                f"got {len(raw_counters)}"
            )
        counters = []
        for name, value in raw_counters.items():
            if (
                not 0 < len(name) <= 64
                or isinstance(value, bool)
                or not isinstance(value, int | float)
            ):
                raise FieldTypeError(
                    f"{f.where}: counters expected short names with numbers, got "
                    f"{_short(name)}: {_short(value)}"
                )
            counters.append((name, float(value)))
        alarms = f.items("alarms", max_items=MAX_STATUS_COUNTERS, required=False)
        for alarm in alarms:
            if not isinstance(alarm, str) or not 0 < len(alarm) <= 64:
                raise FieldTypeError(f"{f.where}: alarms expected short names, got {_short(alarm)}")
        out = cls(
            station_id=_station(f),
            state=f.choice("state", STATION_STATES),
            at=f.timestamp("at"),
            detail=f.opt_text("detail", max_len=MAX_REASON),
            counters=tuple(counters),
            alarms=tuple(alarms),
        )
        f.done()
        return out


@dataclass(frozen=True)
class PoolRange:
    """Codes ``first``..``last`` (卡序号, inclusive) of generation batch ``batch``."""

    batch: int
    first: int
    last: int

    def as_dict(self) -> dict[str, int]:
        return {"batch": self.batch, "first": self.first, "last": self.last}

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    @classmethod
    def from_fields(cls, f: _Fields) -> PoolRange:
        out = cls(batch=f.integer("batch"), first=f.integer("first"), last=f.integer("last"))
        f.done()
        if out.batch < 1 or out.first < 1 or out.last < out.first:
            raise FieldTypeError(
                f"{f.where}: expected batch >= 1 and 1 <= first <= last, got {out.as_dict()}"
            )
        return out


MAX_POOL_RANGES = 100


@dataclass(frozen=True)
class WorkOrder:
    """What the line is producing now: product and lot that commissioned codes are bound to,
    and what seed 002 binds at coding time (date, line, shift, operator), with the code pool
    allocated to the line. Only id, sku and lot are required."""

    id: str
    sku: str
    lot: str
    gtin: str | None = None  # the product's GTIN-14: a code of another GTIN is wrong product
    production_date: str | None = None  # YYYY-MM-DD
    line: str | None = None
    shift: str | None = None
    operator: str | None = None
    pool: tuple[PoolRange, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "sku": self.sku, "lot": self.lot}
        for name in ("gtin", "production_date", "line", "shift", "operator"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.pool:
            out["pool"] = [r.as_dict() for r in self.pool]
        return out

    @classmethod
    def from_dict(cls, obj: object) -> WorkOrder:
        """Strictly parse ``as_dict()`` output (e.g. a stored work order)."""
        return cls.from_fields(_Fields(obj, "work_order"))

    @classmethod
    def from_fields(cls, f: _Fields) -> WorkOrder:
        raw_pool = f.items("pool", max_items=MAX_POOL_RANGES, required=False)
        gtin = f.opt_text("gtin", max_len=14)
        if gtin is not None and not (gtin.isdigit() and len(gtin) == 14):
            raise FieldTypeError(f"{f.where}: field 'gtin' expected 14 digits, got {gtin!r}")
        day = f.opt_text("production_date", max_len=10)
        if day is not None:
            try:
                date.fromisoformat(day)
            except ValueError:
                raise FieldTypeError(
                    f"{f.where}: field 'production_date' expected YYYY-MM-DD, got {day!r}"
                ) from None
        out = cls(
            id=f.text("id", max_len=64),
            sku=f.text("sku", max_len=64),
            lot=f.text("lot", max_len=64),
            gtin=gtin,
            production_date=day,
            line=f.opt_text("line", max_len=64),
            shift=f.opt_text("shift", max_len=32),
            operator=f.opt_text("operator", max_len=64),
            pool=tuple(
                PoolRange.from_fields(_Fields(r, f"{f.where}: pool[{i}]"))
                for i, r in enumerate(raw_pool)
            ),
        )
        f.done()
        return out


COMMANDS = ("start", "stop", "work_order")


@dataclass(frozen=True)
class Command:
    """Hub -> station on the ``command`` channel."""

    TYPE: ClassVar[str] = "command"
    station_id: str
    command: str
    id: str = field(default_factory=new_event_id)
    work_order: WorkOrder | None = None

    def to_json(self) -> bytes:
        out: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "type": self.TYPE,
            "station_id": self.station_id,
            "id": self.id,
            "command": self.command,
        }
        if self.work_order is not None:
            out["work_order"] = self.work_order.as_dict()
        return _dump(out)

    @classmethod
    def parse(cls, payload: bytes) -> Command:
        f = _load(payload, cls.TYPE)
        station_id = _station(f)
        command_id = f.event_id("id")
        command = f.choice("command", COMMANDS)
        raw_order = f._get("work_order", command == "work_order")
        f.done()
        order = (
            None if raw_order is None else WorkOrder.from_fields(_Fields(raw_order, "work_order"))
        )
        return cls(station_id=station_id, command=command, id=command_id, work_order=order)

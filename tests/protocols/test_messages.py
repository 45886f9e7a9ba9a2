"""MQTT messages: round trips, the exact wire format and strict parsing with exact errors."""

from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import (
    FieldTypeError,
    MessageDecodeError,
    MessageError,
    MessageVersionError,
    MissingFieldError,
    OversizedMessageError,
    UnknownFieldError,
)
from protocols.messages import (
    MAX_BATCH_EVENTS,
    MAX_CHILDREN,
    MAX_PAYLOAD_BYTES,
    MAX_REASON,
    Ack,
    AggregateEvent,
    Command,
    CommissionEvent,
    EventBatch,
    Rejection,
    Status,
    WorkOrder,
    format_time,
    new_event_id,
    now,
    parse_event,
    parse_time,
)

ID1 = "0b6f1e4c-4f1e-4a7e-9d0c-2f5e8a1b3c4d"
ID2 = "5a3c2b1d-8e7f-4a6b-9c5d-1e2f3a4b5c6d"
ID2_HEX = ID2.replace("-", "")
T0 = datetime(2024, 5, 1, 8, 0, 0, 123000, tzinfo=UTC)
T0_TEXT = "2024-05-01T08:00:00.123+00:00"
CODE = "https://y.example/c/0D3MFH370575MWHP8A43"
PARENT = "https://y.example/01/09506000134352/21/07X69E2D5D1J29ZZMRMD"

COMMISSION = CommissionEvent(id=ID1, at=T0, code=CODE, work_order="WO-1", sku="SKU-9", lot="L7")
AGGREGATE = AggregateEvent(id=ID2, at=T0, parent=PARENT, children=(CODE, "0BXDRTD8BVR22MD05MDF"))
BATCH = EventBatch(station_id="line-1", sent_at=T0, events=(COMMISSION, AGGREGATE))

Message = type[EventBatch] | type[Ack] | type[Status] | type[Command]


def as_dict(payload: bytes) -> dict[str, Any]:
    obj = json.loads(payload)
    assert isinstance(obj, dict)
    return obj


# --- round trips and the wire format ---


def test_event_batch_wire_format() -> None:
    # The exact bytes are the contract between station and hub: changing them is a new version.
    assert BATCH.to_json() == (
        b'{"schema":1,"type":"events","station_id":"line-1",'
        b'"sent_at":"2024-05-01T08:00:00.123+00:00","events":['
        b'{"type":"commission","id":"0b6f1e4c-4f1e-4a7e-9d0c-2f5e8a1b3c4d",'
        b'"at":"2024-05-01T08:00:00.123+00:00",'
        b'"code":"https://y.example/c/0D3MFH370575MWHP8A43",'
        b'"work_order":"WO-1","sku":"SKU-9","lot":"L7"},'
        b'{"type":"aggregate","id":"5a3c2b1d-8e7f-4a6b-9c5d-1e2f3a4b5c6d",'
        b'"at":"2024-05-01T08:00:00.123+00:00",'
        b'"parent":"https://y.example/01/09506000134352/21/07X69E2D5D1J29ZZMRMD",'
        b'"children":["https://y.example/c/0D3MFH370575MWHP8A43","0BXDRTD8BVR22MD05MDF"]}]}'
    )


@pytest.mark.parametrize(
    "batch",
    [
        BATCH,
        EventBatch("line-1", T0, ()),
        EventBatch("l", T0, (CommissionEvent(id=ID1, at=T0, code="x"),)),
        EventBatch("L.2_b-3", T0, (AggregateEvent(id=ID2, at=T0, parent="p", children=()),)),
        EventBatch("line-1", T0, (COMMISSION, COMMISSION, AGGREGATE)),
    ],
)
def test_event_batch_round_trips(batch: EventBatch) -> None:
    assert EventBatch.parse(batch.to_json()) == batch


@pytest.mark.parametrize("event", [COMMISSION, AGGREGATE])
def test_parse_event_round_trips_one_event(event: CommissionEvent | AggregateEvent) -> None:
    assert parse_event(event.as_dict()) == event


@pytest.mark.parametrize(
    ("obj", "error", "message"),
    [
        ([], FieldTypeError, "event: expected a JSON object, got list"),
        (
            {"type": "sneeze"},
            FieldTypeError,
            "event: field 'type' expected one of commission, aggregate, reject, got 'sneeze'",
        ),
        ({**COMMISSION.as_dict(), "extra": 1}, UnknownFieldError, "event: unknown field(s) extra"),
    ],
)
def test_parse_event_errors(obj: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        parse_event(obj)
    assert str(info.value) == message


def test_optional_commission_fields_are_omitted_not_null() -> None:
    event = CommissionEvent(id=ID1, at=T0, code=CODE)
    payload = as_dict(EventBatch("line-1", T0, (event,)).to_json())
    assert payload["events"] == [{"type": "commission", "id": ID1, "at": T0_TEXT, "code": CODE}]


@pytest.mark.parametrize(
    "ack",
    [
        Ack(station_id="line-1", ids=(ID1, ID2)),
        Ack(station_id="line-1", ids=(), rejected=(Rejection(ID1, "unknown code"),)),
        Ack(station_id="line-1", ids=(ID2,), rejected=(Rejection(ID1, "void: scrapped label"),)),
        Ack(station_id="line-1", ids=()),
    ],
)
def test_ack_round_trips(ack: Ack) -> None:
    assert Ack.parse(ack.to_json()) == ack
    assert ack.all_ids == ack.ids + tuple(r.id for r in ack.rejected)


def test_ack_wire_format_and_reason_truncation() -> None:
    ack = Ack("line-1", (ID1,), (Rejection(ID2, "x" * (MAX_REASON + 50)),))
    assert as_dict(ack.to_json()) == {
        "schema": 1,
        "type": "ack",
        "station_id": "line-1",
        "ids": [ID1],
        "rejected": [{"id": ID2, "reason": "x" * MAX_REASON}],
    }
    assert Ack.parse(ack.to_json()).rejected == (Rejection(ID2, "x" * MAX_REASON),)


def test_ack_without_rejected_field_parses() -> None:
    payload = json.dumps({"schema": 1, "type": "ack", "station_id": "s", "ids": [ID1]})
    assert Ack.parse(payload.encode()) == Ack("s", (ID1,))


@pytest.mark.parametrize(
    "status",
    [
        Status(station_id="line-1", state="online", at=T0),
        Status(station_id="line-1", state="offline", at=T0, detail="last will"),
        Status(station_id="line-1", state="online", at=T0, detail="相机 1 正常"),
    ],
)
def test_status_round_trips(status: Status) -> None:
    assert Status.parse(status.to_json()) == status


def test_status_wire_format() -> None:
    assert Status("line-1", "online", T0).to_json() == (
        b'{"schema":1,"type":"status","station_id":"line-1","state":"online",'
        b'"at":"2024-05-01T08:00:00.123+00:00"}'
    )


@pytest.mark.parametrize(
    "command",
    [
        Command(station_id="line-1", command="start", id=ID1),
        Command(station_id="line-1", command="stop", id=ID2),
        Command(
            station_id="line-1",
            command="work_order",
            id=ID1,
            work_order=WorkOrder(id="WO-1", sku="SKU-9", lot="L7"),
        ),
        # A work order may ride along with start, too.
        Command(station_id="line-1", command="start", id=ID1, work_order=WorkOrder("a", "b", "c")),
    ],
)
def test_command_round_trips(command: Command) -> None:
    assert Command.parse(command.to_json()) == command


def test_command_wire_format_and_default_id() -> None:
    command = Command("line-1", "work_order", work_order=WorkOrder("WO-1", "SKU-9", "L7"))
    assert as_dict(command.to_json()) == {
        "schema": 1,
        "type": "command",
        "station_id": "line-1",
        "id": command.id,
        "command": "work_order",
        "work_order": {"id": "WO-1", "sku": "SKU-9", "lot": "L7"},
    }
    assert uuid.UUID(command.id).version == 4
    assert Command("line-1", "stop").id != command.id


def test_new_event_ids_are_lower_case_uuid4() -> None:
    ids = {new_event_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(
        re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", i)
        for i in ids
    )


def test_times_travel_in_utc_with_millisecond_precision() -> None:
    beijing = timezone(timedelta(hours=8))
    moment = datetime(2024, 5, 1, 16, 0, 0, 123456, tzinfo=beijing)
    assert format_time(moment) == "2024-05-01T08:00:00.123+00:00"
    assert parse_time(format_time(moment)) == moment - timedelta(microseconds=456)
    assert parse_time("2024-05-01T16:00:00+08:00") == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert parse_time("2024-05-01T08:00:00Z") == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert now().tzinfo is UTC
    # Microseconds are cut on the wire: the event id, not the time, identifies an event.
    batch = EventBatch("s", moment, (CommissionEvent(id=ID1, at=moment, code="c"),))
    parsed = EventBatch.parse(batch.to_json())
    assert parsed.sent_at == moment.replace(microsecond=123000)
    assert parsed.sent_at.utcoffset() == timedelta(0)


# --- strict parsing: exact error class and message ---

EVENTS: dict[str, Any] = as_dict(BATCH.to_json())
ACK: dict[str, Any] = as_dict(Ack("line-1", (ID1,), (Rejection(ID2, "bad"),)).to_json())
STATUS: dict[str, Any] = as_dict(Status("line-1", "online", T0, "ok").to_json())
COMMAND: dict[str, Any] = as_dict(
    Command("line-1", "work_order", ID1, WorkOrder("WO-1", "SKU-9", "L7")).to_json()
)
DELETE = object()


def changed(base: dict[str, Any], path: tuple[str | int, ...], value: object) -> bytes:
    """The base message with one field replaced (or deleted), as JSON bytes."""
    obj = copy.deepcopy(base)
    target: Any = obj
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(obj, ensure_ascii=False).encode()


STATION_RULE = (
    "expected 1-64 characters of letters, digits, '_', '.', '-', starting with a letter or digit"
)

STRICT: list[tuple[Message, bytes, type[MessageError], str]] = [
    # not JSON, not UTF-8, not an object
    (
        EventBatch,
        b"{",
        MessageDecodeError,
        "Payload is not UTF-8 JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
    ),
    (
        EventBatch,
        b"",
        MessageDecodeError,
        "Payload is not UTF-8 JSON: Expecting value: line 1 column 1 (char 0)",
    ),
    (
        EventBatch,
        b'{"schema":"\xff"}',
        MessageDecodeError,
        "Payload is not UTF-8 JSON: 'utf-8' codec can't decode byte 0xff in position 11: "
        "invalid start byte",
    ),
    (Ack, b"[]", MessageDecodeError, "Payload expected a JSON object, got list"),
    (Status, b'"status"', MessageDecodeError, "Payload expected a JSON object, got str"),
    (Command, b"null", MessageDecodeError, "Payload expected a JSON object, got NoneType"),
    # schema version and message type
    (
        EventBatch,
        changed(EVENTS, ("schema",), 2),
        MessageVersionError,
        "events: unsupported schema version 2, expected 1",
    ),
    (
        EventBatch,
        changed(EVENTS, ("schema",), "1"),
        MessageVersionError,
        "events: unsupported schema version '1', expected 1",
    ),
    (
        Ack,
        changed(ACK, ("schema",), True),
        MessageVersionError,
        "ack: unsupported schema version True, expected 1",
    ),
    (
        Status,
        changed(STATUS, ("schema",), 1.0),
        MessageVersionError,
        "status: unsupported schema version 1.0, expected 1",
    ),
    (
        Command,
        changed(COMMAND, ("schema",), DELETE),
        MissingFieldError,
        "command: missing required field 'schema'",
    ),
    (
        EventBatch,
        changed(EVENTS, ("type",), "ack"),
        FieldTypeError,
        "Message type expected 'events', got 'ack'",
    ),
    (Ack, changed(ACK, ("type",), DELETE), MissingFieldError, "ack: missing required field 'type'"),
    # missing fields (absent or null)
    (
        EventBatch,
        changed(EVENTS, ("station_id",), DELETE),
        MissingFieldError,
        "events: missing required field 'station_id'",
    ),
    (
        EventBatch,
        changed(EVENTS, ("sent_at",), None),
        MissingFieldError,
        "events: missing required field 'sent_at'",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events",), DELETE),
        MissingFieldError,
        "events: missing required field 'events'",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 0, "code"), DELETE),
        MissingFieldError,
        "events[0]: missing required field 'code'",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 1, "children"), DELETE),
        MissingFieldError,
        "events[1]: missing required field 'children'",
    ),
    (
        Ack,
        changed(ACK, ("rejected", 0, "reason"), DELETE),
        MissingFieldError,
        "ack: rejected[0]: missing required field 'reason'",
    ),
    (
        Status,
        changed(STATUS, ("state",), DELETE),
        MissingFieldError,
        "status: missing required field 'state'",
    ),
    (
        Command,
        changed(COMMAND, ("id",), DELETE),
        MissingFieldError,
        "command: missing required field 'id'",
    ),
    (
        Command,
        changed(COMMAND, ("work_order",), DELETE),
        MissingFieldError,
        "command: missing required field 'work_order'",
    ),
    (
        Command,
        changed(COMMAND, ("work_order", "sku"), DELETE),
        MissingFieldError,
        "work_order: missing required field 'sku'",
    ),
    # unknown fields, top level and nested
    (
        EventBatch,
        changed(EVENTS, ("extra",), 1),
        UnknownFieldError,
        "events: unknown field(s) extra",
    ),
    (
        EventBatch,
        changed(as_dict(changed(EVENTS, ("zz",), 1)), ("aa",), 2),
        UnknownFieldError,
        "events: unknown field(s) aa, zz",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 0, "colour"), "red"),
        UnknownFieldError,
        "events[0]: unknown field(s) colour",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 1, "qty"), 2),
        UnknownFieldError,
        "events[1]: unknown field(s) qty",
    ),
    (
        Ack,
        changed(ACK, ("rejected", 0, "code"), "x"),
        UnknownFieldError,
        "ack: rejected[0]: unknown field(s) code",
    ),
    (
        Status,
        changed(STATUS, ("battery",), 80),
        UnknownFieldError,
        "status: unknown field(s) battery",
    ),
    (
        Command,
        changed(COMMAND, ("work_order", "qty"), 5),
        UnknownFieldError,
        "work_order: unknown field(s) qty",
    ),
    # wrong field types, including bool where int or str is expected
    (
        EventBatch,
        changed(EVENTS, ("station_id",), 5),
        FieldTypeError,
        "events: field 'station_id' expected a string, got int 5",
    ),
    (
        EventBatch,
        changed(EVENTS, ("station_id",), True),
        FieldTypeError,
        "events: field 'station_id' expected a string, got bool True",
    ),
    (
        EventBatch,
        changed(EVENTS, ("sent_at",), 1714550400),
        FieldTypeError,
        "events: field 'sent_at' expected a string, got int 1714550400",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events",), "x"),
        FieldTypeError,
        "events: field 'events' expected a list, got str 'x'",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events",), {"a": 1}),
        FieldTypeError,
        "events: field 'events' expected a list, got dict {'a': 1}",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 0), 5),
        FieldTypeError,
        "events[0]: expected a JSON object, got int",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 0, "type"), "scan"),
        FieldTypeError,
        "events[0]: field 'type' expected one of commission, aggregate, reject, got 'scan'",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 0, "code"), ""),
        FieldTypeError,
        "events[0]: field 'code' expected 1-512 characters, got 0",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 0, "code"), "c" * 513),
        FieldTypeError,
        "events[0]: field 'code' expected 1-512 characters, got 513",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 0, "work_order"), 7),
        FieldTypeError,
        "events[0]: field 'work_order' expected a string, got int 7",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 0, "sku"), False),
        FieldTypeError,
        "events[0]: field 'sku' expected a string, got bool False",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 1, "children"), "a"),
        FieldTypeError,
        "events[1]: field 'children' expected a list, got str 'a'",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 1, "children"), [CODE, 1]),
        FieldTypeError,
        "events[1]: children[1] expected a code string, got 1",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 1, "children"), [""]),
        FieldTypeError,
        "events[1]: children[0] expected a code string, got ''",
    ),
    (Ack, changed(ACK, ("ids",), [ID1, 5]), FieldTypeError, "ack: ids[1] expected a string, got 5"),
    (
        Ack,
        changed(ACK, ("ids",), [True]),
        FieldTypeError,
        "ack: ids[0] expected a string, got True",
    ),
    (
        Status,
        changed(STATUS, ("state",), "busy"),
        FieldTypeError,
        "status: field 'state' expected one of online, offline, got 'busy'",
    ),
    (
        Status,
        changed(STATUS, ("detail",), ""),
        FieldTypeError,
        "status: field 'detail' expected 1-300 characters, got 0",
    ),
    (
        Command,
        changed(COMMAND, ("command",), "reboot"),
        FieldTypeError,
        "command: field 'command' expected one of start, stop, work_order, got 'reboot'",
    ),
    (
        Command,
        changed(COMMAND, ("work_order",), "WO-1"),
        FieldTypeError,
        "work_order: expected a JSON object, got str",
    ),
    # event ids: UUIDs, lower case, hyphenated
    (
        EventBatch,
        changed(EVENTS, ("events", 0, "id"), "not-a-uuid"),
        FieldTypeError,
        "events[0]: field 'id' expected a UUID, got 'not-a-uuid'",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 0, "id"), ID1.upper()),
        FieldTypeError,
        f"events[0]: field 'id' expected a lower-case hyphenated UUID, got {ID1.upper()!r}",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 1, "id"), ID2_HEX),
        FieldTypeError,
        f"events[1]: field 'id' expected a lower-case hyphenated UUID, got {ID2_HEX!r}",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 1, "id"), f"urn:uuid:{ID2}"),
        FieldTypeError,
        "events[1]: field 'id' expected 1-36 characters, got 45",
    ),
    (Ack, changed(ACK, ("ids",), ["x"]), FieldTypeError, "ack: ids[0] expected a UUID, got 'x'"),
    (
        Ack,
        changed(ACK, ("rejected", 0, "id"), ID2.upper()),
        FieldTypeError,
        f"ack: rejected[0]: field 'id' expected a lower-case hyphenated UUID, got {ID2.upper()!r}",
    ),
    (
        Command,
        changed(COMMAND, ("id",), "1"),
        FieldTypeError,
        "command: field 'id' expected a UUID, got '1'",
    ),
    # times
    (
        EventBatch,
        changed(EVENTS, ("sent_at",), "2024-05-01T08:00:00"),
        FieldTypeError,
        "events: field 'sent_at' expected a UTC offset in '2024-05-01T08:00:00'",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 1, "at"), "2024-05-01 08:00"),
        FieldTypeError,
        "events[1]: field 'at' expected a UTC offset in '2024-05-01 08:00'",
    ),
    # Times that would overflow on conversion to UTC, or that only a broken clock gives.
    (
        EventBatch,
        changed(EVENTS, ("events", 0, "at"), "0001-01-01T00:00:00+01:00"),
        FieldTypeError,
        "events[0]: field 'at' expected a time from 2000 to 2099, got '0001-01-01T00:00:00+01:00'",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 0, "at"), "9999-12-31T23:59:59-01:00"),
        FieldTypeError,
        "events[0]: field 'at' expected a time from 2000 to 2099, got '9999-12-31T23:59:59-01:00'",
    ),
    (
        EventBatch,
        changed(EVENTS, ("sent_at",), "1970-01-01T00:00:00Z"),
        FieldTypeError,
        "events: field 'sent_at' expected a time from 2000 to 2099, got '1970-01-01T00:00:00Z'",
    ),
    (
        Status,
        changed(STATUS, ("at",), "yesterday"),
        FieldTypeError,
        "status: field 'at' expected an ISO 8601 time, got 'yesterday'",
    ),
    # station ids
    (
        EventBatch,
        changed(EVENTS, ("station_id",), "line 1"),
        FieldTypeError,
        f"events: Invalid station id 'line 1': {STATION_RULE}",
    ),
    (
        Ack,
        changed(ACK, ("station_id",), "line1\n"),
        FieldTypeError,
        f"ack: Invalid station id 'line1\\n': {STATION_RULE}",
    ),
    (
        Status,
        changed(STATUS, ("station_id",), "+"),
        FieldTypeError,
        f"status: Invalid station id '+': {STATION_RULE}",
    ),
    (
        Command,
        changed(COMMAND, ("station_id",), "s" * 65),
        FieldTypeError,
        "command: field 'station_id' expected 1-64 characters, got 65",
    ),
    # sizes
    (
        EventBatch,
        changed(EVENTS, ("events",), [EVENTS["events"][0]] * (MAX_BATCH_EVENTS + 1)),
        OversizedMessageError,
        "events: field 'events' expected at most 500 entries, got 501",
    ),
    (
        EventBatch,
        changed(EVENTS, ("events", 1, "children"), ["c"] * (MAX_CHILDREN + 1)),
        OversizedMessageError,
        "events[1]: field 'children' expected at most 1000 entries, got 1001",
    ),
    (
        Ack,
        changed(ACK, ("ids",), [ID1] * 2001),
        OversizedMessageError,
        "ack: field 'ids' expected at most 2000 entries, got 2001",
    ),
    (
        EventBatch,
        b" " * (MAX_PAYLOAD_BYTES + 1),
        OversizedMessageError,
        "Payload of 262145 bytes: expected at most 262144",
    ),
]


@pytest.mark.parametrize(("message", "payload", "error", "text"), STRICT)
def test_strict_parsing(
    message: Message, payload: bytes, error: type[MessageError], text: str
) -> None:
    with pytest.raises(MessageError) as info:
        message.parse(payload)
    assert type(info.value) is error
    assert str(info.value) == text


def padded(message: dict[str, Any], size: int) -> bytes:
    """A valid message padded with insignificant whitespace to exactly ``size`` bytes."""
    payload = json.dumps(message).encode()
    return payload[:-1] + b" " * (size - len(payload)) + b"}"


def test_payload_size_limit_is_inclusive() -> None:
    assert EventBatch.parse(padded(EVENTS, MAX_PAYLOAD_BYTES)) == BATCH
    with pytest.raises(OversizedMessageError) as info:
        EventBatch.parse(padded(EVENTS, MAX_PAYLOAD_BYTES + 1))
    assert str(info.value) == "Payload of 262145 bytes: expected at most 262144"


def test_batch_and_children_limits_are_inclusive() -> None:
    commission = CommissionEvent(id=ID1, at=T0, code=CODE)
    full = EventBatch("line-1", T0, (commission,) * MAX_BATCH_EVENTS)
    assert EventBatch.parse(full.to_json()) == full
    children = tuple(f"c{i}" for i in range(MAX_CHILDREN))
    pallet = EventBatch("line-1", T0, (AggregateEvent(ID2, T0, PARENT, children),))
    assert EventBatch.parse(pallet.to_json()) == pallet


def test_to_json_refuses_too_many_events() -> None:
    batch = EventBatch("line-1", T0, (COMMISSION,) * (MAX_BATCH_EVENTS + 1))
    with pytest.raises(OversizedMessageError) as info:
        batch.to_json()
    assert str(info.value) == "Batch of 501 events: expected at most 500"


def test_to_json_refuses_a_payload_no_receiver_would_accept() -> None:
    # Five full pallets of Digital Link URLs: within the event and children limits, but
    # about 330 kB. Publishing it would only get it rejected on every retry.
    children = tuple(f"{PARENT[:-4]}{i:04d}" for i in range(MAX_CHILDREN))
    pallets = tuple(AggregateEvent(new_event_id(), T0, PARENT, children) for _ in range(5))
    batch = EventBatch("line-1", T0, pallets)
    assert len(EventBatch("line-1", T0, pallets[:1]).to_json()) * 5 > MAX_PAYLOAD_BYTES
    with pytest.raises(OversizedMessageError) as info:
        batch.to_json()
    assert re.fullmatch(r"Payload of (\d+) bytes: expected at most 262144", str(info.value))
    assert EventBatch.parse(EventBatch("line-1", T0, pallets[:3]).to_json()).events == pallets[:3]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "recursion"),
        (b'{"schema":' + b"1" * 5000 + b"}", "4300"),
    ],
)
def test_hostile_json_is_a_decode_error(payload: bytes, reason: str) -> None:
    # Deep nesting raises RecursionError and a huge integer literal a plain ValueError inside
    # json: both must surface as MessageDecodeError, never escape as another exception.
    with pytest.raises(MessageDecodeError) as info:
        EventBatch.parse(payload)
    assert str(info.value).startswith("Payload is not UTF-8 JSON: ")
    assert reason in str(info.value)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
BASES: list[tuple[Message, dict[str, Any]]] = [
    (EventBatch, EVENTS),
    (Ack, ACK),
    (Status, STATUS),
    (Command, COMMAND),
]


def paths(obj: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out: list[tuple[str | int, ...]] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.append((*prefix, key))
            out.extend(paths(value, (*prefix, key)))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out.append((*prefix, i))
            out.extend(paths(value, (*prefix, i)))
    return out


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(BASES), st.data(), JSON_VALUES)
def test_any_field_replaced_by_any_json_gives_a_message_error(
    base: tuple[Message, dict[str, Any]], data: st.DataObject, value: object
) -> None:
    message, obj = base
    path = data.draw(st.sampled_from(paths(obj)))
    try:
        parsed = message.parse(changed(obj, path, value))
    except MessageError:
        return
    # Accepted: then it must survive its own round trip.
    assert type(parsed).parse(parsed.to_json()) == parsed


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([EventBatch, Ack, Status, Command]), st.binary(max_size=200))
def test_any_bytes_give_a_message_error(message: Message, payload: bytes) -> None:
    with pytest.raises(MessageError):
        message.parse(payload)


# --- hypothesis: any batch built from valid parts round-trips ---

# Lone surrogates are not text: they cannot be encoded as UTF-8.
CHARS = st.characters(exclude_categories=["Cs"])
TEXT = st.text(CHARS, min_size=1, max_size=40)
CODE_TEXT = st.text(CHARS, min_size=1, max_size=512)
SHORT = st.text(CHARS, min_size=1, max_size=64)
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
TIMES = st.builds(
    lambda dt, ms, tz: dt.replace(microsecond=ms * 1000, tzinfo=tz),
    st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30)),
    st.integers(0, 999),
    OFFSETS,
)
EVENT_IDS = st.uuids().map(str)
COMMISSIONS = st.builds(
    CommissionEvent,
    id=EVENT_IDS,
    at=TIMES,
    code=CODE_TEXT,
    work_order=st.none() | SHORT,
    sku=st.none() | SHORT,
    lot=st.none() | SHORT,
)
AGGREGATES = st.builds(
    AggregateEvent,
    id=EVENT_IDS,
    at=TIMES,
    parent=CODE_TEXT,
    children=st.lists(TEXT, max_size=30).map(tuple),
)
BATCHES = st.builds(
    EventBatch,
    station_id=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True),
    sent_at=TIMES,
    events=st.lists(COMMISSIONS | AGGREGATES, max_size=20).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(BATCHES)
def test_any_valid_event_batch_round_trips(batch: EventBatch) -> None:
    parsed = EventBatch.parse(batch.to_json())
    assert parsed == batch
    assert [type(e) for e in parsed.events] == [type(e) for e in batch.events]
    assert all(e.at.utcoffset() == timedelta(0) for e in parsed.events)

"""EPCIS 2.0 JSON-LD documents: checked against GS1's JSON schema, read into events, and
written (query results), always schema-valid.

The schema (``schema/EPCIS-JSON-Schema.json``, GS1's, licence beside it) is checked with
formats (``uri``, ``date-time``), so an event time without an offset or an EPC that is no
URI is refused with the path of the problem.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from jsonschema import Draft7Validator

from hub.epcis.errors import DocumentError

CONTEXT = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"
SCHEMA_VERSION = "2.0"
MAX_EVENTS = 1000  # per capture request (announced as GS1-EPCIS-Capture-Limit)
MAX_EPCS = 10_000  # identifiers in one event
SUPPORTED = ("ObjectEvent", "AggregationEvent", "TransformationEvent")
_CBV_PREFIXES = ("https://ref.gs1.org/cbv/BizStep-", "urn:epcglobal:cbv:bizstep:")
_LOT_KEYS = ("cbvmda:lotNumber", "urn:epcglobal:cbv:mda:lotNumber")
# The event's own identity is not part of its contents (nor when it was recorded).
_NOT_CONTENT = ("eventID", "recordTime", "@context")


@functools.cache
def schema() -> dict[str, Any]:
    text = resources.files("hub.epcis").joinpath("schema/EPCIS-JSON-Schema.json").read_text()
    return dict(json.loads(text))


@functools.cache
def _validator() -> Draft7Validator:
    return Draft7Validator(schema(), format_checker=Draft7Validator.FORMAT_CHECKER)


def schema_problems(document: Any, limit: int = 10) -> list[str]:
    """What makes ``document`` invalid against the EPCIS 2.0 JSON schema (empty: valid)."""
    problems = []
    for error in _validator().iter_errors(document):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
        problems.append(f"document{where}: {error.message[:200]}")
        if len(problems) >= limit:
            break
    return problems


def check_document(document: Any) -> list[dict[str, Any]]:
    """The event list of a capture document; DocumentError if it is no valid EPCIS 2.0
    document or holds more events than one request may."""
    if not isinstance(document, dict) or document.get("type") != "EPCISDocument":
        raise DocumentError("Expected an EPCIS 2.0 document: a JSON object with type EPCISDocument")
    events = document.get("epcisBody", {}).get("eventList")
    if isinstance(events, list) and len(events) > MAX_EVENTS:
        raise DocumentError(
            f"Too many events in one capture: expected at most {MAX_EVENTS}, got {len(events)}"
        )
    problems = schema_problems(document)
    if problems:
        raise DocumentError("Not a valid EPCIS 2.0 document: " + "; ".join(problems)[:2000])
    return list(events)


def biz_step_name(value: str | None) -> str | None:
    """The bare CBV name of a bizStep (``commissioning``), whichever way it is written; a
    bizStep outside the CBV is kept as its URI."""
    if value is None:
        return None
    for prefix in _CBV_PREFIXES:
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def content_digest(event: dict[str, Any]) -> str:
    """SHA-256 of an event's contents (keys sorted, without its id and record time): two
    captures of one event id with different digests are two different events."""
    contents = {k: v for k, v in event.items() if k not in _NOT_CONTENT}
    canonical = json.dumps(contents, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class CapturedEvent:
    """One event of a capture document, as far as the hub uses it."""

    index: int
    type: str
    event_id: str
    digest: str
    event_time: datetime
    action: str | None
    biz_step: str | None
    epcs: tuple[str, ...]
    parent: str | None
    children: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    lot: str | None
    raw: dict[str, Any]

    @property
    def label(self) -> str:
        return f"eventList[{self.index}] ({self.type} {self.event_id[:80]})"


def read_event(index: int, raw: dict[str, Any]) -> CapturedEvent:
    """A schema-valid event, read. Raises DocumentError for what the schema allows and the
    hub cannot take (a time outside 2000-2099, too many EPCs)."""
    digest = content_digest(raw)
    event_id = raw.get("eventID") or f"ni:///sha-256;{digest}?ver=CBV2.0"
    kind = str(raw.get("type"))
    where = f"eventList[{index}]"
    try:
        event_time = datetime.fromisoformat(str(raw["eventTime"]))
        if event_time.tzinfo is None:
            raise ValueError("no time zone offset")
        event_time = event_time.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise DocumentError(f"{where}.eventTime: {exc}") from None
    if not 2000 <= event_time.year <= 2099:
        raise DocumentError(
            f"{where}.eventTime: expected a time in 2000-2099, got {event_time.year}"
        )
    epcs = tuple(raw.get("epcList", ()))
    children = tuple(raw.get("childEPCs", ()))
    inputs = tuple(raw.get("inputEPCList", ()))
    outputs = tuple(raw.get("outputEPCList", ()))
    count = len(epcs) + len(children) + len(inputs) + len(outputs)
    if count > MAX_EPCS:
        raise DocumentError(f"{where}: expected at most {MAX_EPCS} EPCs, got {count}")
    ilmd = raw.get("ilmd") or {}
    lot = next((str(ilmd[k]) for k in _LOT_KEYS if k in ilmd), None)
    return CapturedEvent(
        index=index,
        type=kind,
        event_id=str(event_id),
        digest=digest,
        event_time=event_time,
        action=raw.get("action"),
        biz_step=biz_step_name(raw.get("bizStep")),
        epcs=epcs,
        parent=raw.get("parentID"),
        children=children,
        inputs=inputs,
        outputs=outputs,
        lot=lot[:64] if lot is not None else None,
        raw=raw,
    )


def format_time(moment: datetime) -> str:
    """An EPCIS time: UTC with milliseconds and a Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def query_document(events: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The EPCISQueryDocument answering a SimpleEventQuery with ``events``."""
    return {
        "@context": [CONTEXT],
        "type": "EPCISQueryDocument",
        "schemaVersion": SCHEMA_VERSION,
        "creationDate": format_time(now),
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": {"eventList": events},
            }
        },
    }


def capture_document(events: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """An EPCISDocument carrying ``events`` (exports, and examples)."""
    return {
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": SCHEMA_VERSION,
        "creationDate": format_time(now),
        "epcisBody": {"eventList": events},
    }

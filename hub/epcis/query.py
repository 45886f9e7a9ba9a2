"""The standard SimpleEventQuery parameters of ``GET /epcis/events``, and page tokens.

Lists are written either as repeated parameters or joined with ``|`` (EPCIS 2.0 REST
binding). A ``nextPageToken`` carries the position after the last event of a page and a
fingerprint of the filters, so a token used with other filters is refused instead of
silently skipping events.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hub.epcis.document import biz_step_name
from hub.epcis.errors import PageTokenError, QueryError
from hub.epcis.identifiers import gtin_pattern, parse_epc
from protocols.codes import parse_code
from protocols.errors import CodeError

EVENT_TYPES = (
    "ObjectEvent",
    "AggregationEvent",
    "TransformationEvent",
    "TransactionEvent",
    "AssociationEvent",
)
DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 1000
MAX_VALUES = 1000

# Which roles each MATCH_ parameter looks at (EPCIS 2.0 §8.2.7.1).
MATCH_ROLES: dict[str, tuple[str, ...]] = {
    "MATCH_epc": ("epc", "child"),
    "MATCH_parentID": ("parent",),
    "MATCH_inputEPC": ("input",),
    "MATCH_outputEPC": ("output",),
    "MATCH_anyEPC": ("epc", "child", "parent", "input", "output"),
}


@dataclass(frozen=True)
class Match:
    """One MATCH_ parameter: identifier keys (hub serials, foreign URIs) and GTINs of
    class-level patterns; an event matches when one of its identifiers in ``roles`` does."""

    roles: tuple[str, ...]
    keys: tuple[str, ...] = ()
    gtins: tuple[str, ...] = ()


@dataclass(frozen=True)
class Position:
    event_time: datetime
    id: int


@dataclass(frozen=True)
class EventQuery:
    event_types: tuple[str, ...] = ()
    ge_event_time: datetime | None = None
    lt_event_time: datetime | None = None
    biz_steps: tuple[str, ...] = ()
    matches: tuple[Match, ...] = ()
    per_page: int = DEFAULT_PER_PAGE
    after: Position | None = field(default=None, compare=False)

    def fingerprint(self) -> str:
        filters = [
            self.event_types,
            self.ge_event_time.isoformat() if self.ge_event_time else None,
            self.lt_event_time.isoformat() if self.lt_event_time else None,
            self.biz_steps,
            [[m.roles, m.keys, m.gtins] for m in self.matches],
            self.per_page,
        ]
        return hashlib.sha256(json.dumps(filters).encode()).hexdigest()[:16]

    def token_after(self, position: Position) -> str:
        data = {"t": position.event_time.isoformat(), "i": position.id, "f": self.fingerprint()}
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def split_values(values: list[str] | str | None, name: str) -> tuple[str, ...]:
    """A list parameter's values, from repeats and ``|``-joined lists."""
    if values is None:
        return ()
    raw = [values] if isinstance(values, str) else values
    out = tuple(v.strip() for value in raw for v in value.split("|") if v.strip())
    if len(out) > MAX_VALUES:
        raise QueryError(f"{name}: expected at most {MAX_VALUES} values, got {len(out)}")
    return out


def parse_time(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise QueryError(
            f"{name}: expected an ISO 8601 time with offset, e.g. 2026-01-31T08:00:00+08:00, "
            f"got {text[:60]!r}"
        ) from None
    if moment.tzinfo is None:
        raise QueryError(f"{name}: expected a time zone offset (Z or +08:00), got {text[:60]!r}")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise QueryError(f"{name}: time out of range: {text[:60]!r}") from None


def match_for(name: str, uris: tuple[str, ...]) -> Match | None:
    """A MATCH_ parameter's values as identifier keys: hub codes by serial (any written form
    matches), SGTIN class patterns by GTIN, other URIs as they are."""
    if not uris:
        return None
    keys: list[str] = []
    gtins: list[str] = []
    for uri in uris:
        gtin = gtin_pattern(uri)
        if gtin is not None:
            gtins.append(gtin)
            continue
        ref = parse_epc(uri)
        key = ref.uri
        if ref.code is not None:
            with contextlib.suppress(CodeError):  # another brand's code: kept by its URI
                key = parse_code(ref.code).serial.value
        elif ref.sscc is not None:
            key = ref.sscc
        keys.append(key)
    return Match(MATCH_ROLES[name], tuple(keys), tuple(gtins))


def build_query(
    *,
    event_type: list[str] | str | None = None,
    ge_event_time: str | None = None,
    lt_event_time: str | None = None,
    eq_biz_step: list[str] | str | None = None,
    matches: dict[str, list[str] | str | None] | None = None,
    per_page: int | None = None,
    next_page_token: str | None = None,
) -> EventQuery:
    """The query the parameters describe; QueryError / PageTokenError say what is wrong."""
    types = split_values(event_type, "eventType")
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise QueryError(f"eventType {unknown[0][:60]!r}: expected one of {', '.join(EVENT_TYPES)}")
    steps = tuple(
        s for s in (biz_step_name(v) for v in split_values(eq_biz_step, "EQ_bizStep")) if s
    )
    found = []
    for name, values in (matches or {}).items():
        match = match_for(name, split_values(values, name))
        if match is not None:
            found.append(match)
    query = EventQuery(
        event_types=types,
        ge_event_time=parse_time(ge_event_time, "GE_eventTime"),
        lt_event_time=parse_time(lt_event_time, "LT_eventTime"),
        biz_steps=steps,
        matches=tuple(found),
        per_page=per_page or DEFAULT_PER_PAGE,
    )
    if next_page_token is None:
        return query
    return EventQuery(
        event_types=query.event_types,
        ge_event_time=query.ge_event_time,
        lt_event_time=query.lt_event_time,
        biz_steps=query.biz_steps,
        matches=query.matches,
        per_page=query.per_page,
        after=read_token(next_page_token, query.fingerprint()),
    )


def read_token(token: str, fingerprint: str) -> Position:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        position = Position(datetime.fromisoformat(data["t"]), int(data["i"]))
        matches = data["f"] == fingerprint
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise PageTokenError(
            "nextPageToken: not a token this hub issued (pass it back unchanged)"
        ) from None
    if not matches:
        raise PageTokenError(
            "nextPageToken: issued for a query with other parameters (repeat them unchanged)"
        )
    return position

"""Poison messages: whatever arrives on MQTT, every message ends applied, refused or
dead-lettered, the ack says which, and the good events beside a bad one are applied."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from hub.domain.lifecycle import State
from hub.ingest.apply import ingest
from hub.models import Code, CodeBatch, Event, Product, Station
from protocols.codes import CodeKind
from protocols.messages import Rejection
from protocols.topics import Topics

NOW = "2026-11-25T08:00:00+00:00"


def event(code: str, **changes: Any) -> dict[str, Any]:
    return {"type": "commission", "id": str(uuid.uuid4()), "at": NOW, "code": code, **changes}


def batch(*events: dict[str, Any], station_id: str = "st-1") -> bytes:
    body = {
        "schema": 1,
        "type": "events",
        "station_id": station_id,
        "sent_at": NOW,
        "events": list(events),
    }
    return json.dumps(body).encode()


async def test_bad_events_are_refused_alone_and_the_good_ones_applied(plant: Any) -> None:
    hub, station = plant, plant.station
    urls = await hub.urls("TEA", 4)
    reused = station.commission(urls[0])
    await station.send(reused)  # an old id, applied

    good = [event(urls[1]), event(urls[2])]
    twice_a = event(urls[3])
    twice_b = {**twice_a, "code": urls[2]}  # same id, other contents, same message
    poison = [
        event("]Q3https://["),  # malformed code text: refused, not a crash
        event(urls[3], at="0001-01-01T00:00:00+01:00"),  # would overflow: invalid event
        event(urls[3], at="9999-12-31T23:59:59-01:00"),
        event(urls[3], colour="red"),  # unknown field
        {**event(urls[3]), "id": reused.id},  # an old id reused for another code
        twice_a,
        twice_b,
    ]
    station.publish_raw(batch(good[0], *poison, good[1]))
    ack = await station.ack()

    assert set(ack.ids) == {good[0]["id"], good[1]["id"]}
    reasons = {r.id: r.reason for r in ack.rejected}
    assert set(reasons) == {e["id"] for e in poison}
    assert reasons[poison[0]["id"]].startswith("code: malformed code: Invalid GS1 element string")
    assert reasons[poison[1]["id"]] == (
        "invalid event: FieldTypeError: events[2]: field 'at' expected a time from 2000 to "
        "2099, got '0001-01-01T00:00:00+01:00'"
    )
    assert "expected a time from 2000 to 2099" in reasons[poison[2]["id"]]
    assert reasons[poison[3]["id"]] == (
        "invalid event: UnknownFieldError: events[4]: unknown field(s) colour"
    )
    assert reasons[reused.id] == (
        f"event id {reused.id} was already used for another event: not applied "
        "(give every event its own id)"
    )
    assert reasons[twice_a["id"]] == (
        f"event id {twice_a['id']} was given to 2 different events in one message: none "
        "applied (give every event its own id)"
    )
    states = [(await hub.code(u)).state for u in urls]
    # urls[3] was in every bad event: none of them touched it.
    assert states == ["commissioned", "commissioned", "commissioned", "generated"]

    # Sent again (the station did not get the ack): the same outcome, nothing applied twice.
    station.publish_raw(batch(good[0], *poison, good[1]))
    again = await station.ack()
    assert set(again.ids) == set(ack.ids)
    assert {r.id for r in again.rejected} == set(reasons)
    assert [(await hub.code(u)).state for u in urls] == states


async def test_a_duplicate_id_with_the_same_contents_is_one_event(plant: Any) -> None:
    hub, station = plant, plant.station
    url = (await hub.urls("TEA", 1))[0]
    one = event(url)
    station.publish_raw(batch(one, dict(one)))
    ack = await station.ack()
    assert (ack.ids, ack.rejected) == ((one["id"],), ())
    assert await hub.count(Event) == 1


async def test_a_duplicate_of_a_refused_event_in_the_same_message_is_refused(plant: Any) -> None:
    hub, station = plant, plant.station
    one = event(f"{hub.runtime.public_base}/c/hello")
    station.publish_raw(batch(one, dict(one)))
    ack = await station.ack()
    assert ack.ids == ()
    assert [r.id for r in ack.rejected] == [one["id"]]


# Fuzz: arbitrary payloads beside a good message, straight into the transaction function.

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    ["type", "id", "at", "code", "work_order", "sku", "lot", "parent", "children"]
)
WEIRD_TIMES = st.sampled_from(
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-02-30T00:00:00Z", "", "x"]
)


def mutated_events(code: str) -> st.SearchStrategy[list[Any]]:
    base = st.builds(lambda: event(code))
    change = st.tuples(FIELDS, st.one_of(JSONISH, WEIRD_TIMES, st.just(code)))
    return st.lists(
        st.tuples(base, st.lists(change, max_size=3)).map(
            lambda pair: {**pair[0], **dict(pair[1])}
        ),
        max_size=4,
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_fuzzed_messages_never_block_a_good_one(db: Any, data: st.DataObject) -> None:
    topics = Topics("fuzz")
    serials = await _seed(db)
    good_event = event(serials.pop())
    raw = data.draw(
        st.one_of(
            st.binary(max_size=300),
            mutated_events(serials[0]).map(lambda events: batch(*events)),
            JSONISH.map(lambda v: json.dumps(v).encode()),
        )
    )
    messages = [(topics.events("st-1"), raw), (topics.events("st-1"), batch(good_event))]
    async with db.sessions() as session, session.begin():
        report = await ingest(session, db.keyring, topics, messages, datetime.now(UTC))
    acked = {i for a in report.acks for i in a.ids}
    rejected: set[str] = {r.id for a in report.acks for r in a.rejected}
    assert good_event["id"] in acked
    assert not acked & rejected
    async with db.sessions() as session:
        outcome = await session.scalar(select(Event.outcome).where(Event.id == good_event["id"]))
    assert outcome == "applied"
    assert isinstance(report.acks[0].rejected, tuple)
    assert all(isinstance(r, Rejection) for a in report.acks for r in a.rejected)


async def _seed(db: Any) -> list[str]:
    """A station and two fresh codes per example (examples share the database)."""
    now = datetime.now(UTC)
    key = db.keyring.active
    async with db.sessions() as session, session.begin():
        if await session.get(Station, "st-1") is None:
            session.add(Station(id="st-1", line="L1", created_at=now))
            session.add(Product(sku="TEA", name="Tea", created_at=now))
            await session.flush()
        product_id = await session.scalar(select(Product.id).where(Product.sku == "TEA"))
        start = int(await session.scalar(select(Code.id).order_by(Code.id.desc())) or 0)
        row = CodeBatch(
            product_id=product_id,
            kind="item",
            key_id=0,
            counter_start=start,
            count=2,
            created_at=now,
        )
        session.add(row)
        await session.flush()
        serials = key.seal_range(CodeKind.ITEM, start + 1, 2)
        await session.execute(
            insert(Code),
            [
                {
                    "serial": s,
                    "batch_id": row.id,
                    "seq": i + 1,
                    "kind": "item",
                    "product_id": product_id,
                    "state": State.GENERATED.value,
                    "scan_count": 0,
                }
                for i, s in enumerate(serials)
            ],
        )
    return serials

"""MQTT ingestion through the real broker into the real database (SQLite and PostgreSQL).

An ack names only events whose transaction committed; duplicates are acked again and change
nothing; refusals are recorded with their reason; malformed messages become dead letters.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

import hub.ingest.service as ingest_service
from hub.ingest.apply import DEAD_LETTER_PAYLOAD_BYTES, IngestReport, split_ack
from hub.ingest.mqtt import Message
from hub.ingest.service import IngestWorker
from hub.models import DeadLetter, Event
from hub.models import Station as StationRow
from protocols.codes import CodeKey, CodeKind, parse_code
from protocols.messages import MAX_ACK_IDS, MAX_PAYLOAD_BYTES, Ack, Rejection, Status

GTIN = "09506000134352"
OTHER_GTIN = "04006381333931"


def serial_of(url: str) -> str:
    return parse_code(url).serial.value


async def events(hub: Any) -> dict[str, tuple[str, str | None]]:
    rows = await hub.rows(select(Event.id, Event.outcome, Event.reason))
    return {r.id: (r.outcome, r.reason) for r in rows}


async def states(hub: Any, urls: list[str]) -> list[str]:
    return [(await hub.code(u)).state for u in urls]


# Commissioning --------------------------------------------------------------------------------


async def test_ack_names_only_committed_events(plant: Any) -> None:
    hub, station = plant, plant.station
    urls = await hub.urls("TEA", 5)
    sent = [station.commission(u, lot="L-42", work_order="WO-7") for u in urls]
    ack = await station.send(*sent)
    assert ack == Ack("st-1", ids=tuple(e.id for e in sent), rejected=())
    # By the time the ack is out, the transaction has committed.
    for url, event in zip(urls, sent, strict=True):
        code = await hub.code(url)
        assert (code.state, code.lot, code.work_order, code.station_id) == (
            "commissioned",
            "L-42",
            "WO-7",
            "st-1",
        )
        assert code.commissioned_at is not None
        assert code.commissioned_at.replace(tzinfo=UTC) == event.at.replace(
            microsecond=(event.at.microsecond // 1000 * 1000)
        )
    assert await events(hub) == {e.id: ("applied", None) for e in sent}
    row = await hub.scalar(select(Event).where(Event.id == sent[0].id))
    assert (row.type, row.source, row.payload["code"]) == ("commission", "station:st-1", urls[0])
    station_row = await hub.scalar(select(StationRow).where(StationRow.id == "st-1"))
    assert station_row.status == "online"
    assert station_row.last_seen_at is not None
    stats = await hub.stats()
    assert (stats["applied"], stats["refused"], stats["duplicates"]) == (5, 0, 0)


async def test_replayed_batch_is_acked_again_and_changes_nothing(plant: Any) -> None:
    hub, station = plant, plant.station
    urls = await hub.urls("TEA", 3)
    good = [station.commission(u) for u in urls]
    bad = station.commission(urls[0])  # a second read of the first label
    batch = station.publish(*good, bad)
    first = await station.ack()
    reason = (
        f"code {serial_of(urls[0])}: commissioning refused: already commissioned (duplicate label?)"
    )
    assert first == Ack("st-1", tuple(e.id for e in good), (Rejection(bad.id, reason),))
    before = [(c.state, c.commissioned_at) for c in [await hub.code(u) for u in urls]]
    recorded = await events(hub)

    station.publish_raw(batch.to_json())
    assert await station.ack() == first
    assert [(c.state, c.commissioned_at) for c in [await hub.code(u) for u in urls]] == before
    assert await events(hub) == recorded
    stats = await hub.stats()
    assert (stats["applied"], stats["refused"], stats["duplicates"]) == (3, 1, 4)


async def test_events_in_one_batch_see_each_other(plant: Any) -> None:
    """Commission items and the case, and pack them, in a single message."""
    hub, station = plant, plant.station
    items = await hub.urls("TEA", 3)
    case = (await hub.urls("TEA", 1, kind="case"))[0]
    sent = [*(station.commission(u) for u in items), station.aggregate(case, items)]
    ack = await station.send(*sent)
    assert ack.rejected == ()
    case_code = await hub.code(case)
    assert case_code.state == "commissioned"
    assert [(c.state, c.parent_id) for c in [await hub.code(u) for u in items]] == [
        ("packed", case_code.id)
    ] * 3


# Refusals -------------------------------------------------------------------------------------


def forged_url(hub: Any, key_id: int = 0) -> str:
    """A well-formed serial sealed under a secret the hub does not hold."""
    serial = CodeKey(key_id, secrets.token_bytes(32)).seal(CodeKind.ITEM, 0).value
    return f"{hub.runtime.public_base}/c/{serial}"


def unissued_url(hub: Any) -> str:
    """Sealed under the hub's own key, but with a counter no batch has used."""
    serial = hub.keyring.active.seal(CodeKind.ITEM, 1_000_000).value
    return f"{hub.runtime.public_base}/c/{serial}"


REFUSALS = [
    pytest.param(
        lambda hub, tea, wine: (forged_url(hub), {}),
        lambda text: f"code: forged code (fails the keyed check): {text!r}",
        id="forged",
    ),
    pytest.param(
        lambda hub, tea, wine: (forged_url(hub, key_id=5), {}),
        lambda text: f"code: forged code (fails the keyed check): {text!r}",
        id="unconfigured-key",
    ),
    pytest.param(
        lambda hub, tea, wine: (unissued_url(hub), {}),
        lambda text: f"code: unknown code {serial_of(text)}: not issued by this hub",
        id="unissued",
    ),
    pytest.param(
        lambda hub, tea, wine: ("hello", {}),
        lambda text: (
            "code: malformed code: Invalid serial 'hello': expected 20 symbols "
            "(or 21 with a check symbol), got 5"
        ),
        id="malformed",
    ),
    pytest.param(
        lambda hub, tea, wine: (tea, {"sku": "WINE"}),
        lambda text: (
            f"wrong product: work order is for 'WINE', code {serial_of(text)} belongs to 'TEA'"
        ),
        id="wrong-sku",
    ),
    pytest.param(
        lambda hub, tea, wine: (wine.replace(GTIN, OTHER_GTIN), {}),
        lambda text: (
            f"code: GTIN mismatch: label says {OTHER_GTIN}, code {serial_of(text)} "
            f"belongs to {GTIN}"
        ),
        id="gtin-mismatch",
    ),
    pytest.param(
        lambda hub, tea, wine: (
            f"{hub.runtime.public_base}/01/{OTHER_GTIN}/21/{serial_of(tea)}",
            {},
        ),
        lambda text: (
            f"code: GTIN mismatch: label says {OTHER_GTIN}, code {serial_of(text)} "
            "belongs to a product without GTIN"
        ),
        id="gtin-on-a-product-without",
    ),
]


@pytest.mark.parametrize(("make", "expected"), REFUSALS)
async def test_refused_commissioning(plant: Any, make: Any, expected: Any) -> None:
    hub, station = plant, plant.station
    tea = (await hub.urls("TEA", 1))[0]
    wine = (await hub.urls("WINE", 1))[0]
    text, fields = make(hub, tea, wine)
    event = station.commission(text, **fields)
    ok = station.commission(tea if "sku" not in fields else wine)

    ack = await station.send(event, ok)
    reason = expected(text)
    assert ack == Ack("st-1", ids=(ok.id,), rejected=(Rejection(event.id, reason),))
    assert (await events(hub))[event.id] == ("refused", reason)
    assert sorted(await states(hub, [tea, wine])) == ["commissioned", "generated"]
    assert (await hub.stats())["refused"] == 1


async def test_second_commissioning_of_a_code_is_refused(plant: Any) -> None:
    hub, station = plant, plant.station
    url = (await hub.urls("TEA", 1))[0]
    first = station.commission(url, lot="FIRST")
    await station.send(first)
    again = station.commission(url, lot="SECOND")
    ack = await station.send(again)
    reason = (
        f"code {serial_of(url)}: commissioning refused: already commissioned (duplicate label?)"
    )
    assert ack.rejected == (Rejection(again.id, reason),)
    assert ack.ids == ()
    assert (await events(hub))[again.id] == ("refused", reason)
    assert (await hub.code(url)).lot == "FIRST"


# Aggregation ----------------------------------------------------------------------------------


async def test_aggregation_then_shipping_activates_the_contents(plant: Any) -> None:
    hub, station = plant, plant.station
    items = await hub.urls("TEA", 4)
    case = (await hub.urls("TEA", 1, kind="case"))[0]
    await station.send(*(station.commission(u) for u in items))
    packed = station.aggregate(case, items)
    assert (await station.send(packed)).ids == (packed.id,)

    case_code = await hub.code(case)
    assert (case_code.state, case_code.station_id) == ("commissioned", "st-1")
    for url in items:
        code = await hub.code(url)
        assert (code.state, code.parent_id) == ("packed", case_code.id)

    result = await hub.ship([case], order="SO-9", dealer="D1")
    assert result["activated"] == [serial_of(case)]
    assert result["refused"] == []
    for url in [case, *items]:
        code = await hub.code(url)
        assert (code.state, code.region) == ("shipped", "Zhejiang")
        assert code.order_id is not None
        assert code.activated_at is not None
    assert (await hub.verify(items[0]))["verdict"] == "genuine"


async def test_pallet_of_cases(plant: Any) -> None:
    hub, station = plant, plant.station
    items = await hub.urls("TEA", 2)
    cases = await hub.urls("TEA", 2, kind="case")
    pallet = (await hub.urls("TEA", 1, kind="pallet"))[0]
    await station.send(
        *(station.commission(u) for u in items),
        station.aggregate(cases[0], items[:1]),
        station.aggregate(cases[1], items[1:]),
        station.aggregate(pallet, cases),
    )
    pallet_id = (await hub.code(pallet)).id
    assert [(await hub.code(c)).parent_id for c in cases] == [pallet_id, pallet_id]
    result = await hub.ship([pallet])
    assert result["activated"] == [serial_of(pallet)]
    assert await states(hub, [*items, *cases, pallet]) == ["shipped"] * 5


AGGREGATION_REFUSALS = [
    pytest.param(
        lambda c: (c["items"][0], c["items"][1:2]),
        lambda c: f"parent {serial_of(c['items'][0])} is an item code: expected a case or pallet",
        id="item-as-parent",
    ),
    pytest.param(
        lambda c: (c["cases"][0], [c["items"][1], c["cases"][1]]),
        lambda c: f"child {serial_of(c['cases'][1])} is a case: cannot go into a case",
        id="case-into-case",
    ),
    pytest.param(
        lambda c: (c["pallet"], [c["cases"][1], c["pallet"]]),
        lambda c: f"child {serial_of(c['pallet'])} is a pallet: cannot go into a pallet",
        id="pallet-into-itself",
    ),
    pytest.param(
        lambda c: (c["cases"][0], [c["items"][1], c["fresh"]]),
        lambda c: (
            f"child {serial_of(c['fresh'])}: packing refused: not commissioned: "
            "never read on a production line"
        ),
        id="child-not-commissioned",
    ),
    pytest.param(
        lambda c: (c["cases"][1], [c["items"][1], c["items"][0]]),
        lambda c: (
            f"child {serial_of(c['items'][0])}: packing refused: already packed in "
            "another case or pallet"
        ),
        id="child-already-packed",
    ),
    pytest.param(
        lambda c: (c["cases"][1], [c["items"][1], c["items"][1]]),
        lambda c: f"child {serial_of(c['items'][1])} is listed twice",
        id="child-twice",
    ),
    pytest.param(
        lambda c: (c["cases"][1], [c["items"][1], c["forged"]]),
        lambda c: f"children[1]: forged code (fails the keyed check): {c['forged']!r}",
        id="forged-child",
    ),
    pytest.param(
        lambda c: (c["forged"], [c["items"][1]]),
        lambda c: f"parent: forged code (fails the keyed check): {c['forged']!r}",
        id="forged-parent",
    ),
    pytest.param(
        lambda c: (c["shipped_case"], [c["items"][1]]),
        lambda c: f"parent {serial_of(c['shipped_case'])} is shipped: cannot take children",
        id="parent-shipped",
    ),
]


@pytest.mark.parametrize(("make", "expected"), AGGREGATION_REFUSALS)
async def test_refused_aggregation_changes_nothing(plant: Any, make: Any, expected: Any) -> None:
    hub, station = plant, plant.station
    items = await hub.urls("TEA", 3)
    cases = await hub.urls("TEA", 3, kind="case")
    pallet = (await hub.urls("TEA", 1, kind="pallet"))[0]
    c = {
        "items": items[:2],
        "fresh": items[2],
        "cases": cases[:2],
        "shipped_case": cases[2],
        "pallet": pallet,
        "forged": forged_url(hub),
    }
    await station.send(
        *(station.commission(u) for u in items[:2]),
        station.commission(cases[2]),
        station.aggregate(cases[0], items[:1]),
    )
    await hub.ship([cases[2]])
    before = [(x.state, x.parent_id) for x in [await hub.code(u) for u in [*items, *cases, pallet]]]

    parent, children = make(c)
    event = station.aggregate(parent, children)
    ack = await station.send(event)
    assert ack.rejected == (Rejection(event.id, expected(c)),)
    assert (await events(hub))[event.id] == ("refused", expected(c))
    after = [(x.state, x.parent_id) for x in [await hub.code(u) for u in [*items, *cases, pallet]]]
    assert after == before


# Malformed messages ---------------------------------------------------------------------------


def good_batch(**changes: Any) -> dict[str, Any]:
    body = {
        "schema": 1,
        "type": "events",
        "station_id": "st-1",
        "sent_at": datetime.now(UTC).isoformat(),
        "events": [],
    }
    body.update(changes)
    return body


def encoded(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


OVERSIZED = encoded(good_batch(padding="x" * MAX_PAYLOAD_BYTES))
MALFORMED = [
    pytest.param(
        b"not json at all", "MessageDecodeError: Payload is not UTF-8 JSON: ", id="not-json"
    ),
    pytest.param(b"\xff\xfe{}", "MessageDecodeError: Payload is not UTF-8 JSON: ", id="not-utf8"),
    pytest.param(
        b"[1, 2]", "MessageDecodeError: Payload expected a JSON object, got list", id="list"
    ),
    pytest.param(
        encoded(good_batch(schema=2)),
        "MessageVersionError: events: unsupported schema version 2, expected 1",
        id="schema-version",
    ),
    pytest.param(
        encoded({k: v for k, v in good_batch().items() if k != "sent_at"}),
        "MissingFieldError: events: missing required field 'sent_at'",
        id="missing-field",
    ),
    pytest.param(
        encoded(good_batch(colour="red")),
        "UnknownFieldError: events: unknown field(s) colour",
        id="unknown-field",
    ),
    pytest.param(
        encoded(good_batch(events=[{"type": "commission", "id": "x", "at": "2026-01-01T00:00Z"}])),
        "1 event(s) without a valid id cannot be applied or acknowledged (the others were): "
        "FieldTypeError: events[0]: field 'id' expected a UUID, got 'x'",
        id="bad-event-id",
    ),
    pytest.param(
        encoded(good_batch(station_id="st-2")),
        "station_id 'st-2' in the payload does not match the topic's station 'st-1'",
        id="station-mismatch",
    ),
    pytest.param(
        OVERSIZED,
        f"OversizedMessageError: Payload of {len(OVERSIZED)} bytes: "
        f"expected at most {MAX_PAYLOAD_BYTES}",
        id="oversized",
    ),
]


@pytest.mark.parametrize(("payload", "reason"), MALFORMED)
async def test_malformed_payload_is_a_dead_letter(plant: Any, payload: bytes, reason: str) -> None:
    hub, station = plant, plant.station
    station.publish_raw(payload)
    await wait_until_dead_letters(hub, 1)
    letter = await hub.scalar(select(DeadLetter))
    assert letter.reason.startswith(reason), letter.reason
    assert letter.topic == hub.topics.events("st-1")
    assert letter.station_id == "st-1"
    assert letter.payload_size == len(payload)
    assert letter.payload == payload[:DEAD_LETTER_PAYLOAD_BYTES]
    await station.no_ack(0.2)

    # The hub keeps working: the next good batch is acked.
    url = (await hub.urls("TEA", 1))[0]
    await station.send(station.commission(url))
    assert (await hub.code(url)).state == "commissioned"
    assert (await hub.stats())["dead_letters"] == 1


async def test_malformed_status_is_a_dead_letter_and_a_good_one_is_applied(plant: Any) -> None:
    hub, station = plant, plant.station
    status_topic = hub.topics.status("st-1")
    station.publish_raw(b"{", topic=status_topic)
    await wait_until_dead_letters(hub, 1)
    letter = await hub.scalar(select(DeadLetter))
    assert letter.reason.startswith("MessageDecodeError: Payload is not UTF-8 JSON")
    assert letter.topic == status_topic

    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    station.publish_raw(Status("st-1", "offline", at).to_json(), topic=status_topic)

    async def offline() -> bool:
        row = await hub.scalar(select(StationRow).where(StationRow.id == "st-1"))
        return bool(row.status == "offline")

    await wait_for_condition(offline)


async def test_unknown_station_gets_every_event_rejected(plant: Any, station_factory: Any) -> None:
    hub = plant
    ghost = await station_factory("ghost-7")
    url = (await hub.urls("TEA", 1))[0]
    sent = [ghost.commission(url), ghost.commission(url)]
    ack = await ghost.send(*sent)
    reason = "unknown station 'ghost-7': register it on the hub first"
    assert ack == Ack("ghost-7", ids=(), rejected=tuple(Rejection(e.id, reason) for e in sent))
    letter = await hub.scalar(select(DeadLetter))
    assert (letter.reason, letter.station_id) == (reason, "ghost-7")
    assert (await hub.code(url)).state == "generated"
    assert await events(hub) == {}
    assert await hub.count(StationRow, StationRow.id == "ghost-7") == 0


# Failures -------------------------------------------------------------------------------------


async def test_failed_transaction_is_not_acked_and_the_resend_is(
    plant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, station = plant, plant.station
    urls = await hub.urls("TEA", 2)
    real_ingest = ingest_service.ingest
    calls = 0

    async def fail_once(*args: Any, **kwargs: Any) -> IngestReport:
        nonlocal calls
        calls += 1
        report = await real_ingest(*args, **kwargs)  # writes inside the transaction...
        if calls == 1:
            raise RuntimeError("database went away")  # ...which then rolls back
        return report

    monkeypatch.setattr(ingest_service, "ingest", fail_once)
    batch = station.publish(*(station.commission(u) for u in urls))
    await wait_for_condition(lambda: hub.runtime.ingest.worker.stats.failures == 1)
    await station.no_ack(0.3)
    assert await states(hub, urls) == ["generated", "generated"]
    assert await events(hub) == {}

    station.publish_raw(batch.to_json())  # the station resends from its outbox
    ack = await station.ack()
    assert ack.ids == tuple(e.id for e in batch.events)
    assert await states(hub, urls) == ["commissioned", "commissioned"]
    stats = await hub.stats()
    assert (stats["failures"], stats["applied"], stats["duplicates"]) == (1, 2, 0)


# The worker alone -----------------------------------------------------------------------------


def message(n: int) -> Message:
    return (f"t/{n}", str(n).encode())


def report_for(batch: list[Message]) -> IngestReport:
    ids = tuple(str(uuid.UUID(int=int(payload))) for _, payload in batch)
    return IngestReport(acks=[Ack("s", ids)], applied=len(batch))


class FakeApply:
    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.fail_on = fail_on or set()
        self.calls: list[list[int]] = []

    async def __call__(self, batch: list[Message]) -> IngestReport:
        numbers = [int(payload) for _, payload in batch]
        self.calls.append(numbers)
        if self.fail_on & set(numbers):
            raise RuntimeError("boom")
        return report_for(batch)


def acked(acks: list[Ack]) -> list[int]:
    return [uuid.UUID(i).int for ack in acks for i in ack.ids]


async def run_worker(worker: IngestWorker, until: Any) -> None:
    task = asyncio.create_task(worker.run())
    try:
        await wait_for_condition(until, within=5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_worker_batches_up_to_max_messages() -> None:
    queue: asyncio.Queue[Message] = asyncio.Queue()
    for n in range(10):
        queue.put_nowait(message(n))
    apply, acks = FakeApply(), []
    worker = IngestWorker(queue, apply, acks.append, max_messages=4, linger=0.01)
    await run_worker(worker, lambda: len(acks) == 3)
    assert apply.calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert acked(acks) == list(range(10))
    assert (worker.stats.transactions, worker.stats.applied, worker.stats.messages) == (3, 10, 10)


async def test_worker_lingers_to_fill_a_transaction() -> None:
    queue: asyncio.Queue[Message] = asyncio.Queue()
    apply, acks = FakeApply(), []
    worker = IngestWorker(queue, apply, acks.append, max_messages=10, linger=0.5)
    task = asyncio.create_task(worker.run())
    try:
        queue.put_nowait(message(1))
        await asyncio.sleep(0.05)
        queue.put_nowait(message(2))
        await wait_for_condition(lambda: len(acks) == 1, within=5)
    finally:
        task.cancel()
    assert apply.calls == [[1, 2]]


async def test_worker_retries_one_by_one_and_never_acks_a_failure() -> None:
    queue: asyncio.Queue[Message] = asyncio.Queue()
    for n in (1, 2, 3):
        queue.put_nowait(message(n))
    apply, acks = FakeApply(fail_on={2}), []
    worker = IngestWorker(queue, apply, acks.append, max_messages=10, linger=0.01)
    await run_worker(worker, lambda: len(apply.calls) == 4)
    assert apply.calls == [[1, 2, 3], [1], [2], [3]]
    assert acked(acks) == [1, 3]
    assert (worker.stats.failures, worker.stats.transactions, worker.stats.applied) == (2, 2, 2)

    # The worker is still alive: a later message goes through.
    task = asyncio.create_task(worker.run())
    queue.put_nowait(message(4))
    try:
        await wait_for_condition(lambda: acked(acks) == [1, 3, 4], within=5)
    finally:
        task.cancel()


async def test_worker_acks_only_after_apply_returns() -> None:
    order: list[str] = []

    async def apply(batch: list[Message]) -> IngestReport:
        order.append("apply started")
        await asyncio.sleep(0.05)
        order.append("committed")
        return report_for(batch)

    worker = IngestWorker(asyncio.Queue(), apply, lambda ack: order.append("ack"), 4, 0)
    await worker.process([message(1)])
    assert order == ["apply started", "committed", "ack"]


def test_split_ack_keeps_every_id_in_order() -> None:
    applied = [str(uuid.UUID(int=n)) for n in range(MAX_ACK_IDS + 500)]
    rejected = [Rejection(str(uuid.UUID(int=10**6 + n)), f"r{n}") for n in range(3)]
    acks = split_ack("st-1", applied, rejected)
    assert [len(a.ids) + len(a.rejected) for a in acks] == [MAX_ACK_IDS, 503]
    assert [i for a in acks for i in a.ids] == applied
    assert acks[-1].rejected == tuple(rejected)
    assert {a.station_id for a in acks} == {"st-1"}
    for ack in acks:  # each one parses on the station side
        assert Ack.parse(ack.to_json()) == ack
    assert split_ack("st-1", applied[:3], []) == [Ack("st-1", tuple(applied[:3]))]


# Helpers --------------------------------------------------------------------------------------


async def wait_for_condition(condition: Any, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def wait_until_dead_letters(hub: Any, count: int) -> None:
    async def enough() -> bool:
        return bool(await hub.count(DeadLetter) >= count)

    await wait_for_condition(enough)

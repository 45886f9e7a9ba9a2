from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.errors import OutboxError
from edge_agent.outbox import Outbox
from protocols.messages import (
    AggregateEvent,
    CommissionEvent,
    Rejection,
    StationEvent,
    new_event_id,
)

AT = datetime(2024, 5, 1, 8, 0, 0, 123000, tzinfo=UTC)
T0 = 1_700_000_000.0


def commission(code: str, **kwargs: str) -> CommissionEvent:
    return CommissionEvent(id=new_event_id(), at=AT, code=code, **kwargs)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.sqlite3", resend_interval=5.0)
    yield box
    box.close()


def dicts(events: Sequence[StationEvent]) -> list[dict[str, object]]:
    return [e.as_dict() for e in events]


def test_events_come_back_as_they_went_in(outbox: Outbox) -> None:
    events = [
        commission("https://id.yima.example/c/A", work_order="WO1", sku="TEA", lot="L1"),
        commission("https://id.yima.example/c/B"),
        AggregateEvent(id=new_event_id(), at=AT, parent="CASE-1", children=("A", "B")),
    ]
    assert outbox.put(events, now=T0) == 3
    assert dicts(outbox.due(now=T0)) == dicts(events)
    assert outbox.due(now=T0) == events  # millisecond times survive exactly
    assert outbox.pending_count() == 3


def test_put_is_on_disk_when_it_returns(tmp_path: Path, outbox: Outbox) -> None:
    event = commission("A")
    outbox.put([event])
    other = sqlite3.connect(tmp_path / "outbox.sqlite3")
    try:
        assert other.execute("SELECT id FROM outbox").fetchall() == [(event.id,)]
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        other.close()


def test_events_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    events = [commission(f"code-{i}") for i in range(5)]
    first = Outbox(path)
    first.put(events, now=T0)
    first.mark_sent([events[0].id], now=T0)
    first.close()

    second = Outbox(path, resend_interval=5.0)
    try:
        assert second.pending_count() == 5
        assert dicts(second.due(now=T0 + 1)) == dicts(events[1:])  # events[0] is in flight
        assert dicts(second.due(now=T0 + 5)) == dicts(events)
    finally:
        second.close()


def test_put_ignores_an_id_it_already_holds(outbox: Outbox) -> None:
    event = commission("A")
    assert outbox.put([event]) == 1
    assert outbox.put([event, commission("B")]) == 1
    assert outbox.pending_count() == 2


@pytest.mark.parametrize(
    ("sent_at", "now", "is_due"),
    [
        (None, T0, True),  # never sent
        (T0, T0, False),  # just sent
        (T0, T0 + 4.999, False),  # within the resend interval
        (T0, T0 + 5.0, True),  # not acked within the resend interval
        (T0, T0 + 3600, True),
        (T0, T0 - 60, True),  # the clock went back: do not wait an hour
    ],
)
def test_resend_policy(outbox: Outbox, sent_at: float | None, now: float, is_due: bool) -> None:
    event = commission("A")
    outbox.put([event], now=T0)
    if sent_at is not None:
        outbox.mark_sent([event.id], now=sent_at)
    assert [e.id for e in outbox.due(now=now)] == ([event.id] if is_due else [])


def test_due_is_oldest_first_and_limited(outbox: Outbox) -> None:
    events = [commission(f"code-{i}") for i in range(10)]
    for e in events:
        outbox.put([e], now=T0)
    assert [e.id for e in outbox.due(limit=4, now=T0)] == [e.id for e in events[:4]]
    outbox.mark_sent([e.id for e in events[:4]], now=T0)
    assert [e.id for e in outbox.due(limit=4, now=T0)] == [e.id for e in events[4:8]]
    assert outbox.in_flight_count(now=T0 + 1) == 4
    assert outbox.in_flight_count(now=T0 + 5) == 0  # all due again, none counted in flight


def test_resend_all_makes_everything_due_now(outbox: Outbox) -> None:
    events = [commission("A"), commission("B")]
    outbox.put(events, now=T0)
    outbox.mark_sent([e.id for e in events], now=T0)
    assert outbox.due(now=T0 + 1) == []
    outbox.resend_all()
    assert [e.id for e in outbox.due(now=T0 + 1)] == [e.id for e in events]


def test_ack_deletes_only_the_named_ids(outbox: Outbox) -> None:
    events = [commission(f"code-{i}") for i in range(3)]
    outbox.put(events, now=T0)
    assert outbox.ack([events[1].id, new_event_id()]) == 1
    assert outbox.pending_count() == 2
    assert [e.id for e in outbox.due(now=T0)] == [events[0].id, events[2].id]
    assert outbox.ack([events[1].id]) == 0  # a repeated ack deletes nothing more
    assert outbox.ack([]) == 0


def test_rejections_are_kept_with_reason_and_event(outbox: Outbox) -> None:
    events = [commission("A"), commission("B")]
    outbox.put(events, now=T0)
    assert outbox.reject([Rejection(events[0].id, "code already commissioned")], now=T0 + 1) == 1
    assert outbox.reject([Rejection(events[0].id, "again")], now=T0 + 2) == 0
    assert outbox.pending_count() == 1
    (rejected,) = outbox.rejections()
    assert (rejected.id, rejected.reason, rejected.at) == (
        events[0].id,
        "code already commissioned",
        T0 + 1,
    )
    assert rejected.event == events[0]


def test_rejections_are_bounded(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", keep_rejections=3)
    try:
        box.reject([Rejection(new_event_id(), f"r{i}") for i in range(5)])
        assert [r.reason for r in box.rejections()] == ["r4", "r3", "r2"]
    finally:
        box.close()


def test_has_code_knows_pending_commissions(outbox: Outbox) -> None:
    event = commission("A")
    outbox.put([event])
    assert outbox.has_code("A")
    assert not outbox.has_code("B")
    outbox.ack([event.id])
    assert not outbox.has_code("A")


def test_an_unreadable_row_is_moved_to_rejections(tmp_path: Path, outbox: Outbox) -> None:
    good = commission("A")
    outbox.put([good], now=T0)
    raw = sqlite3.connect(tmp_path / "outbox.sqlite3")
    bad_id = new_event_id()
    with raw:
        raw.execute(
            "INSERT INTO outbox (id, code, body, created_at) VALUES (?, NULL, ?, ?)",
            (bad_id, '{"type":"commission","id":"x"}', T0),
        )
    raw.close()
    assert outbox.due(now=T0) == [good]
    assert outbox.pending_count() == 1
    (rejected,) = outbox.rejections()
    assert rejected.id == bad_id
    assert rejected.reason == ("unreadable in outbox: event: field 'id' expected a UUID, got 'x'")


def test_a_path_that_cannot_be_opened_is_an_outbox_error(tmp_path: Path) -> None:
    with pytest.raises(OutboxError) as info:
        Outbox(tmp_path)  # a directory
    assert str(info.value) == f"Cannot open outbox '{tmp_path}': unable to open database file"


def test_concurrent_put_send_and_ack_lose_nothing(outbox: Outbox) -> None:
    producers, per_producer = 4, 200
    created: list[str] = []
    acked: list[int] = []
    done = threading.Event()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def produce(n: int) -> None:
        try:
            for i in range(per_producer):
                event = commission(f"p{n}-{i}")
                outbox.put([event])
                with lock:
                    created.append(event.id)
        except BaseException as exc:
            errors.append(exc)

    def send_and_ack(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while not done.is_set() or outbox.pending_count():
                batch = outbox.due(limit=rng.randint(1, 50))
                outbox.mark_sent([e.id for e in batch])
                acked.append(outbox.ack([e.id for e in batch]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(producers)]
    senders = [threading.Thread(target=send_and_ack, args=(s,)) for s in range(2)]
    for t in threads + senders:
        t.start()
    for t in threads:
        t.join(60)
    done.set()
    for t in senders:
        t.join(60)
    assert errors == []
    assert len(set(created)) == producers * per_producer
    assert sum(acked) == producers * per_producer  # each event deleted exactly once
    assert outbox.pending_count() == 0


def test_bad_resend_interval() -> None:
    with pytest.raises(ValueError) as info:
        Outbox(":memory:", resend_interval=0)
    assert str(info.value) == "resend_interval expected positive seconds, got 0"

"""MqttUplink against the real broker; the test plays the hub (FakeHub)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge_agent.outbox import Outbox
from edge_agent.settings import EdgeSettings
from edge_agent.uplink import MqttUplink
from protocols.messages import (
    MAX_BATCH_EVENTS,
    Ack,
    Command,
    CommissionEvent,
    Rejection,
    WorkOrder,
    new_event_id,
)
from protocols.topics import Topics

AT = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def events(count: int, prefix: str = "code") -> list[CommissionEvent]:
    return [
        CommissionEvent(id=new_event_id(), at=AT, code=f"{prefix}-{i}", sku="TEA")
        for i in range(count)
    ]


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.sqlite3", resend_interval=5.0)
    yield box
    box.close()


@pytest.fixture
def make_uplink(
    broker_url: str,
    topic_prefix: str,
    station_id: str,
    outbox: Outbox,
    make_hub: Callable[..., Any],
) -> Iterator[Callable[..., MqttUplink]]:
    uplinks: list[MqttUplink] = []

    def make(**kwargs: object) -> MqttUplink:
        options: dict[str, object] = {
            "station_id": station_id,
            "broker_url": broker_url,
            "outbox": outbox,
            "topics": Topics(topic_prefix),
            "flush_interval": 0.02,
            "reconnect_min_delay": 0.1,
            "reconnect_max_delay": 0.5,
        }
        options.update(kwargs)
        uplink = MqttUplink(**options)  # type: ignore[arg-type]
        uplinks.append(uplink)
        uplink.start()
        return uplink

    yield make
    for uplink in uplinks:
        uplink.stop()


def test_events_are_deleted_only_after_the_hubs_ack(
    make_hub: Callable[..., Any],
    make_uplink: Callable[..., MqttUplink],
    outbox: Outbox,
    wait_until: Callable[..., bool],
) -> None:
    hub = make_hub()
    sent = events(3)
    outbox.put(sent)
    uplink = make_uplink()
    assert uplink.wait_connected(10)
    assert wait_until(lambda: hub.event_ids() == {e.id for e in sent})
    assert [e.as_dict() for e in hub.batches[0].events] == [e.as_dict() for e in sent]
    assert hub.batches[0].station_id == uplink.station_id
    time.sleep(0.3)  # the broker's PUBACK has long arrived: it must not delete anything
    assert outbox.pending_count() == 3

    hub.ack([sent[0].id, sent[2].id])
    assert wait_until(lambda: outbox.pending_count() == 1)
    assert [e.id for e in outbox.due(now=time.time() + 60)] == [sent[1].id]
    hub.ack([sent[1].id])
    assert wait_until(lambda: outbox.pending_count() == 0)
    counters = uplink.counters()
    assert (counters.acked, counters.rejected, counters.bad_messages) == (3, 0, 0)
    assert counters.published == 3
    assert counters.connected


def test_rejected_events_are_recorded_and_removed(
    make_hub: Callable[..., Any],
    make_uplink: Callable[..., MqttUplink],
    outbox: Outbox,
    wait_until: Callable[..., bool],
) -> None:
    hub = make_hub()
    sent = events(2)
    outbox.put(sent)
    uplink = make_uplink()
    assert wait_until(lambda: len(hub.event_ids()) == 2)
    hub.ack([sent[0].id], (Rejection(sent[1].id, "code already commissioned"),))
    assert wait_until(lambda: outbox.pending_count() == 0)
    assert [(r.id, r.reason) for r in outbox.rejections()] == [
        (sent[1].id, "code already commissioned")
    ]
    assert wait_until(lambda: uplink.counters().rejected == 1)
    assert uplink.counters().acked == 1


def test_unacked_events_are_sent_again_until_acked(
    tmp_path: Path,
    make_hub: Callable[..., Any],
    make_uplink: Callable[..., MqttUplink],
    wait_until: Callable[..., bool],
) -> None:
    hub = make_hub()
    box = Outbox(tmp_path / "fast.sqlite3", resend_interval=0.3)
    try:
        (event,) = events(1)
        box.put([event])
        make_uplink(outbox=box)
        assert wait_until(lambda: [e.id for e in hub.events].count(event.id) >= 3)
        hub.ack([event.id])
        assert wait_until(lambda: box.pending_count() == 0)
        received = len(hub.events)
        time.sleep(1.0)
        assert len(hub.events) == received  # acked: no more resends
    finally:
        box.close()


def test_new_events_are_batched_and_batches_are_bounded(
    make_hub: Callable[..., Any],
    make_uplink: Callable[..., MqttUplink],
    outbox: Outbox,
    wait_until: Callable[..., bool],
) -> None:
    hub = make_hub(auto_ack=True)
    outbox.put(events(MAX_BATCH_EVENTS + 20))
    uplink = make_uplink()
    assert wait_until(lambda: outbox.pending_count() == 0, timeout=20)
    assert [len(b.events) for b in hub.batches] == [MAX_BATCH_EVENTS, 20]
    batch_of_two = events(2, prefix="later")
    outbox.put(batch_of_two)
    uplink.notify()
    assert wait_until(lambda: outbox.pending_count() == 0)
    assert [e.id for e in hub.batches[-1].events] == [e.id for e in batch_of_two]


def test_events_put_while_the_broker_is_down_are_delivered_when_it_is_back(
    private_broker: Any,
    topic_prefix: str,
    station_id: str,
    make_uplink: Callable[..., MqttUplink],
    outbox: Outbox,
    wait_until: Callable[..., bool],
    make_hub: Callable[..., Any],
) -> None:
    private_broker.stop()
    uplink = make_uplink(broker_url=private_broker.url)
    early = events(3, prefix="early")
    outbox.put(early)
    uplink.notify()
    time.sleep(0.5)
    assert not uplink.connected
    assert uplink.counters().published == 0
    assert outbox.pending_count() == 3

    private_broker.start()
    hub = make_hub(auto_ack=True, url=private_broker.url)
    assert uplink.wait_connected(10)
    assert wait_until(lambda: outbox.pending_count() == 0)
    assert {e.id for e in early} <= hub.event_ids()

    # The broker goes away mid-run and comes back: the same again.
    private_broker.stop()
    assert wait_until(lambda: not uplink.connected)
    late = events(4, prefix="late")
    outbox.put(late)
    uplink.notify()
    time.sleep(0.3)
    assert outbox.pending_count() == 4
    private_broker.start()
    assert wait_until(lambda: outbox.pending_count() == 0, timeout=15)
    assert {e.id for e in late} <= hub.event_ids()
    assert uplink.counters().acked == 7


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"not json", "Payload is not UTF-8 JSON"),
        (b'{"schema":2,"type":"ack","station_id":"x","ids":[]}', "unsupported schema version 2"),
        (b'{"schema":1,"type":"ack","station_id":"x","ids":["nope"]}', "expected a UUID"),
        (b'{"schema":1,"type":"ack","ids":[]}', "missing required field 'station_id'"),
        (None, "is not ours"),  # a valid ack for another station
    ],
)
def test_a_bad_ack_is_counted_logged_and_ignored(
    make_hub: Callable[..., Any],
    make_uplink: Callable[..., MqttUplink],
    outbox: Outbox,
    caplog: pytest.LogCaptureFixture,
    payload: bytes | None,
    problem: str,
    wait_until: Callable[..., bool],
) -> None:
    hub = make_hub()
    sent = events(1)
    outbox.put(sent)
    uplink = make_uplink()
    assert wait_until(lambda: len(hub.event_ids()) == 1)
    if payload is None:
        payload = Ack("another-station", (sent[0].id,)).to_json()
    with caplog.at_level(logging.WARNING, logger="edge_agent.uplink"):
        hub.publish_ack(payload)
        assert wait_until(lambda: uplink.counters().bad_messages == 1)
    assert outbox.pending_count() == 1
    logged = [r.getMessage() for r in caplog.records if "Ignoring bad ack" in r.getMessage()]
    assert len(logged) == 1, logged
    assert problem in logged[0]
    # Still alive: the real ack works.
    hub.ack([sent[0].id])
    assert wait_until(lambda: outbox.pending_count() == 0)


def test_bad_payloads_are_logged_truncated(
    make_hub: Callable[..., Any],
    make_uplink: Callable[..., MqttUplink],
    caplog: pytest.LogCaptureFixture,
    wait_until: Callable[..., bool],
) -> None:
    hub = make_hub()
    uplink = make_uplink()
    assert uplink.wait_connected(10)
    with caplog.at_level(logging.WARNING, logger="edge_agent.uplink"):
        hub.publish_command(b"x" * 5000)
        assert wait_until(lambda: uplink.counters().bad_messages == 1)
    (record,) = [r for r in caplog.records if "Ignoring bad command" in r.getMessage()]
    assert record.getMessage().endswith("payload " + "x" * 200 + "...")


def test_commands_reach_the_handler(
    make_hub: Callable[..., Any],
    make_uplink: Callable[..., MqttUplink],
    station_id: str,
    wait_until: Callable[..., bool],
) -> None:
    received: list[Command] = []
    hub = make_hub()
    uplink = make_uplink(on_command=received.append)
    assert uplink.wait_connected(10)
    command = Command(station_id, "work_order", work_order=WorkOrder("WO-7", "TEA-250G", "L9"))
    hub.command(command)
    hub.publish_command(b'{"schema":1,"type":"command"}')
    hub.command(Command(station_id, "stop"))
    assert wait_until(lambda: len(received) == 2)
    assert received[0] == command
    assert received[1].command == "stop"
    assert uplink.counters().bad_messages == 1


def test_a_failing_command_handler_does_not_break_the_uplink(
    make_hub: Callable[..., Any],
    make_uplink: Callable[..., MqttUplink],
    outbox: Outbox,
    station_id: str,
    wait_until: Callable[..., bool],
) -> None:
    def explode(command: Command) -> None:
        raise RuntimeError("boom")

    hub = make_hub(auto_ack=True)
    uplink = make_uplink(on_command=explode)
    assert uplink.wait_connected(10)
    hub.command(Command(station_id, "start"))
    outbox.put(events(2))
    uplink.notify()
    assert wait_until(lambda: outbox.pending_count() == 0)


def test_status_is_online_while_connected_and_offline_after_a_clean_stop(
    make_hub: Callable[..., Any],
    make_uplink: Callable[..., MqttUplink],
    wait_until: Callable[..., bool],
) -> None:
    hub = make_hub()
    uplink = make_uplink()
    assert wait_until(lambda: hub.states() == [("online", None)])
    uplink.stop()
    assert wait_until(lambda: hub.states() == [("online", None), ("offline", "stopped")])


_CRASHING_STATION = """
import sys, time
from edge_agent.outbox import Outbox
from edge_agent.uplink import MqttUplink
from protocols.topics import Topics
url, prefix, station, path = sys.argv[1:]
uplink = MqttUplink(station_id=station, broker_url=url, outbox=Outbox(path), topics=Topics(prefix))
uplink.start()
assert uplink.wait_connected(10)
print("ready", flush=True)
time.sleep(60)
"""


def test_the_last_will_says_offline_when_the_station_dies(
    tmp_path: Path,
    broker_url: str,
    topic_prefix: str,
    station_id: str,
    make_hub: Callable[..., Any],
    wait_until: Callable[..., bool],
) -> None:
    hub = make_hub()
    station = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CRASHING_STATION,
            broker_url,
            topic_prefix,
            station_id,
            str(tmp_path / "o.sqlite3"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert station.stdout is not None
        assert station.stdout.readline().strip() == "ready"
        assert wait_until(lambda: hub.states() == [("online", None)])
        os.kill(station.pid, signal.SIGKILL)  # no DISCONNECT: the broker sends the will
        station.wait(10)
        assert wait_until(
            lambda: hub.states() == [("online", None), ("offline", "connection lost")]
        )
        # A hub that starts later still learns the station is offline: the will is retained.
        late = make_hub()
        assert wait_until(lambda: late.states() == [("offline", "connection lost")])
    finally:
        if station.poll() is None:
            station.kill()
            station.wait(10)


def test_an_authorization_failure_stops_reconnecting(
    private_broker: Any,
    make_uplink: Callable[..., MqttUplink],
    caplog: pytest.LogCaptureFixture,
    wait_until: Callable[..., bool],
) -> None:
    private_broker.stop()
    private_broker.conf.write_text(
        f"listener {private_broker.port} 127.0.0.1\nallow_anonymous false\npersistence false\n"
    )
    private_broker.start()
    with caplog.at_level(logging.WARNING, logger="edge_agent.uplink"):
        uplink = make_uplink(broker_url=private_broker.url, username="station", password="wrong")
        assert wait_until(lambda: uplink.auth_failed)
        time.sleep(1.0)  # with a 0.1 s reconnect delay, a retrying client would try ~5 times
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1
    assert refusals[0].levelno == logging.ERROR
    assert (
        refusals[0]
        .getMessage()
        .endswith(": Not authorized; not reconnecting (check credentials and ACL)")
    )
    assert not uplink.connected


def test_from_settings_uses_the_configured_topics(
    broker_url: str,
    topic_prefix: str,
    station_id: str,
    make_hub: Callable[..., Any],
    wait_until: Callable[..., bool],
    make_settings: Callable[..., EdgeSettings],
) -> None:
    hub = make_hub(auto_ack=True)
    settings = make_settings(station_id=station_id, mqtt_url=broker_url, topic_prefix=topic_prefix)
    box = Outbox(settings.outbox_path)
    uplink = MqttUplink.from_settings(settings, box, None)
    uplink.start()
    try:
        box.put(events(2))
        uplink.notify()
        assert wait_until(lambda: box.pending_count() == 0)
        assert len(hub.event_ids()) == 2
    finally:
        uplink.stop()
        box.close()

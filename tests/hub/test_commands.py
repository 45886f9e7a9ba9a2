"""Commands to stations: the hub publishes them (retained, QoS 1) on the station's command
topic; a real edge agent on the same broker applies the work order."""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.agent import EdgeAgent
from edge_agent.settings import EdgeSettings
from protocols.broker import BrokerAddress
from protocols.messages import Command, WorkOrder

WAREHOUSE = {"Authorization": "Bearer wh-token"}
ORDER = {"id": "WO-7", "sku": "TEA", "lot": "LOT-7"}
# What the station gets: the hub adds the station's line (TEA has no GTIN, no pools).
SENT = WorkOrder(**ORDER, line="L1")


class Listener:
    """Subscribes to one topic and collects (payload, retain) pairs (paho thread)."""

    def __init__(self, broker_url: str, topic: str) -> None:
        self.got: list[tuple[bytes, bool]] = []
        self.arrived = threading.Event()
        address = BrokerAddress.parse(broker_url)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"l-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        assert subscribed.wait(10)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.got.append((bytes(msg.payload), bool(msg.retain)))
        self.arrived.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def test_work_order_is_published_and_retained(plant: Any, broker_url: str) -> None:
    hub = plant
    topic = hub.topics.command("st-1")
    live = await asyncio.to_thread(Listener, broker_url, topic)
    try:
        body = await hub.api(
            "POST",
            "/api/v1/stations/st-1/commands",
            {"command": "work_order", "work_order": ORDER},
            status=202,
        )
        assert await asyncio.to_thread(live.arrived.wait, 10)
    finally:
        live.close()
    payload, _ = live.got[0]
    assert Command.parse(payload) == Command(
        station_id="st-1", command="work_order", id=body["id"], work_order=SENT
    )
    assert body == {
        "id": body["id"],
        "station_id": "st-1",
        "command": "work_order",
        "work_order": "WO-7",
    }

    # A station that connects later still gets its current work order.
    late = await asyncio.to_thread(Listener, broker_url, topic)
    try:
        assert await asyncio.to_thread(late.arrived.wait, 10)
    finally:
        late.close()
    assert late.got[0] == (payload, True)


async def test_a_real_station_applies_the_work_order(
    plant: Any, broker_url: str, topic_prefix: str, tmp_path: Path
) -> None:
    class NoCamera:
        def read(self) -> None:
            return None

        def close(self) -> None:
            pass

    settings = EdgeSettings(
        station_id="st-1",
        mqtt_url=broker_url,
        topic_prefix=topic_prefix,
        outbox_path=tmp_path / "outbox.sqlite3",
        source="in-process",
    )
    agent = EdgeAgent(settings, NoCamera())
    agent.start()
    try:
        assert await asyncio.to_thread(agent.uplink.wait_connected, 10)  # type: ignore[attr-defined]
        await plant.api("POST", "/api/v1/stations/st-1/commands", {"command": "stop"}, status=202)
        for _ in range(100):
            if agent.paused:
                break
            await asyncio.sleep(0.05)
        assert agent.paused
        await plant.api(
            "POST",
            "/api/v1/stations/st-1/commands",
            {"command": "work_order", "work_order": ORDER},
            status=202,
        )
        for _ in range(100):
            if agent.work_order is not None:
                break
            await asyncio.sleep(0.05)
        assert agent.work_order == SENT
    finally:
        await asyncio.to_thread(agent.stop)


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/api/v1/stations/nope/commands", {"command": "stop"}, 404, "Unknown station 'nope'"),
        (
            "/api/v1/stations/st-1/commands",
            {"command": "work_order", "work_order": {**ORDER, "sku": "GIN"}},
            404,
            "Unknown product 'GIN'",
        ),
        (
            "/api/v1/stations/st-1/commands",
            {"command": "reboot"},
            422,
            "body.command: Input should be 'work_order', 'start' or 'stop'",
        ),
        (
            "/api/v1/stations/st-1/commands",
            {"command": "work_order"},
            422,
            "Command 'work_order' needs a work_order",
        ),
        (
            "/api/v1/stations/st-1/commands",
            {"command": "work_order", "work_order": {"id": "W", "sku": "TEA"}},
            422,
            "body.work_order.lot: Field required",
        ),
        (
            "/api/v1/stations/st-1/commands",
            {"command": "work_order", "work_order": "WO-1"},
            422,
            "body.work_order: Input should be an object",
        ),
    ],
)
async def test_command_errors(
    sqlite_plant: Any, path: str, body: dict[str, Any], status: int, error: str
) -> None:
    assert await sqlite_plant.api("POST", path, body, status=status) == {"error": error}


async def test_commands_are_admin_only_and_need_the_broker(sqlite_plant: Any) -> None:
    hub = sqlite_plant
    path = "/api/v1/stations/st-1/commands"
    denied = await hub.api("POST", path, {"command": "stop"}, status=403, headers=WAREHOUSE)
    assert denied == {"error": f"Role 'warehouse' may not call POST {path}"}
    hub.runtime.ingest.mqtt.connected.clear()
    down = await hub.api("POST", path, {"command": "stop"}, status=503)
    assert down == {"error": f"The MQTT broker at {hub.runtime.mqtt_url} is not reachable"}


async def test_a_retained_start_keeps_the_work_order(plant: Any, broker_url: str) -> None:
    """The bug of an earlier attempt: start was retained over the work order, and a station
    restarted after it had no work order."""
    await plant.api(
        "POST",
        "/api/v1/stations/st-1/commands",
        {
            "command": "work_order",
            "work_order": {**ORDER, "shift": "B", "production_date": "2026-11-25"},
        },
        status=202,
    )
    started = await plant.api(
        "POST", "/api/v1/stations/st-1/commands", {"command": "start"}, status=202
    )
    assert started["work_order"] == "WO-7"
    restarted = await asyncio.to_thread(Listener, broker_url, plant.topics.command("st-1"))
    try:
        assert await asyncio.to_thread(restarted.arrived.wait, 10)
    finally:
        restarted.close()
    payload, retained = restarted.got[0]
    command = Command.parse(payload)
    assert (command.command, retained) == ("start", True)
    assert command.work_order == WorkOrder(
        **ORDER, line="L1", shift="B", production_date="2026-11-25"
    )


async def test_pools_are_allocated_and_enforced_at_commissioning(plant: Any) -> None:
    hub = plant
    batch = await hub.api("POST", "/api/v1/batches", {"sku": "TEA", "count": 10}, status=201)
    pool = await hub.api(
        "POST",
        "/api/v1/pools",
        {"batch_id": batch["id"], "first": 1, "last": 5, "line": "L1", "work_order": "WO-7"},
        status=201,
    )
    assert pool == {
        "id": pool["id"],
        "batch_id": batch["id"],
        "first": 1,
        "last": 5,
        "line": "L1",
        "work_order": "WO-7",
    }
    clash = await hub.api(
        "POST",
        "/api/v1/pools",
        {"batch_id": batch["id"], "first": 5, "last": 7, "line": "L2"},
        status=409,
    )
    assert clash["error"].startswith(f"Pool 5..7 of batch {batch['id']} overlaps pool")
    outside = await hub.api(
        "POST",
        "/api/v1/pools",
        {"batch_id": batch["id"], "first": 8, "last": 11, "line": "L2"},
        status=422,
    )
    assert outside["error"] == (
        f"Pool 8..11: expected 1 <= first <= last <= 10 (the size of batch {batch['id']})"
    )
    listed = await hub.api("GET", f"/api/v1/pools?batch_id={batch['id']}")
    assert [p["id"] for p in listed["pools"]] == [pool["id"]]
    # The work order sent to the station carries its pool.
    body = await hub.api(
        "POST",
        "/api/v1/stations/st-1/commands",
        {"command": "work_order", "work_order": ORDER},
        status=202,
    )
    assert body["work_order"] == "WO-7"


async def test_codes_outside_the_lines_pool_are_refused_at_commissioning(plant: Any) -> None:
    hub = plant
    batch = await hub.generate("TEA", 6)
    urls = [row["url"] for row in await hub.export(batch["id"])]
    await hub.api(
        "POST",
        "/api/v1/pools",
        {"batch_id": batch["id"], "first": 1, "last": 2, "line": "L1"},
        status=201,
    )
    await hub.api(
        "POST",
        "/api/v1/pools",
        {"batch_id": batch["id"], "first": 3, "last": 4, "line": "L9"},
        status=201,
    )
    events = [hub.station.commission(u) for u in urls[:5]]
    ack = await hub.station.send(*events)
    assert set(ack.ids) == {events[0].id, events[1].id}
    reasons = {r.id: r.reason for r in ack.rejected}
    serial = urls[2].rsplit("/", 1)[-1]
    assert (
        reasons[events[2].id]
        == f"code {serial} (seq 3) is in the pool of line 'L9', not of line 'L1'"
    )
    serial = urls[4].rsplit("/", 1)[-1]
    assert reasons[events[4].id] == f"code {serial} (seq 5) is outside the code pools of its batch"
    # A reject event is recorded as it is.
    from datetime import UTC, datetime

    from protocols.messages import RejectEvent

    reject = RejectEvent(str(uuid.uuid4()), datetime.now(UTC), 17, "no_read", (), "WO-7")
    ack = await hub.station.send(reject)
    assert ack.ids == (reject.id,)

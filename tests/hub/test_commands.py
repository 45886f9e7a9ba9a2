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
        station_id="st-1", command="work_order", id=body["id"], work_order=WorkOrder(**ORDER)
    )
    assert body == {"id": body["id"], "station_id": "st-1", "command": "work_order"}

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
        assert agent.work_order == WorkOrder(**ORDER)
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

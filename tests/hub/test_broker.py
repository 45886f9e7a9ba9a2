"""The embedded broker: a private mosquitto the hub starts when no broker is configured."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import hub.mosquitto as broker_module
from hub.errors import HubConfigError
from hub.mosquitto import EmbeddedBroker
from hub.web.app import create_app
from hub.web.keys import RUNTIME
from protocols.broker import BrokerAddress


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def exists(path: Path) -> bool:
    return path.exists()


def round_trip(url: str) -> bytes:
    """Subscribe, publish, and return what came back (blocking; run in a thread)."""
    address = BrokerAddress.parse(url)
    subscribed, got = threading.Event(), threading.Event()
    received: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
    client.on_subscribe = lambda *_args: subscribed.set()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        received.append(bytes(msg.payload))
        got.set()

    client.on_message = on_message
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        client.subscribe("t/echo", qos=1)
        assert subscribed.wait(5)
        client.publish("t/echo", b"hello", qos=1)
        assert got.wait(5)
    finally:
        client.disconnect()
        client.loop_stop()
    return received[0]


async def test_embedded_broker_starts_serves_and_stops() -> None:
    broker = EmbeddedBroker()
    await broker.start()
    try:
        assert broker.port > 0
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        assert listening(broker.port)
        assert await asyncio.to_thread(round_trip, broker.url) == b"hello"
        workdir = Path(broker._dir.name)  # type: ignore[union-attr]
        assert exists(workdir / "mosquitto.conf")
    finally:
        await broker.stop()
    assert not listening(broker.port)
    assert not exists(workdir)
    await broker.stop()  # a second stop is harmless


async def test_without_mosquitto_the_error_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker_module.shutil, "which", lambda _name: None)
    monkeypatch.setattr(broker_module, "Path", lambda *_a: Path("/nonexistent/mosquitto"))
    with pytest.raises(HubConfigError) as caught:
        await EmbeddedBroker().start()
    assert str(caught.value) == (
        "No mqtt_url configured and mosquitto is not installed for the embedded broker: "
        "install it (apt-get install mosquitto) or set mqtt_url"
    )


async def test_app_without_mqtt_url_starts_and_stops_its_own_broker(
    aiohttp_client: Any, tmp_path: Path, topic_prefix: str, hub_settings_factory: Any
) -> None:
    settings = hub_settings_factory(f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}", None)
    client = await aiohttp_client(create_app(settings))
    runtime = client.app[RUNTIME]
    address = BrokerAddress.parse(runtime.mqtt_url)
    assert address.host == "127.0.0.1"
    assert address.port not in (0, 1883)
    assert listening(address.port)
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "database": "ok", "mqtt": True}

    await client.close()
    assert not listening(address.port)


async def test_hub_survives_a_broker_restart(
    aiohttp_client: Any,
    tmp_path: Path,
    private_broker: Any,
    hub_settings_factory: Any,
    station_factory: Any,
) -> None:
    """healthz says degraded while the broker is away; afterwards ingestion works again."""
    settings = hub_settings_factory(
        f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}", private_broker.url
    )
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/healthz")).status == 200

    private_broker.stop()
    await wait_for_health(client, 503)
    assert await (await client.get("/healthz")).json() == {
        "status": "degraded",
        "database": "ok",
        "mqtt": False,
    }
    private_broker.start()
    await wait_for_health(client, 200, within=15)

    headers = {"Authorization": "Bearer admin-token"}
    for path, body in (
        ("/api/v1/products", {"sku": "TEA", "name": "Tea"}),
        ("/api/v1/stations", {"station_id": "st-1", "line": "L1"}),
        ("/api/v1/batches", {"sku": "TEA", "count": 1}),
    ):
        assert (await client.post(path, json=body, headers=headers)).status == 201
    export = await (await client.get("/api/v1/batches/1/export", headers=headers)).text()
    serial = export.splitlines()[1].split(",")[1]
    station = await station_factory("st-1", private_broker.url)
    ack = await station.send(station.commission(serial))
    assert ack.rejected == ()


async def wait_for_health(client: Any, status: int, within: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while (await client.get("/healthz")).status != status:
        assert asyncio.get_running_loop().time() < deadline, f"healthz never became {status}"
        await asyncio.sleep(0.1)

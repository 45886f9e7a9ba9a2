"""Hub test helpers: a running hub (real database, real broker) and a station talking MQTT.

Helpers are handed out by fixtures rather than imported, so that test modules of other
packages with the same file names never clash with this directory.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from aiohttp.test_utils import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from hub.models import Code
from hub.settings import Settings, load_settings
from hub.web.app import create_app
from hub.web.keys import RUNTIME, SESSIONS
from protocols.broker import BrokerAddress
from protocols.codes import Keyring
from protocols.messages import Ack, AggregateEvent, CommissionEvent, EventBatch
from protocols.topics import Topics

ADMIN = {"Authorization": "Bearer admin-token"}
WAREHOUSE = {"Authorization": "Bearer wh-token"}
JSON = {"Accept": "application/json"}


def new_secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def hub_settings_for(
    database_url: str, mqtt_url: str | None, topic_prefix: str, **extra: Any
) -> Settings:
    return load_settings(
        overrides={
            "database_url": database_url,
            "mqtt_url": mqtt_url,
            "topic_prefix": topic_prefix,
            "tokens": {"admin-token": "admin", "wh-token": "warehouse"},
            "code_keys": {0: new_secret()},
            "port": 0,
            **extra,
        }
    )


class Hub:
    """A hub app under aiohttp's test client, with the admin chores as one-liners."""

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.app = client.app
        self.settings = settings
        self.topics = Topics(settings.topic_prefix)
        self.runtime = self.app[RUNTIME]
        self.sessions = self.app[SESSIONS]
        self.station: Station

    @property
    def keyring(self) -> Keyring:
        from hub.web.keys import KEYRING

        return self.app[KEYRING]

    async def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Any:
        response = await self.client.request(
            method, path, json=body, headers=ADMIN if headers is None else headers
        )
        text = await response.text()
        assert response.status == status, f"{method} {path}: {response.status} {text}"
        return json.loads(text) if response.content_type == "application/json" else text

    async def add_product(self, sku: str, gtin: str | None = None) -> None:
        await self.api(
            "POST",
            "/api/v1/products",
            {"sku": sku, "name": f"Product {sku}", "gtin": gtin},
            status=201,
        )

    async def add_station(self, station_id: str, line: str = "L1", site: str = "Plant A") -> None:
        await self.api(
            "POST",
            "/api/v1/stations",
            {"station_id": station_id, "line": line, "site": site},
            status=201,
        )

    async def add_dealer(self, code: str, region: str = "Zhejiang") -> None:
        await self.api(
            "POST",
            "/api/v1/dealers",
            {"code": code, "name": f"Dealer {code}", "region": region},
            status=201,
        )

    async def generate(
        self, sku: str, count: int, kind: str = "item", with_pin: bool = False
    ) -> dict[str, Any]:
        return dict(
            await self.api(
                "POST",
                "/api/v1/batches",
                {"sku": sku, "count": count, "kind": kind, "with_pin": with_pin},
                status=201,
            )
        )

    async def export(self, batch_id: int) -> list[dict[str, str]]:
        text = await self.api("GET", f"/api/v1/batches/{batch_id}/export")
        return list(csv.DictReader(io.StringIO(text)))

    async def urls(self, sku: str, count: int, kind: str = "item") -> list[str]:
        batch = await self.generate(sku, count, kind)
        return [row["url"] for row in await self.export(batch["id"])]

    async def verify(self, url: str, **headers: str) -> dict[str, Any]:
        response = await self.client.get(path_of(url), headers={**JSON, **headers})
        assert response.status == 200, await response.text()
        return dict(await response.json())

    async def ship(self, codes: Sequence[str], **fields: Any) -> dict[str, Any]:
        body = {"id": str(uuid.uuid4()), "order": "SO-1", "dealer": "D1", "codes": list(codes)}
        body.update(fields)
        return dict(await self.api("POST", "/api/v1/shipments", body, headers=WAREHOUSE))

    async def code(self, url_or_serial: str) -> Code:
        serial = url_or_serial.rstrip("/").rsplit("/", 1)[-1]
        async with self.sessions() as session:
            code = await session.scalar(select(Code).where(Code.serial == serial))
        assert code is not None, serial
        return code

    async def scalar(self, statement: Any) -> Any:
        async with self.sessions() as session:
            return await session.scalar(statement)

    async def rows(self, statement: Any) -> list[Any]:
        async with self.sessions() as session:
            return list((await session.execute(statement)).all())

    async def count(self, model: Any, *where: Any) -> int:
        return int(await self.scalar(select(func.count()).select_from(model).where(*where)))

    async def stats(self) -> dict[str, int]:
        info = await self.api("GET", "/api/v1/info")
        return dict(info["ingest"])

    async def commissioned(self, sku: str, count: int, kind: str = "item") -> list[str]:
        """Printed URLs of new codes, read on the line by station st-1 (``plant`` fixture)."""
        urls = await self.urls(sku, count, kind)
        ack = await self.station.send(*(self.station.commission(u) for u in urls))
        assert ack.rejected == (), ack
        return urls


def path_of(url: str) -> str:
    """The path (and query) of a printed URL, to request it from the test server."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class Station:
    """A station as the hub sees it: publishes event batches, receives acks (paho thread)."""

    def __init__(self, broker_url: str, topics: Topics, station_id: str) -> None:
        self.topics = topics
        self.station_id = station_id
        self.acks: asyncio.Queue[Ack] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._subscribed = asyncio.Event()
        address = BrokerAddress.parse(broker_url)
        self._address = address
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-station-{uuid.uuid4().hex[:10]}",
            protocol=mqtt.MQTTv5,
        )
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    async def start(self) -> None:
        self._client.connect(self._address.host, self._address.port)
        self._client.loop_start()
        self._client.subscribe(self.topics.ack(self.station_id), qos=1)
        await asyncio.wait_for(self._subscribed.wait(), 10)

    async def stop(self) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    def _on_subscribe(self, *_args: Any) -> None:
        self._loop.call_soon_threadsafe(self._subscribed.set)

    def _on_message(self, _client: Any, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        ack = Ack.parse(bytes(msg.payload))
        self._loop.call_soon_threadsafe(self.acks.put_nowait, ack)

    @staticmethod
    def commission(code: str, **fields: Any) -> CommissionEvent:
        """A commissioning read of ``code`` (work order WO-1, lot LOT-1 unless given)."""
        return CommissionEvent(
            id=fields.pop("id", str(uuid.uuid4())),
            at=fields.pop("at", datetime.now(UTC)),
            code=code,
            **{"work_order": "WO-1", "lot": "LOT-1", **fields},
        )

    @staticmethod
    def aggregate(parent: str, children: Sequence[str], **fields: Any) -> AggregateEvent:
        return AggregateEvent(
            id=fields.pop("id", str(uuid.uuid4())),
            at=fields.pop("at", datetime.now(UTC)),
            parent=parent,
            children=tuple(children),
        )

    async def send(self, *events: CommissionEvent | AggregateEvent) -> Ack:
        """Publish one batch and wait for its ack."""
        batch = self.publish(*events)
        ack = await self.ack()
        assert set(ack.all_ids) == {e.id for e in batch.events}, ack
        return ack

    def publish_raw(self, payload: bytes, topic: str | None = None) -> None:
        info = self._client.publish(topic or self.topics.events(self.station_id), payload, qos=1)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, info.rc

    def publish(self, *events: CommissionEvent | AggregateEvent) -> EventBatch:
        batch = EventBatch(station_id=self.station_id, sent_at=datetime.now(UTC), events=events)
        self.publish_raw(batch.to_json())
        return batch

    async def ack(self, within: float = 10.0) -> Ack:
        return await asyncio.wait_for(self.acks.get(), within)

    async def no_ack(self, seconds: float = 0.5) -> None:
        with pytest.raises(TimeoutError):
            ack = await asyncio.wait_for(self.acks.get(), seconds)
            raise AssertionError(f"unexpected ack {ack}")


@pytest.fixture
def hub_settings(database_url: str, broker_url: str, topic_prefix: str) -> Settings:
    return hub_settings_for(database_url, broker_url, topic_prefix)


async def start_hub(aiohttp_client: Any, settings: Settings) -> Hub:
    client = await aiohttp_client(create_app(settings))
    client.app[RUNTIME].public_base = str(client.make_url("")).rstrip("/")
    return Hub(client, settings)


@pytest.fixture
async def hub(aiohttp_client: Any, hub_settings: Settings) -> Hub:
    """A running hub, once on SQLite and once on PostgreSQL."""
    return await start_hub(aiohttp_client, hub_settings)


@pytest.fixture
async def sqlite_hub(
    aiohttp_client: Any, tmp_path: Path, broker_url: str, topic_prefix: str
) -> Hub:
    """A running hub on SQLite only, for tables about the HTTP layer (auth, bodies, pages)
    where the database plays no part: they would only double the run time."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}"
    return await start_hub(aiohttp_client, hub_settings_for(url, broker_url, topic_prefix))


GTIN = "09506000134352"


@pytest.fixture
async def plant(hub: Hub, station_factory: Callable[..., Awaitable[Station]]) -> Hub:
    """A hub with products TEA (no GTIN) and WINE (GTIN 09506000134352), dealer D1
    (region Zhejiang) and station st-1 registered and connected as ``hub.station``."""
    return await furnish(hub, station_factory)


@pytest.fixture
async def sqlite_plant(sqlite_hub: Hub, station_factory: Callable[..., Awaitable[Station]]) -> Hub:
    """``plant`` on SQLite only (see ``sqlite_hub``)."""
    return await furnish(sqlite_hub, station_factory)


async def furnish(hub: Hub, station_factory: Callable[..., Awaitable[Station]]) -> Hub:
    await hub.add_product("TEA")
    await hub.add_product("WINE", GTIN)
    await hub.add_station("st-1")
    await hub.add_dealer("D1", region="Zhejiang")
    hub.station = await station_factory("st-1")
    return hub


@pytest.fixture
async def station_factory(
    broker_url: str, topic_prefix: str
) -> AsyncIterator[Callable[..., Awaitable[Station]]]:
    started: list[Station] = []

    async def make(station_id: str, url: str | None = None) -> Station:
        station = Station(url or broker_url, Topics(topic_prefix), station_id)
        await station.start()
        started.append(station)
        return station

    yield make
    for station in started:
        await station.stop()


class Db:
    """A migrated database and a keyring, for service-level tests without the web app."""

    def __init__(self, url: str, sessions: Any, keyring: Keyring) -> None:
        self.url = url
        self.sessions = sessions
        self.keyring = keyring

    async def scalar(self, statement: Any) -> Any:
        async with self.sessions() as session:
            return await session.scalar(statement)

    async def count(self, model: Any, *where: Any) -> int:
        return int(await self.scalar(select(func.count()).select_from(model).where(*where)))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Db]:
    from hub.db import create_engine, sessionmaker, upgrade

    await upgrade(database_url)
    engine = create_engine(database_url)
    keyring = Keyring.from_secrets({0: secrets.token_bytes(32)}, 0)
    try:
        yield Db(database_url, sessionmaker(engine), keyring)
    finally:
        await engine.dispose()


@pytest.fixture
def hub_settings_factory(topic_prefix: str) -> Callable[..., Settings]:
    """Settings for a hub on a given database and broker (None: the embedded broker)."""

    def make(database_url: str, mqtt_url: str | None, **extra: Any) -> Settings:
        return hub_settings_for(database_url, mqtt_url, topic_prefix, **extra)

    return make

"""What an ack promises: the events are on disk, and the broker keeps the hub's messages
while it is away (issue 5 §8, durability)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select, text

from hub.models import DeadLetter
from hub.settings import load_settings
from hub.web.app import create_app
from hub.web.keys import SESSIONS
from protocols.broker import BrokerAddress

from .conftest import furnish, start_hub


async def test_sqlite_commits_with_synchronous_full(sqlite_hub: Any) -> None:
    """WAL with synchronous=NORMAL may lose committed (and acked) transactions on power loss."""
    sessions = sqlite_hub.client.app[SESSIONS]
    async with sessions() as session:
        assert (await session.execute(text("PRAGMA synchronous"))).scalar() == 2  # FULL
        assert (await session.execute(text("PRAGMA journal_mode"))).scalar() == "wal"


def test_client_id_is_stable_only_when_the_hub_can_be_told_apart() -> None:
    base = {"code_keys": {}, "topic_prefix": "p"}
    fixed = load_settings(overrides={**base, "port": 8080}).mqtt_session()
    assert fixed == load_settings(overrides={**base, "port": 8080}).mqtt_session()
    assert fixed[0] is not None and fixed[1] > 0
    assert load_settings(overrides={**base, "port": 8081}).mqtt_session()[0] != fixed[0]
    assert load_settings(overrides={**base, "port": 0}).mqtt_session() == (None, 0)
    named = {**base, "port": 0, "mqtt_client_id": "hub-a", "mqtt_session_expiry_s": 60}
    assert load_settings(overrides=named).mqtt_session() == ("hub-a", 60)


async def test_events_published_while_the_hub_is_down_are_delivered_when_it_returns(
    aiohttp_client: Any,
    tmp_path: Path,
    broker_url: str,
    hub_settings_factory: Any,
    station_factory: Any,
) -> None:
    """The broker queues QoS 1 events for the hub's persistent session: after a restart the
    hub applies and acks them without waiting for the station to send them again."""
    client_id = f"test-hub-{uuid.uuid4().hex[:12]}"
    settings = hub_settings_factory(
        f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}",
        broker_url,
        mqtt_client_id=client_id,
        mqtt_session_expiry_s=120,
    )
    try:
        hub = await furnish(await start_hub(aiohttp_client, settings), station_factory)
        urls = await hub.urls("TEA", 3)
        await hub.client.close()  # the hub goes away; its session stays with the broker

        batch = hub.station.publish(*(hub.station.commission(url) for url in urls))
        await hub.station.no_ack(0.5)

        again = await start_hub(aiohttp_client, settings)
        ack = await hub.station.ack(within=15)
        assert set(ack.ids) == {e.id for e in batch.events}
        for url in urls:
            assert (await again.code(url)).state == "commissioned"
    finally:
        await asyncio.to_thread(_end_session, broker_url, client_id)


def _end_session(broker_url: str, client_id: str) -> None:
    """A clean-start connection under the same id discards the session in the broker."""
    address = BrokerAddress.parse(broker_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect(address.host, address.port, clean_start=True)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


async def test_dead_letters_are_capped_and_the_newest_kept(
    aiohttp_client: Any,
    database_url: str,
    broker_url: str,
    hub_settings_factory: Any,
    station_factory: Any,
) -> None:
    """Junk on the events topic cannot fill the disk: past the cap the oldest go first."""
    settings = hub_settings_factory(database_url, broker_url, dead_letter_max_rows=3)
    hub = await furnish(await start_hub(aiohttp_client, settings), station_factory)
    for n in range(6):
        hub.station.publish_raw(b"junk %d" % n)
    url = (await hub.urls("TEA", 1))[0]
    await hub.station.send(hub.station.commission(url))  # published after the junk

    letters = await hub.rows(select(DeadLetter.payload).order_by(DeadLetter.id))
    assert [row[0] for row in letters] == [b"junk 3", b"junk 4", b"junk 5"]

"""The embedded broker with station credentials: each station may use only its own topics."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.mosquitto import HUB_USER, BrokerAuth, EmbeddedBroker, hash_password
from protocols.topics import Channel, Topics

TOPICS = Topics("acltest")
PASSWORDS = {"line-a": "password-of-a", "line-b": "password-of-b"}


def test_hash_password_is_mosquittos_format() -> None:
    hashed = hash_password("secret", salt=b"0123456789ab")
    assert hashed.startswith("$7$101$MDEyMzQ1Njc4OWFi$")
    assert hashed != hash_password("secret")  # a fresh salt each time


def test_acl_file_lets_stations_use_their_own_topics_only() -> None:
    acl = BrokerAuth("x", {}, TOPICS).acl_file()
    assert acl.splitlines() == [
        f"user {HUB_USER}",
        "topic readwrite #",
        "",
        "# every other user is a station: its own topics only",
        "pattern write acltest/yima/v1/station/%u/events",
        "pattern write acltest/yima/v1/station/%u/status",
        "pattern read acltest/yima/v1/station/%u/ack",
        "pattern read acltest/yima/v1/station/%u/command",
    ]


class Client:
    def __init__(self, port: int, user: str, password: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.connect_rc: Any = None
        self._connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connect_rc = rc
        self._connected.set()

    def wait(self) -> Any:
        assert self._connected.wait(10)
        return self.connect_rc

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(10)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
async def broker() -> AsyncIterator[EmbeddedBroker]:
    auth = BrokerAuth("hub-password", {s: hash_password(p) for s, p in PASSWORDS.items()}, TOPICS)
    started = EmbeddedBroker(auth)
    await started.start()
    yield started
    await started.stop()


async def test_station_a_cannot_publish_as_b_or_read_bs_commands(broker: EmbeddedBroker) -> None:
    hub = Client(broker.port, HUB_USER, "hub-password")
    a = Client(broker.port, "line-a", PASSWORDS["line-a"])
    try:
        assert not hub.wait().is_failure and not a.wait().is_failure
        hub.subscribe(TOPICS.all_stations(Channel.EVENTS))
        a.subscribe(TOPICS.command("line-b"))
        a.subscribe(TOPICS.command("line-a"))
        a.publish(TOPICS.events("line-b"), b"forged as b")
        a.publish(TOPICS.events("line-a"), b"from a")
        hub.publish(TOPICS.command("line-b"), b"for b only", retain=True)
        hub.publish(TOPICS.command("line-a"), b"for a", retain=True)
        await asyncio.sleep(0.5)
        assert hub.messages == [(TOPICS.events("line-a"), b"from a")]
        assert a.messages == [(TOPICS.command("line-a"), b"for a")]
        # Clean the retained commands.
        hub.publish(TOPICS.command("line-a"), b"", retain=True)
        hub.publish(TOPICS.command("line-b"), b"", retain=True)
    finally:
        hub.close()
        a.close()


async def test_wrong_or_missing_credentials_are_refused(broker: EmbeddedBroker) -> None:
    wrong = Client(broker.port, "line-a", "password-of-b")
    nobody = Client(broker.port, "line-c", "anything")
    try:
        assert wrong.wait().is_failure
        assert nobody.wait().is_failure
    finally:
        wrong.close()
        nobody.close()

"""Fixtures of the edge agent tests: a fake hub on the real broker, station settings, waits.

Test modules are imported in importlib mode, so they cannot import helpers from a sibling
module: everything they share comes through these fixtures.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.settings import EdgeSettings, broker_address
from protocols.messages import Ack, Command, EventBatch, Rejection, StationEvent, Status
from protocols.topics import Topics


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class FakeHub:
    """Plays the hub for one station: collects its event batches and statuses, sends acks and
    commands. With ``auto_ack`` it acks every batch as soon as it arrives, as the hub does
    after its transaction commits."""

    def __init__(self, broker_url: str, prefix: str, station_id: str, *, auto_ack: bool) -> None:
        self.topics = Topics(prefix)
        self.station_id = station_id
        self.auto_ack = auto_ack
        self.batches: list[EventBatch] = []
        self.statuses: list[Status] = []
        self.bad_payloads: list[bytes] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._host, self._port, _ = broker_address(broker_url)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"fake-hub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def start(self) -> FakeHub:
        self.client.connect_async(self._host, self._port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "fake hub could not subscribe"
        return self

    def stop(self) -> None:
        """Disconnect, deleting the station's retained status first, so test runs leave
        nothing behind on a shared broker (stations must be stopped before)."""
        if self.client.is_connected():
            self.clear_retained_status()
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        # Subscribing on every connect keeps the hub listening across broker restarts.
        client.subscribe(
            [(self.topics.events(self.station_id), 1), (self.topics.status(self.station_id), 1)]
        )

    def _on_subscribe(self, *args: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        payload = bytes(message.payload)
        if message.topic == self.topics.status(self.station_id):
            if payload:  # an empty retained message is our own clean-up
                with self._lock:
                    self.statuses.append(Status.parse(payload))
            return
        try:
            batch = EventBatch.parse(payload)
        except Exception:
            with self._lock:
                self.bad_payloads.append(payload)
            return
        with self._lock:
            self.batches.append(batch)
        if self.auto_ack:
            # No wait_for_publish here: this is paho's network thread, which must be free to
            # read the PUBACK.
            ack = Ack(self.station_id, tuple(e.id for e in batch.events))
            client.publish(self.topics.ack(self.station_id), ack.to_json(), qos=1)

    # -- what the tests look at and do -----------------------------------------------------

    @property
    def events(self) -> list[StationEvent]:
        """Every event received, resends included, in arrival order."""
        with self._lock:
            return [e for b in self.batches for e in b.events]

    def event_ids(self) -> set[str]:
        return {e.id for e in self.events}

    def states(self) -> list[tuple[str, str | None]]:
        with self._lock:
            return [(s.state, s.detail) for s in self.statuses]

    def ack(self, ids: list[str], rejected: tuple[Rejection, ...] = ()) -> None:
        ack = Ack(self.station_id, tuple(ids), rejected)
        self.publish_ack(ack.to_json())

    def publish_ack(self, payload: bytes) -> None:
        self.client.publish(self.topics.ack(self.station_id), payload, qos=1).wait_for_publish(5)

    def command(self, command: Command) -> None:
        self.publish_command(command.to_json())

    def publish_command(self, payload: bytes) -> None:
        topic = self.topics.command(self.station_id)
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def clear_retained_status(self) -> None:
        self.client.publish(
            self.topics.status(self.station_id), b"", qos=1, retain=True
        ).wait_for_publish(5)


def _settings(tmp_path: Path, **overrides: Any) -> EdgeSettings:
    """Settings for a test station: fast flushes and reconnects, outbox under tmp_path."""
    values: dict[str, Any] = {
        "outbox_path": tmp_path / "outbox.sqlite3",
        "source": "test",
        "flush_interval": 0.02,
        "reconnect_min_delay": 0.1,
        "reconnect_max_delay": 0.5,
    }
    values.update(overrides)
    return EdgeSettings.model_validate(values)


@pytest.fixture
def station_id() -> str:
    return f"cam-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_hub(
    broker_url: str, topic_prefix: str, station_id: str
) -> Iterator[Callable[..., FakeHub]]:
    """Start fake hubs for this test's station (on ``url``, default the shared broker)."""
    hubs: list[FakeHub] = []

    def make(*, auto_ack: bool = False, url: str | None = None) -> FakeHub:
        hub = FakeHub(url or broker_url, topic_prefix, station_id, auto_ack=auto_ack).start()
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.stop()


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., bool]:
    return wait_until


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., EdgeSettings]:
    """Settings for a test station: fast flushes and reconnects, outbox under tmp_path."""

    def make(**overrides: Any) -> EdgeSettings:
        return _settings(tmp_path, **overrides)

    return make


@pytest.fixture
def closed_broker_url() -> str:
    """An mqtt:// URL of a loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"mqtt://127.0.0.1:{s.getsockname()[1]}"

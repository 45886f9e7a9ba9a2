"""MQTT for the hub: paho in its own thread, messages handed to asyncio, acks after commit.

Connection, subscription and dispatch are separate: ``HubMqtt`` owns the paho client and
only moves messages between threads; ``IngestWorker`` batches them into transactions.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hub.errors import ConfigError, UnavailableError
from hub.ingest import IngestReport
from protocols.broker import BrokerAddress
from protocols.messages import Ack, Command
from protocols.topics import Channel, Topics

log = logging.getLogger(__name__)

Message = tuple[str, bytes]


class HubMqtt:
    """Subscribes to every station's events (shared) and status; publishes acks."""

    def __init__(self, address: BrokerAddress, topics: Topics, share_group: str) -> None:
        self.address = address
        self.topics = topics
        self.share_group = share_group
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self.connected = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._auth_failed = False
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"yima-hub-{uuid.uuid4().hex[:10]}",
            protocol=mqtt.MQTTv5,
        )
        if address.username:
            self._client.username_pw_set(address.username, address.password)
        if address.tls:
            self._client.tls_set()
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    async def start(self, within: float = 15.0) -> None:
        self._loop = asyncio.get_running_loop()
        self._client.connect_async(self.address.host, self.address.port, keepalive=30)
        self._client.loop_start()
        try:
            await asyncio.wait_for(self.connected.wait(), within)
        except TimeoutError:
            await self.stop()
            raise ConfigError(f"Cannot reach the MQTT broker at {self.address.url}") from None

    async def stop(self) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    def publish_ack(self, ack: Ack) -> None:
        self._client.publish(self.topics.ack(ack.station_id), ack.to_json(), qos=1)

    def publish_command(self, command: Command) -> None:
        """Retained, so a station that connects later still gets its current work order."""
        if not self.connected.is_set():
            raise UnavailableError(f"The MQTT broker at {self.address.url} is not reachable")
        info = self._client.publish(
            self.topics.command(command.station_id), command.to_json(), qos=1, retain=True
        )
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise UnavailableError(f"Publishing the command failed: {mqtt.error_string(info.rc)}")

    # paho thread below -------------------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker %s refused the hub: %s", self.address.url, reason)
            if reason.value in (0x86, 0x87, 0x8C):  # bad credentials / not authorized
                self._auth_failed = True
                client.disconnect()
            return
        client.subscribe(
            [
                (self.topics.shared_events(self.share_group), 1),
                (self.topics.all_stations(Channel.STATUS), 1),
            ]
        )
        log.info("hub connected to %s", self.address.url)

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _mid: int,
        reasons: list[ReasonCode],
        _props: Properties | None,
    ) -> None:
        # Ready only once the broker has granted the subscriptions: before that, events
        # published to the hub would be lost to it (the stations would resend them later).
        if any(r.is_failure for r in reasons):
            log.error("broker %s refused the hub's subscriptions: %s", self.address.url, reasons)
            return
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.connected.set)

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        log.warning("hub disconnected from %s: %s", self.address.url, reason)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.connected.clear)

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.queue.put_nowait, (msg.topic, bytes(msg.payload)))


@dataclass
class IngestStats:
    messages: int = 0
    transactions: int = 0
    applied: int = 0
    refused: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    failures: int = 0


class IngestWorker:
    """Drains the queue into transactions of up to ``max_messages`` messages."""

    def __init__(
        self,
        queue: asyncio.Queue[Message],
        apply: Callable[[list[Message]], Awaitable[IngestReport]],
        publish_ack: Callable[[Ack], None],
        max_messages: int,
        linger: float,
    ) -> None:
        self.queue = queue
        self.apply = apply
        self.publish_ack = publish_ack
        self.max_messages = max_messages
        self.linger = linger
        self.stats = IngestStats()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.linger
            while len(batch) < self.max_messages:
                remaining = deadline - loop.time()
                try:
                    batch.append(
                        self.queue.get_nowait()
                        if remaining <= 0
                        else await asyncio.wait_for(self.queue.get(), remaining)
                    )
                except (asyncio.QueueEmpty, TimeoutError):
                    break
            await self.process(batch)

    async def process(self, batch: list[Message]) -> None:
        self.stats.messages += len(batch)
        await self._apply(batch)

    async def _apply(self, batch: list[Message]) -> None:
        try:
            report = await self.apply(batch)
        except Exception:
            self.stats.failures += 1
            if len(batch) == 1:
                # Not acked: the station keeps the events and sends them again.
                log.exception("ingest failed for a message on %s", batch[0][0][:120])
                return
            log.warning("ingest of %d messages failed; retrying one by one", len(batch))
            for message in batch:
                await self._apply([message])
            return
        self.stats.transactions += 1
        self.stats.applied += report.applied
        self.stats.refused += report.refused
        self.stats.duplicates += report.duplicates
        self.stats.dead_letters += report.dead_letters
        for ack in report.acks:
            self.publish_ack(ack)

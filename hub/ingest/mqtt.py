"""The hub's MQTT connection: paho in its own thread, messages handed to asyncio.

``HubMqtt`` owns the paho client and only moves messages between threads and publishes;
``hub.ingest.service`` batches the messages into transactions and acks after commit.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hub.errors import HubConfigError, UnavailableError
from protocols.broker import BrokerAddress
from protocols.messages import Ack, Command
from protocols.topics import Channel, Topics

log = logging.getLogger(__name__)

Message = tuple[str, bytes]


class HubMqtt:
    """Subscribes to every station's events (shared) and status; publishes acks."""

    def __init__(
        self,
        address: BrokerAddress,
        topics: Topics,
        share_group: str,
        client_id: str | None = None,
        session_expiry_s: int = 0,
    ) -> None:
        self.address = address
        self.topics = topics
        self.share_group = share_group
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self.connected = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._auth_failed = False
        # A stable client id with a session expiry makes the broker keep the hub's session
        # (its subscriptions and the QoS 1 messages published meanwhile) across a restart;
        # the stations' outboxes stay the guarantee for anything the broker drops.
        self.session_expiry_s = session_expiry_s
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"yima-hub-{uuid.uuid4().hex[:10]}",
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
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.session_expiry_s
        self._client.connect_async(
            self.address.host,
            self.address.port,
            keepalive=30,
            clean_start=self.session_expiry_s == 0,
            properties=properties,
        )
        self._client.loop_start()
        try:
            await asyncio.wait_for(self.connected.wait(), within)
        except TimeoutError:
            await self.stop()
            raise HubConfigError(f"Cannot reach the MQTT broker at {self.address.url}") from None

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

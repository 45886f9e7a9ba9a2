"""MQTT uplink: carries the outbox to the hub and the hub's acks and commands back.

paho-mqtt 2.x runs the network in its own thread (``loop_start``); a second small thread, the
sender, publishes what the outbox says is due. Nothing is published while the connection is
down: events simply wait in the outbox, and on every (re)connect all of them become due again,
because nothing in flight over a dead connection can be trusted. Only the hub's ``Ack``
deletes events; the broker's PUBACK proves nothing about the hub.

The station's retained status topic says ``online`` while connected; the broker publishes the
retained last will ``offline`` when the connection dies without a DISCONNECT. Reconnects back
off exponentially (paho's reconnect_delay_set) and stop for good on an authorization failure,
which retrying cannot fix.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.interfaces import UplinkCounters
from edge_agent.outbox import Outbox
from edge_agent.settings import EdgeSettings, broker_address
from protocols.errors import MessageError, OversizedMessageError
from protocols.messages import (
    MAX_BATCH_EVENTS,
    MAX_PAYLOAD_BYTES,
    Ack,
    Command,
    EventBatch,
    Rejection,
    StationEvent,
    Status,
    now,
)
from protocols.topics import Topics

logger = logging.getLogger(__name__)

# CONNACK reasons that retrying cannot fix (MQTT 5 codes; paho maps MQTT 3.1.1's 4 and 5 here).
_AUTH_FAILURES = {134, 135}  # Bad user name or password, Not authorized
_LOG_PAYLOAD = 200  # bytes of a bad payload worth logging
DEFAULT_MAX_IN_FLIGHT = 2000

CommandHandler = Callable[[Command], None]


def _short(payload: bytes) -> str:
    text = payload[:_LOG_PAYLOAD].decode("utf-8", errors="replace")
    return text + ("..." if len(payload) > _LOG_PAYLOAD else "")


class MqttUplink:
    def __init__(
        self,
        *,
        station_id: str,
        broker_url: str,
        outbox: Outbox,
        topics: Topics | None = None,
        on_command: CommandHandler | None = None,
        username: str | None = None,
        password: str | None = None,
        batch_size: int = MAX_BATCH_EVENTS,
        flush_interval: float = 0.1,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        keepalive: int = 30,
        reconnect_min_delay: float = 1.0,
        reconnect_max_delay: float = 60.0,
        heartbeat_interval: float = 10.0,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_size expected 1..{MAX_BATCH_EVENTS}, got {batch_size}")
        self.station_id = station_id
        self.broker_url = broker_url
        self.outbox = outbox
        self.topics = topics if topics is not None else Topics()
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_in_flight = max_in_flight
        self._on_command = on_command
        self._host, self._port, tls = broker_address(broker_url)
        self._keepalive = keepalive
        self._events_topic = self.topics.events(station_id)
        self._ack_topic = self.topics.ack(station_id)
        self._command_topic = self.topics.command(station_id)
        self._status_topic = self.topics.status(station_id)

        self._lock = threading.Lock()
        self._published = self._acked = self._rejected = self._bad = 0
        self._ready = threading.Event()  # connected and subscribed
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._subscribe_mid: int | None = None
        self._sender: threading.Thread | None = None
        self.auth_failed = False
        # Counters and alarms for the heartbeat (the agent sets it); None: plain "online".
        self.heartbeat: (
            Callable[[], tuple[tuple[tuple[str, float], ...], tuple[str, ...]]] | None
        ) = None
        self.heartbeat_interval = heartbeat_interval
        self._beat: threading.Thread | None = None

        client_id = f"{station_id}-{uuid.uuid4().hex[:8]}"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls:
            self._client.tls_set()
        # paho takes int delays in its signature but computes with floats.
        self._client.reconnect_delay_set(reconnect_min_delay, reconnect_max_delay)  # type: ignore[arg-type]
        self._client.will_set(
            self._status_topic,
            Status(self.station_id, "offline", at=now(), detail="connection lost").to_json(),
            qos=1,
            retain=True,
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.message_callback_add(self._ack_topic, self._on_ack)
        self._client.message_callback_add(self._command_topic, self._on_command_message)

    @classmethod
    def from_settings(
        cls, settings: EdgeSettings, outbox: Outbox, on_command: CommandHandler | None
    ) -> MqttUplink:
        password = settings.mqtt_password
        return cls(
            station_id=settings.station_id,
            broker_url=settings.mqtt_url,
            outbox=outbox,
            topics=settings.topics,
            on_command=on_command,
            username=settings.mqtt_username,
            password=None if password is None else password.get_secret_value(),
            batch_size=settings.batch_size,
            flush_interval=settings.flush_interval,
            keepalive=settings.keepalive,
            reconnect_min_delay=settings.reconnect_min_delay,
            reconnect_max_delay=settings.reconnect_max_delay,
            heartbeat_interval=settings.heartbeat_interval,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying until the broker answers) and start sending."""
        if self._sender is not None:
            raise RuntimeError("uplink already started")
        self._client.connect_async(self._host, self._port, keepalive=self._keepalive)
        self._client.loop_start()
        self._sender = threading.Thread(
            target=self._send_loop, name=f"uplink-{self.station_id}", daemon=True
        )
        self._sender.start()
        self._beat = threading.Thread(
            target=self._heartbeat_loop, name=f"heartbeat-{self.station_id}", daemon=True
        )
        self._beat.start()

    def _online(self) -> Status:
        counters: tuple[tuple[str, float], ...] = ()
        alarms: tuple[str, ...] = ()
        if self.heartbeat is not None:
            try:
                counters, alarms = self.heartbeat()
            except Exception:
                logger.exception("Heartbeat counters of %s failed", self.station_id)
        return Status(self.station_id, "online", at=now(), counters=counters, alarms=alarms)

    def _heartbeat_loop(self) -> None:
        while not self._stopping.wait(self.heartbeat_interval):
            if self._ready.is_set():
                self._client.publish(
                    self._status_topic, self._online().to_json(), qos=1, retain=True
                )

    def stop(self, timeout: float = 5.0) -> None:
        """Say offline (retained), disconnect cleanly and stop both threads."""
        self._stopping.set()
        self._wake.set()
        if self._sender is not None:
            self._sender.join(timeout)
        if self._beat is not None:
            self._beat.join(timeout)
        if self._ready.is_set():
            info = self._client.publish(
                self._status_topic,
                Status(self.station_id, "offline", at=now(), detail="stopped").to_json(),
                qos=1,
                retain=True,
            )
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError) as exc:
                logger.warning("Offline status of %s not confirmed: %s", self.station_id, exc)
        self._ready.clear()
        self._client.disconnect()
        self._client.loop_stop()

    def notify(self) -> None:
        self._wake.set()

    def wait_connected(self, timeout: float) -> bool:
        """True once connected and subscribed to acks and commands."""
        return self._ready.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    def counters(self) -> UplinkCounters:
        with self._lock:
            return UplinkCounters(
                published=self._published,
                acked=self._acked,
                rejected=self._rejected,
                bad_messages=self._bad,
                connected=self._ready.is_set(),
            )

    # -- sending -----------------------------------------------------------------------------

    def _send_loop(self) -> None:
        # Waking at least once per resend interval is what makes unacked events go out again.
        tick = min(1.0, self.outbox.resend_interval)
        while not self._stopping.is_set():
            self._wake.wait(tick)
            self._wake.clear()
            if self._stopping.is_set() or not self._ready.is_set():
                continue
            # Linger a little so the items of the next few frames share one message.
            if self._stopping.wait(self.flush_interval):
                break
            try:
                self._send_due()
            except Exception:
                # The sender must outlive a bad moment (disk full, broker glitch): events stay
                # in the outbox and the next tick tries again.
                logger.exception("Sending the outbox of %s failed", self.station_id)

    def _send_due(self) -> None:
        while self._ready.is_set() and not self._stopping.is_set():
            at = time.time()
            room = self.max_in_flight - self.outbox.in_flight_count(at)
            if room <= 0:
                return
            events = self.outbox.due(min(self.batch_size, room), at)
            if not events:
                return
            if not self._publish(events):
                return
            if len(events) < self.batch_size:
                return

    def _publish(self, events: Sequence[StationEvent]) -> bool:
        """Publish one or more batches holding ``events``; False if the client refused."""
        try:
            payload = EventBatch(self.station_id, now(), tuple(events)).to_json()
        except OversizedMessageError:
            payload = b""  # too big for one message: split below
        if not payload or len(payload) > MAX_PAYLOAD_BYTES:
            if len(events) == 1:
                # Cannot happen with codes of at most MAX_CODE_TEXT characters; never block
                # the queue behind it.
                self.outbox.reject([Rejection(events[0].id, "event too large for one message")])
                logger.error("Event %s of %s is too large to send", events[0].id, self.station_id)
                return True
            half = len(events) // 2
            return self._publish(events[:half]) and self._publish(events[half:])
        info = self._client.publish(self._events_topic, payload, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            logger.warning(
                "Publishing %s events of %s failed: %s; they stay in the outbox",
                len(events),
                self.station_id,
                mqtt.error_string(info.rc),
            )
            return False
        self.outbox.mark_sent([e.id for e in events])
        with self._lock:
            self._published += len(events)
        return True

    # -- paho callbacks (network thread) ----------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            if reason.value in _AUTH_FAILURES:
                self.auth_failed = True
                logger.error(
                    "Broker %s:%s refused station %s: %s; not reconnecting (check credentials "
                    "and ACL)",
                    self._host,
                    self._port,
                    self.station_id,
                    reason,
                )
                # disconnect() inside the callback ends paho's loop: no more reconnects.
                client.disconnect()
            else:
                logger.warning(
                    "Broker %s:%s refused the connection of %s: %s; retrying",
                    self._host,
                    self._port,
                    self.station_id,
                    reason,
                )
            return
        logger.info("Station %s connected to %s:%s", self.station_id, self._host, self._port)
        _, self._subscribe_mid = client.subscribe([(self._ack_topic, 1), (self._command_topic, 1)])
        client.publish(self._status_topic, self._online().to_json(), qos=1, retain=True)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if mid != self._subscribe_mid:
            return
        refused = [str(r) for r in reason_codes if r.is_failure]
        if refused:
            logger.error(
                "Broker refused the ack/command subscriptions of %s: %s; not sending events "
                "(no ack could ever come back)",
                self.station_id,
                ", ".join(refused),
            )
            return
        # Whatever was sent over an earlier connection may be lost with it: send it all again.
        self.outbox.resend_all()
        self._ready.set()
        self._wake.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_ready = self._ready.is_set()
        self._ready.clear()
        if was_ready and not self._stopping.is_set():
            logger.warning(
                "Station %s lost the broker (%s); events wait in the outbox",
                self.station_id,
                reason,
            )

    def _bad_message(self, kind: str, message: mqtt.MQTTMessage, problem: object) -> None:
        logger.warning(
            "Ignoring bad %s for %s on %s: %s; payload %s",
            kind,
            self.station_id,
            message.topic,
            problem,
            _short(bytes(message.payload)),
        )
        # Counted after logging, so whoever sees the count can also find the log record.
        with self._lock:
            self._bad += 1

    def _on_ack(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            ack = Ack.parse(bytes(message.payload))
        except MessageError as exc:
            self._bad_message("ack", message, exc)
            return
        if ack.station_id != self.station_id:
            self._bad_message("ack", message, f"station_id {ack.station_id!r} is not ours")
            return
        # The counters change under the same lock as the outbox: whoever sees the outbox
        # drained and then asks for counters() gets counts that include this ack.
        with self._lock:
            try:
                rejected = self.outbox.reject(ack.rejected) if ack.rejected else 0
                acked = self.outbox.ack(ack.ids)
            except Exception:
                # The events stay in the outbox, are sent again and acked again.
                logger.exception("Applying an ack for %s failed", self.station_id)
                return
            self._acked += acked
            self._rejected += rejected
        for rejection in ack.rejected:
            logger.warning(
                "Hub rejected event %s of %s: %s", rejection.id, self.station_id, rejection.reason
            )
        self._wake.set()  # the in-flight window has room again

    def _on_command_message(
        self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage
    ) -> None:
        try:
            command = Command.parse(bytes(message.payload))
        except MessageError as exc:
            self._bad_message("command", message, exc)
            return
        if command.station_id != self.station_id:
            self._bad_message("command", message, f"station_id {command.station_id!r} is not ours")
            return
        logger.info(
            "Station %s received command %s (%s)", self.station_id, command.command, command.id
        )
        if self._on_command is None:
            return
        try:
            self._on_command(command)
        except Exception:
            logger.exception("Command %s for %s failed", command.id, self.station_id)

"""MQTT ingestion as a service of the hub process: broker, connection, transactions, acks.

Ack-after-commit lives here and only here: a batch of messages is applied in one database
transaction (``hub.ingest.apply``), the transaction commits, and only then are the acks
published. A failure before the commit publishes nothing, so the stations send again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub import metrics
from hub.errors import UnavailableError
from hub.ingest.apply import IngestReport, ingest, prune_dead_letters
from hub.ingest.mqtt import HubMqtt, Message
from hub.mosquitto import BrokerAuth, EmbeddedBroker, new_password
from hub.settings import Settings
from hub.stations import station_passwords
from hub.timeutil import utcnow
from protocols.broker import BrokerAddress
from protocols.codes import Keyring
from protocols.messages import Ack, Command

log = logging.getLogger(__name__)


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
            metrics.INGEST_QUEUE.set(self.queue.qsize())
            await self.process(batch)

    async def process(self, batch: list[Message]) -> None:
        self.stats.messages += len(batch)
        metrics.INGEST_MESSAGES.inc(len(batch))
        with metrics.ACK_SECONDS.time():
            await self._apply(batch)

    async def _apply(self, batch: list[Message]) -> None:
        try:
            report = await self.apply(batch)
        except Exception:
            self.stats.failures += 1
            metrics.INGEST_FAILURES.inc()
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
        metrics.INGEST_TRANSACTIONS.inc()
        metrics.INGEST_EVENTS.labels(outcome="applied").inc(report.applied)
        metrics.INGEST_EVENTS.labels(outcome="refused").inc(report.refused)
        metrics.INGEST_EVENTS.labels(outcome="duplicate").inc(report.duplicates)
        metrics.DEAD_LETTERS.inc(report.dead_letters)
        for ack in report.acks:
            self.publish_ack(ack)


class IngestService:
    """The broker connection (and the embedded broker when none is configured), the ingest
    worker, and station commands."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        keyring: Keyring,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.keyring = keyring
        self.mqtt: HubMqtt | None = None
        self.broker: EmbeddedBroker | None = None
        self.worker: IngestWorker | None = None
        self.mqtt_url: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        settings = self.settings
        if settings.mqtt_url:
            url = settings.mqtt_url
        else:
            auth = None
            if settings.broker_auth:
                async with self.sessions() as session:
                    passwords = await station_passwords(session)
                auth = BrokerAuth(new_password(), passwords, settings.topics)
            self.broker = EmbeddedBroker(auth)
            await self.broker.start()
            url = self.broker.hub_url
        try:
            address = BrokerAddress.parse(url)  # settings validated a configured URL at load
            self.mqtt_url = address.url
            client_id, session_expiry_s = settings.mqtt_session()
            self.mqtt = HubMqtt(
                address,
                settings.topics,
                settings.share_group,
                client_id=client_id,
                session_expiry_s=session_expiry_s,
            )
            await self.mqtt.start()
        except BaseException:
            await self.stop()
            raise
        self.worker = IngestWorker(
            self.mqtt.queue,
            self.apply,
            self.mqtt.publish_ack,
            settings.ingest_max_messages,
            settings.ingest_linger_ms / 1000,
        )
        self._task = asyncio.create_task(self.worker.run(), name="ingest")

    async def apply(self, batch: list[Message]) -> IngestReport:
        """One transaction; the acks it returns are published only after it commits."""
        now = utcnow()
        async with self.sessions() as session, session.begin():
            report = await ingest(session, self.keyring, self.settings.topics, batch, now)
            if report.dead_letters:
                await prune_dead_letters(
                    session,
                    now,
                    self.settings.dead_letter_max_rows,
                    self.settings.dead_letter_retention_days,
                )
            return report

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.mqtt is not None:
            await self.mqtt.stop()
            self.mqtt = None
        if self.broker is not None:
            await self.broker.stop()
            self.broker = None

    @property
    def connected(self) -> bool:
        return self.mqtt is not None and self.mqtt.connected.is_set()

    def publish_command(self, command: Command) -> None:
        if self.mqtt is None:
            raise UnavailableError("MQTT is not running")
        self.mqtt.publish_command(command)

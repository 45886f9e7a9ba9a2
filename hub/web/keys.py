"""Typed application keys, in one module."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.mqtt import HubMqtt, IngestWorker
from hub.settings import Settings
from protocols.codes import Keyring


@dataclass
class Runtime:
    """Facts known only once the process runs: where it listens, which broker it uses."""

    public_base: str = ""
    mqtt_url: str | None = None
    mqtt: HubMqtt | None = None
    ingest: IngestWorker | None = None
    extra: dict[str, object] = field(default_factory=dict)


SETTINGS = web.AppKey("settings", Settings)
KEYRING = web.AppKey("keyring", Keyring)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
RUNTIME = web.AppKey("runtime", Runtime)
ROLE = web.RequestKey("role", str)

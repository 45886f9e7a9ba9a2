"""Typed application and request keys, in one module."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hub.domain.access import Principal
from hub.domain.limits import ConsumerLimits
from hub.ingest.service import IngestService
from hub.jobs.runner import JobRunner
from hub.locate import Locator
from hub.settings import Settings
from hub.verify import Verifier
from protocols.codes import Keyring


@dataclass
class Runtime:
    """Facts known only once the process runs: where it listens, which broker it uses."""

    public_base: str = ""
    ingest: IngestService | None = None
    jobs: JobRunner | None = None

    @property
    def mqtt_url(self) -> str | None:
        return None if self.ingest is None else self.ingest.mqtt_url


SETTINGS = web.AppKey("settings", Settings)
KEYRING = web.AppKey("keyring", Keyring)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
RUNTIME = web.AppKey("runtime", Runtime)
VERIFIER = web.AppKey("verifier", Verifier)
LIMITS = web.AppKey("consumer_limits", ConsumerLimits)
LOCATOR = web.AppKey("locator", Locator)
PRINCIPAL = web.RequestKey("principal", Principal)

__all__ = ["KEYRING", "PRINCIPAL", "RUNTIME", "SESSIONS", "SETTINGS", "Principal", "Runtime"]

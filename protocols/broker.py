"""Broker addresses as configured everywhere: ``mqtt://[user[:password]@]host[:port]``."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from protocols.errors import ProtocolError

DEFAULT_PORT = 1883


class BrokerUrlError(ProtocolError):
    """A broker URL is not of the form mqtt://[user[:password]@]host[:port]."""


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise BrokerUrlError(
                f"Invalid broker URL {_redact(url)!r}: expected mqtt://[user[:password]@]host[:port]"
            )
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise BrokerUrlError(f"Invalid port in broker URL {_redact(url)!r}") from None
        return cls(
            host=parts.hostname,
            port=port,
            username=urllib.parse.unquote(parts.username) if parts.username else None,
            password=urllib.parse.unquote(parts.password) if parts.password else None,
        )

    @property
    def url(self) -> str:
        """The URL without credentials, safe to log."""
        return f"mqtt://{self.host}:{self.port}"


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url

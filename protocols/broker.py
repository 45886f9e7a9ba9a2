"""Broker addresses as configured everywhere: ``mqtt[s]://[user[:password]@]host[:port]``."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from protocols.errors import ProtocolError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class BrokerUrlError(ProtocolError, ValueError):
    """A broker URL is not of the form mqtt[s]://[user[:password]@]host[:port]."""


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int = DEFAULT_PORTS["mqtt"]
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse a broker URL; BrokerUrlError says what is wrong (never echoing a password)."""
        shown = _redact(url)
        try:
            parts = urllib.parse.urlsplit(url)
        except ValueError as exc:
            raise BrokerUrlError(
                f"expected an mqtt:// or mqtts:// URL, got {shown!r}: {exc}"
            ) from None
        if parts.scheme not in DEFAULT_PORTS:
            raise BrokerUrlError(f"expected an mqtt:// or mqtts:// URL, got {shown!r}")
        if not parts.hostname:
            raise BrokerUrlError(f"expected a host in {shown!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise BrokerUrlError(f"expected mqtt://host:port with nothing after it, got {shown!r}")
        try:
            port = parts.port
        except ValueError:
            raise BrokerUrlError(f"expected a port number in {shown!r}") from None
        return cls(
            host=parts.hostname,
            port=port or DEFAULT_PORTS[parts.scheme],
            tls=parts.scheme == "mqtts",
            username=urllib.parse.unquote(parts.username) if parts.username else None,
            password=urllib.parse.unquote(parts.password) if parts.password else None,
        )

    @property
    def url(self) -> str:
        """The URL without credentials, safe to log."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def _redact(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme_user = head.rsplit(":", 1)[0]
    return f"{scheme_user}:***@{tail}"

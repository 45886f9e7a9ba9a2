"""Hub domain errors. The web layer alone turns them into HTTP status codes."""

from __future__ import annotations


class HubError(Exception):
    """Base class of every hub error."""


class ConfigError(HubError):
    """The configuration is invalid; raised at start-up."""


class NotFoundError(HubError):
    """A named record (product, batch, dealer, station) does not exist."""


class ConflictError(HubError):
    """The request contradicts existing data (duplicate SKU, order bound to another dealer)."""


class InvalidRequestError(HubError):
    """The request is well formed JSON but its content is not acceptable."""


class TransitionRefused(HubError):
    """A lifecycle transition is impossible; the reason is recorded, nothing changes."""


class UnavailableError(HubError):
    """A service the request needs (the MQTT broker) is not reachable right now."""

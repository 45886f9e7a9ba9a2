"""Hub domain errors. The web layer alone turns them into HTTP status codes."""

from __future__ import annotations


class HubError(Exception):
    """Base class of every hub error."""


class HubConfigError(HubError):
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


class MalformedRequestError(InvalidRequestError):
    """The request body or a parameter cannot even be parsed (not JSON, too deep, too long)."""


class RateLimitedError(HubError):
    """Too many requests from one client; ``retry_after`` is in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

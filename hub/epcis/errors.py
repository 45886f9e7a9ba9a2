"""Errors of the EPCIS core; the web layer alone turns them into HTTP statuses."""

from __future__ import annotations

from hub.errors import InvalidRequestError, MalformedRequestError


class EpcisError(InvalidRequestError):
    """Base class of every EPCIS error: the request's content cannot be used."""


class DocumentError(EpcisError):
    """An EPCIS document does not validate against the GS1 EPCIS 2.0 JSON schema, or holds
    more than this hub takes in one request."""


class EpcError(EpcisError):
    """An EPC URI (SGTIN, SSCC, Digital Link) is malformed."""


class QueryError(EpcisError):
    """A query parameter cannot be used (a bad time, an unknown event type)."""


class PageTokenError(MalformedRequestError):
    """A ``nextPageToken`` this hub did not issue, or issued for another query."""

"""Middlewares: errors become HTTP statuses here and only here; callers are identified;
every response carries the security headers."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from hub import audit, metrics
from hub.errors import (
    ConflictError,
    HubError,
    InvalidRequestError,
    MalformedRequestError,
    NotFoundError,
    RateLimitedError,
    UnavailableError,
)
from hub.users import LoginRefused, principal_for_login_token
from hub.web.api import ForbiddenError, UnauthenticatedError, UnsupportedMediaError, json_response
from hub.web.keys import PRINCIPAL, SESSIONS, SETTINGS, Principal
from hub.web.pages import not_found_page, pick_language
from protocols.errors import CapacityError

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Most specific first: the first class the error is an instance of decides.
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (UnauthenticatedError, 401),
    (LoginRefused, 401),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (UnsupportedMediaError, 415),
    (MalformedRequestError, 400),
    (RateLimitedError, 429),
    (InvalidRequestError, 422),
    (UnavailableError, 503),
    # The active key has run out of counters: the operator must rotate keys, not retry.
    (CapacityError, 409),
    (HubError, 400),
)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def error_response(
    request: web.Request, status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    if request.path.startswith(("/api/", "/epcis")) or wants_json(request):
        return json_response({"error": message}, status=status, headers=headers)
    lang = pick_language(request.query.get("lang"), request.headers.get("Accept-Language"))
    if status == 404:
        return web.Response(text=not_found_page(lang), status=404, content_type="text/html")
    return web.Response(text=message, status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return error_response(request, 404, f"No such page: {request.path[:200]}")
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        return error_response(
            request, 405, f"Method {request.method} not allowed: use {allowed}", {"Allow": allowed}
        )
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].max_request_bytes
        return error_response(
            request, 413, f"Request body too large: expected at most {limit} bytes"
        )
    except web.HTTPException:
        raise
    except (HubError, CapacityError) as exc:
        status = next(code for kind, code in _STATUS if isinstance(exc, kind))
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, RateLimitedError):
            headers = {"Retry-After": str(exc.retry_after)}
        return error_response(request, status, str(exc), headers)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path[:200])
        return error_response(request, 500, "Internal error; it has been logged")


def token_fingerprint(token: str) -> str:
    """How a static token is named in logs and the audit trail: never the token itself."""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:8]


async def principal_for_token(request: web.Request, token: str) -> Principal | None:
    """The caller a bearer token names: a static token of the settings (the bootstrap and
    automation path, never scoped), else a live login token of an active user."""
    for known, role in request.app[SETTINGS].tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            return Principal(role=role, subject=token_fingerprint(known))
    async with request.app[SESSIONS]() as session:
        return await principal_for_login_token(session, token)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Identify the caller when it sends credentials; each endpoint decides whether it must."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        token = header.removeprefix("Bearer ").strip()
        principal = await principal_for_token(request, token) if token else None
        if principal is None:
            raise UnauthenticatedError("Missing or unknown bearer token")
        request[PRINCIPAL] = principal
    return await handler(request)


_QUIET_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: counts every request by route template and status, and writes an audit
    entry for every state-changing request of an identified caller (who, what, when, from
    where, with what outcome), refusals included. Login writes its own entries."""
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        metrics.HTTP_REQUESTS.labels(method=request.method, route=route, status=str(status)).inc()
        principal = request.get(PRINCIPAL)
        if principal is not None and request.method not in _QUIET_METHODS:
            await _audit(request, principal, f"{request.method} {route}", str(status))


async def _audit(request: web.Request, principal: Principal, action: str, outcome: str) -> None:
    target = request.path + (f"?{request.query_string}" if request.query_string else "")
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            session.add(
                audit.entry(
                    actor=principal.subject,
                    principal=principal,
                    action=action,
                    target=target,
                    outcome=outcome,
                    client=request.remote,
                )
            )
    except Exception:
        # The request itself is done (and answered); an audit failure must be seen by an
        # operator, not turned into an error for the caller.
        log.exception("audit entry not written for %s by %s", action, principal.subject)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response, errors and static files included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = "yima"

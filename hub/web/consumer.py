"""The consumer's audience: the printed URL itself, as a page or as JSON."""

from __future__ import annotations

import ipaddress
import secrets
import time

from aiohttp import web
from pydantic import Field

from hub.domain.verdict import Verdict
from hub.domain.visitors import client_address, is_machine, network_of
from hub.errors import RateLimitedError
from hub.timeutil import utcnow
from hub.verify import Visit, enumeration_alert
from hub.web import epcis
from hub.web.api import Api, Out
from hub.web.keys import LIMITS, LOCATOR, RUNTIME, SETTINGS, VERIFIER
from hub.web.middleware import wants_json
from hub.web.pages import pick_language, preview_page, verdict_page

api = Api("consumer", "What a consumer sees when scanning a printed code (HTML or JSON).")

DEVICE_COOKIE = "yima_d"
DEVICE_COOKIE_AGE = 2 * 365 * 24 * 3600


class ProductFacts(Out):
    sku: str
    name: str
    gtin: str | None


class VerdictOut(Out):
    verdict: str = Field(
        description="genuine, genuine_rescanned, suspicious, not_activated, recalled or unknown"
    )
    reason: str
    serial: str | None = None
    state: str | None = None
    kind: str | None = None
    product: ProductFacts | None = None
    lot: str | None = None
    produced_at: str | None = None
    line: str | None = None
    site: str | None = None
    activated_at: str | None = None
    region: str | None = None
    first_scan_at: str | None = None
    scan_count: int | None = Field(None, description="Scans of this code, this one included")
    first_verified_at: str | None = Field(
        None, description="The first verification after the code was shipped"
    )
    first_verified_region: str | None = None
    signals: list[str] | None = Field(
        None, description="Names of the copied-code signals this scan raised"
    )


def _device(request: web.Request) -> tuple[str, bool]:
    """The device cookie, or a new one (True: set it on the response)."""
    cookie = request.cookies.get(DEVICE_COOKIE, "")
    if 8 <= len(cookie) <= 32 and cookie.isalnum():
        return cookie, False
    return secrets.token_hex(8), True


async def _verify(request: web.Request) -> web.StreamResponse:
    app = request.app
    settings = app[SETTINGS]
    lang = pick_language(request.query.get("lang"), request.headers.get("Accept-Language"))
    user_agent = request.headers.get("User-Agent")
    if is_machine(user_agent):
        # A link previewer or crawler: no scan, no verdict, nothing logged.
        return web.Response(text=preview_page(lang), content_type="text/html")
    trusted = tuple(ipaddress.ip_network(n, strict=False) for n in settings.trusted_proxies)
    address = client_address(request.remote, request.headers.get("X-Forwarded-For"), trusted)
    network = network_of(address)
    client = network or address or "?"
    limits = app[LIMITS]
    now = time.monotonic()
    for limiter, what in ((limits.unknown, "unknown codes"), (limits.scans, "scans")):
        decision = limiter.peek(client, now)
        if not decision.allowed:
            raise RateLimitedError(
                f"Too many {what} from your network; try again in {decision.retry_after} s",
                decision.retry_after,
            )
    limits.scans.take(client, now)
    device, new_device = _device(request)
    # Judge the URL as printed (the public base), whatever host the request came through.
    printed = app[RUNTIME].public_base + request.rel_url.path
    visit = Visit(
        raw=printed,
        at=utcnow(),
        address=address,
        device=device,
        network=network,
        user_agent=user_agent,
        # The page asks a later scanner "did you check this before?"; "no" is evidence.
        denied_earlier=request.query.get("seen") == "no",
        place=app[LOCATOR].locate(
            address,
            request.query.get("lat"),
            request.query.get("lon"),
            request.query.get("region"),
        ),
    )
    result = await app[VERIFIER].verify(
        visit, request.match_info["serial"], request.match_info.get("gtin")
    )
    if result.verdict is Verdict.UNKNOWN and limits.unknown.take(client, now).exhausted_now:
        await app[VERIFIER].raise_alert(enumeration_alert(client, visit.at, result.serial))
    body = VerdictOut.model_validate(result.as_dict()).model_dump(mode="json", exclude_unset=True)
    response: web.Response
    if wants_json(request):
        response = web.json_response(body)
    else:
        other = request.rel_url.with_query({"lang": "en" if lang == "zh" else "zh"})
        response = web.Response(
            text=verdict_page(
                body,
                lang,
                str(other),
                settings.time_zone,
                brand=settings.brand_name,
                hotline=settings.brand_hotline,
                here=request.path,
            ),
            content_type="text/html",
        )
    response.headers["Cache-Control"] = "no-store"
    if new_device:
        response.set_cookie(
            DEVICE_COOKIE,
            device,
            max_age=DEVICE_COOKIE_AGE,
            httponly=True,
            samesite="Lax",
            secure=app[RUNTIME].public_base.startswith("https://"),
        )
    return response


# HEAD is not a scan: link-preview bots must not inflate the scan count (no HEAD routes).
@api.get("/c/{serial}", roles=(), response=VerdictOut, errors=(429, 503))
async def verify_short(request: web.Request) -> web.StreamResponse:
    """Verify a short-form code URL.

    Browsers get a zh-CN / en page; ``Accept: application/json`` gets the verdict as JSON.
    Every call by a person is a scan and is logged; link previewers and crawlers (by user
    agent) get a page without a verdict and are not counted.
    """
    return await _verify(request)


@api.get("/01/{gtin}/21/{serial}", roles=(), response=VerdictOut, errors=(429, 503))
async def verify_digital_link(request: web.Request) -> web.StreamResponse:
    """Verify a GS1 Digital Link code URL.

    Browsers get a zh-CN / en page; ``Accept: application/json`` gets the verdict as JSON.
    Every call by a person is a scan and is logged; link previewers and crawlers (by user
    agent) get a page without a verdict and are not counted.
    ``linkType=all`` lists the code's links instead (no scan); ``linkType=gs1:epcis``
    redirects to its EPCIS events.
    """
    links = await epcis.digital_link(request)  # GS1 Digital Link resolution (hub.web.epcis)
    if links is not None:
        return links
    return await _verify(request)

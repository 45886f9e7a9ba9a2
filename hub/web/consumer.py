"""The consumer's audience: the printed URL itself, as a page or as JSON."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from hub.timeutil import utcnow
from hub.verify import verify
from hub.web.api import Api, Out
from hub.web.keys import KEYRING, RUNTIME, SESSIONS, SETTINGS
from hub.web.middleware import wants_json
from hub.web.pages import pick_language, verdict_page

api = Api("consumer", "What a consumer sees when scanning a printed code (HTML or JSON).")


class ProductFacts(Out):
    sku: str
    name: str
    gtin: str | None


class VerdictOut(Out):
    verdict: str = Field(description="genuine, not_activated, suspicious or unknown")
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
    scan_count: int | None = None


async def _verify(request: web.Request) -> web.StreamResponse:
    app = request.app
    settings = app[SETTINGS]
    # Judge the URL as printed (the public base), whatever host the request came through.
    printed = app[RUNTIME].public_base + request.rel_url.path
    async with app[SESSIONS]() as session, session.begin():
        result = await verify(
            session,
            app[KEYRING],
            printed,
            threshold=settings.suspicious_scan_threshold,
            now=utcnow(),
            client=request.remote,
            user_agent=request.headers.get("User-Agent"),
        )
    body = VerdictOut.model_validate(result.as_dict()).model_dump(mode="json", exclude_unset=True)
    if wants_json(request):
        return web.json_response(body)
    lang = pick_language(request.query.get("lang"), request.headers.get("Accept-Language"))
    other = request.rel_url.with_query({"lang": "en" if lang == "zh" else "zh"})
    return web.Response(text=verdict_page(body, lang, str(other)), content_type="text/html")


# HEAD is not a scan: link-preview bots must not inflate the scan count (no HEAD routes).
@api.get("/c/{serial}", roles=(), response=VerdictOut)
async def verify_short(request: web.Request) -> web.StreamResponse:
    """Verify a short-form code URL.

    Browsers get a zh-CN / en page; ``Accept: application/json`` gets the verdict as JSON.
    Every call is a scan and is logged.
    """
    return await _verify(request)


@api.get("/01/{gtin}/21/{serial}", roles=(), response=VerdictOut)
async def verify_digital_link(request: web.Request) -> web.StreamResponse:
    """Verify a GS1 Digital Link code URL.

    Browsers get a zh-CN / en page; ``Accept: application/json`` gets the verdict as JSON.
    Every call is a scan and is logged.
    """
    return await _verify(request)

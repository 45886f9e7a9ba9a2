"""The partner audience: EPCIS 2.0 REST binding (capture and query) under ``/epcis``, and
GS1 Digital Link resolution of printed URLs (``linkType``)."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hub.epcis import store
from hub.epcis.document import MAX_EVENTS, query_document
from hub.epcis.errors import EpcisError
from hub.epcis.identifiers import EpcFormat
from hub.epcis.links import LinkChoice, choose, epcis_events_url, link_set
from hub.epcis.query import DEFAULT_PER_PAGE, MAX_PER_PAGE, build_query
from hub.errors import NotFoundError
from hub.models import Code
from hub.timeutil import utcnow
from hub.web.api import Api, Out, Params, json_response
from hub.web.keys import KEYRING, PRINCIPAL, RUNTIME, SESSIONS, SETTINGS
from protocols.codes import check_code
from protocols.errors import CodeError

api = Api(
    "epcis",
    "Partners: EPCIS 2.0 capture and query (GS1 JSON-LD), GS1 Digital Link link sets.",
)

PARTNER_ROLES = ("partner",)
VERSION_HEADERS = {"GS1-EPCIS-Version": "2.0.0", "GS1-CBV-Version": "2.0.0"}


class CaptureDocumentIn(BaseModel):
    """An EPCIS 2.0 document (JSON-LD); it is checked against GS1's JSON schema."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)
    context: Any = Field(alias="@context")
    type: Literal["EPCISDocument"]
    schemaVersion: str = Field(max_length=20)
    creationDate: str = Field(max_length=40)
    epcisBody: dict[str, Any]


class CaptureJobOut(Out):
    """The standard capture job resource."""

    captureID: str
    createdAt: str
    finishedAt: str | None
    running: bool
    success: bool
    captureErrorBehaviour: str
    errors: list[dict[str, Any]]
    eventCount: int = Field(description="Events in the document")
    applied: int = Field(description="Events applied by this capture")
    duplicates: int = Field(description="Events applied earlier (idempotent repeats)")


class CaptureJobsOut(Out):
    captureJobs: list[CaptureJobOut]


class CaptureIdIn(Params):
    capture_id: str = Field(max_length=36, pattern=r"^[0-9a-f-]{36}$")


class EventsQueryIn(Params):
    """SimpleEventQuery parameters; lists repeat or join values with ``|``."""

    model_config = ConfigDict(extra="forbid", str_max_length=20000, frozen=True)
    eventType: list[str] | str | None = Field(None, description="ObjectEvent, ...")
    GE_eventTime: str | None = Field(None, max_length=60, description="eventTime ≥ this")
    LT_eventTime: str | None = Field(None, max_length=60, description="eventTime < this")
    EQ_bizStep: list[str] | str | None = Field(None, description="commissioning, packing, ...")
    MATCH_epc: list[str] | str | None = Field(None, description="EPC in epcList or childEPCs")
    MATCH_parentID: list[str] | str | None = Field(None, description="parentID")
    MATCH_inputEPC: list[str] | str | None = Field(None, description="EPC in inputEPCList")
    MATCH_outputEPC: list[str] | str | None = Field(None, description="EPC in outputEPCList")
    MATCH_anyEPC: list[str] | str | None = Field(None, description="EPC in any list")
    perPage: int = Field(DEFAULT_PER_PAGE, ge=1, le=MAX_PER_PAGE)
    nextPageToken: str | None = Field(None, max_length=500)


class CaptureListIn(Params):
    perPage: int = Field(30, ge=1, le=MAX_PER_PAGE)


def _source(request: web.Request) -> str:
    principal = request[PRINCIPAL]
    return f"epcis:{principal.role}:{principal.subject}"[:80]


def _error_behaviour(request: web.Request) -> str:
    value = request.headers.get("GS1-Capture-Error-Behaviour", "rollback").strip().lower()
    if value not in ("rollback", "proceed"):
        raise EpcisError(
            f"GS1-Capture-Error-Behaviour {value[:40]!r}: expected rollback or proceed"
        )
    return value


@api.post(
    "/epcis/capture",
    roles=PARTNER_ROLES,
    body=CaptureDocumentIn,
    response=CaptureJobOut,
    status=202,
)
async def capture(request: web.Request, body: CaptureDocumentIn) -> web.StreamResponse:
    """Capture an EPCIS 2.0 document (ObjectEvent, AggregationEvent, TransformationEvent).

    Each event is applied through the lifecycle gate, once: an event captured again (same
    eventID, or same contents without one) is a duplicate and changes nothing. Refusals are
    listed per event in the job's ``errors``. ``GS1-Capture-Error-Behaviour: rollback`` (the
    default) applies nothing when any event is refused; ``proceed`` applies the others.
    Answers 202 with ``Location: /epcis/capture/{captureID}``; the capture has already
    finished, so the body is the finished job.
    """
    document = body.model_dump(by_alias=True)
    behaviour = _error_behaviour(request)
    source = _source(request)
    try:
        job = await _capture(request.app, document, source, behaviour)
    except IntegrityError:
        # The same events committed concurrently (a retry while the first try ran): run
        # again, which now finds them and counts them as duplicates.
        job = await _capture(request.app, document, source, behaviour)
    return json_response(
        job.as_resource(),
        status=202,
        headers={
            "Location": f"/epcis/capture/{job.id}",
            "GS1-EPCIS-Capture-Limit": str(MAX_EVENTS),
            **VERSION_HEADERS,
        },
    )


class _RolledBack(Exception):
    def __init__(self, job: store.CaptureJob) -> None:
        self.job = job


async def _capture(
    app: web.Application, document: dict[str, Any], source: str, behaviour: str
) -> store.CaptureJob:
    sessions = app[SESSIONS]
    try:
        async with sessions() as session, session.begin():
            job = await store.capture(
                session,
                app[KEYRING],
                document,
                source=source,
                error_behaviour=behaviour,
                now=utcnow(),
            )
            if not job.success and behaviour == "rollback":
                raise _RolledBack(job)
    except _RolledBack as rolled_back:
        job = rolled_back.job
        async with sessions() as session, session.begin():
            await store.keep_job(session, job, source)
    return job


@api.get(
    "/epcis/capture/{capture_id}", roles=PARTNER_ROLES, params=CaptureIdIn, response=CaptureJobOut
)
async def capture_job(request: web.Request, params: CaptureIdIn) -> web.StreamResponse:
    """One capture job: finished, whether it succeeded, and the refusal of each event."""
    async with request.app[SESSIONS]() as session:
        job = await store.get_job(session, params.capture_id)
    if job is None:
        raise NotFoundError(f"No capture job {params.capture_id}")
    return json_response(job.as_resource(), headers=VERSION_HEADERS)


@api.get("/epcis/capture", roles=PARTNER_ROLES, query=CaptureListIn, response=CaptureJobsOut)
async def capture_jobs(request: web.Request, query: CaptureListIn) -> web.StreamResponse:
    """The latest capture jobs, newest first."""
    async with request.app[SESSIONS]() as session:
        jobs = await store.list_jobs(session, query.perPage)
    return json_response({"captureJobs": [j.as_resource() for j in jobs]}, headers=VERSION_HEADERS)


def _naming(request: web.Request) -> store.Naming:
    settings = request.app[SETTINGS]
    wanted = request.headers.get("GS1-EPC-Format", "No_Preference").strip()
    try:
        form = EpcFormat(wanted)
    except ValueError:
        if wanted not in ("No_Preference", "Never_Translates"):
            raise EpcisError(
                f"GS1-EPC-Format {wanted[:40]!r}: expected Always_EPC_URN, "
                "Always_GS1_Digital_Link, No_Preference or Never_Translates"
            ) from None
        form = EpcFormat(settings.epcis_epc_format)
    return store.Naming(
        form=form,
        resolver=request.app[RUNTIME].public_base,
        company_prefix_length=settings.gs1_company_prefix_length,
    )


@api.get("/epcis/events", roles=PARTNER_ROLES, query=EventsQueryIn, errors=(400,))
async def events(request: web.Request, query: EventsQueryIn) -> web.StreamResponse:
    """Events as an EPCISQueryDocument (SimpleEventQuery), oldest first.

    Hub events (commissioning and packing read on the lines, shipments) are included as
    EPCIS events. Codes are written as SGTIN EPC URIs, or as Digital Link URIs with
    ``GS1-EPC-Format: Always_GS1_Digital_Link``. A further page is announced in the
    ``Link`` header (``rel="next"``) with its ``nextPageToken``.
    """
    eventQuery = build_query(
        event_type=query.eventType,
        ge_event_time=query.GE_eventTime,
        lt_event_time=query.LT_eventTime,
        eq_biz_step=query.EQ_bizStep,
        matches={
            "MATCH_epc": query.MATCH_epc,
            "MATCH_parentID": query.MATCH_parentID,
            "MATCH_inputEPC": query.MATCH_inputEPC,
            "MATCH_outputEPC": query.MATCH_outputEPC,
            "MATCH_anyEPC": query.MATCH_anyEPC,
        },
        per_page=query.perPage,
        next_page_token=query.nextPageToken,
    )
    naming = _naming(request)
    await _project(request.app)
    async with request.app[SESSIONS]() as session:
        found, after = await store.query_events(session, eventQuery, naming)
    headers = dict(VERSION_HEADERS)
    if after is not None:
        token = eventQuery.token_after(after)
        url = request.rel_url.update_query({"nextPageToken": token})
        headers["Link"] = f'<{url}>; rel="next"'
        headers["GS1-Next-Page-Token"] = token
    return json_response(query_document(found, utcnow()), headers=headers)


async def _project(app: web.Application) -> None:
    """Bring hub events written since the last query into the EPCIS store."""
    prefix_length = app[SETTINGS].gs1_company_prefix_length
    for _ in range(100):
        try:
            async with app[SESSIONS]() as session, session.begin():
                done = await store.project_hub_events(session, prefix_length)
        except IntegrityError:
            continue  # another request projected the same events: look again
        if done == 0:
            return


# GS1 Digital Link ------------------------------------------------------------------------------


async def digital_link(request: web.Request) -> web.StreamResponse | None:
    """The answer to a printed Digital Link URL with a ``linkType`` other than the default
    link; None when the verification page (the default) should answer."""
    choice = choose(request.query.get("linkType"))
    if choice is LinkChoice.VERIFY:
        return None
    base = request.app[RUNTIME].public_base
    anchor = base + request.rel_url.path
    try:
        checked = check_code(anchor, request.app[KEYRING])
    except CodeError:
        raise NotFoundError(f"No code at {request.rel_url.path[:120]}") from None
    async with request.app[SESSIONS]() as session:
        known = await session.scalar(select(Code.id).where(Code.serial == checked.serial))
    if known is None:
        raise NotFoundError(f"No code at {request.rel_url.path[:120]}")
    epcis_url = epcis_events_url(base, anchor)
    if choice is LinkChoice.EPCIS:
        raise web.HTTPTemporaryRedirect(epcis_url)
    return web.json_response(
        link_set(anchor, anchor, epcis_url),
        content_type="application/linkset+json",
        headers={"Link": f'<{anchor}>; rel="https://gs1.org/voc/defaultLink"'},
    )

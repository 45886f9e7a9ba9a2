"""The operators' audience: health, runtime facts, the OpenAPI document and its page."""

from __future__ import annotations

import html
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web
from pydantic import Field
from sqlalchemy import text

from hub import metrics
from hub.web.api import ENDPOINTS, TAGS, Api, Out, json_response, openapi_document
from hub.web.keys import RUNTIME, SESSIONS, SETTINGS

api = Api("ops", "Health, runtime facts and this document.")


class Health(Out):
    status: str = Field(description="ok, or degraded when MQTT is down")
    database: str
    mqtt: bool


@api.get("/healthz", roles=(), response=Health, errors=(503,))
async def healthz(request: web.Request) -> web.Response:
    """Liveness and readiness: the database answers and MQTT is connected."""
    async with request.app[SESSIONS]() as session:
        await session.execute(text("SELECT 1"))
    service = request.app[RUNTIME].ingest
    mqtt_ok = service is not None and service.connected
    return json_response(
        {"status": "ok" if mqtt_ok else "degraded", "database": "ok", "mqtt": mqtt_ok},
        status=200 if mqtt_ok else 503,
    )


class IngestCounters(Out):
    messages: int
    transactions: int
    applied: int
    refused: int
    duplicates: int
    dead_letters: int
    failures: int


class Info(Out):
    public_base: str
    mqtt_url: str | None
    topic_prefix: str
    ingest: IngestCounters | None


@api.get("/api/v1/info", response=Info)
async def info(request: web.Request) -> Info:
    """Where this hub prints its URLs, which broker it uses, and ingest counters."""
    runtime = request.app[RUNTIME]
    worker = runtime.ingest.worker if runtime.ingest else None
    return Info(
        public_base=runtime.public_base,
        mqtt_url=runtime.mqtt_url,
        topic_prefix=request.app[SETTINGS].topic_prefix,
        ingest=IngestCounters.model_validate(worker.stats.__dict__) if worker else None,
    )


def hub_version() -> str:
    try:
        return version("yima")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


def document(app: web.Application) -> dict[str, Any]:
    endpoints = app[ENDPOINTS]
    return openapi_document(endpoints, "Yima hub (一码)", hub_version(), app[TAGS])


@api.get("/api/openapi.json", roles=())
async def openapi(request: web.Request) -> web.Response:
    """This document: every endpoint of the hub, OpenAPI 3.1."""
    return json_response(document(request.app))


@api.get("/api/docs", roles=(), produces="text/html")
async def docs(request: web.Request) -> web.Response:
    """A readable page of the OpenAPI document."""
    spec = document(request.app)
    parts = [
        f"<h1>{html.escape(spec['info']['title'])} API</h1>",
        '<p><a href="/api/openapi.json">openapi.json</a></p>',
    ]
    for tag in spec["tags"]:
        parts.append(f"<h2>{html.escape(tag['name'])}</h2><p>{html.escape(tag['description'])}</p>")
        parts.append("<table><tr><th>method</th><th>path</th><th>summary</th><th>roles</th></tr>")
        for endpoint in sorted(
            (e for e in request.app[ENDPOINTS] if e.tag == tag["name"]),
            key=lambda e: (e.path, e.method),
        ):
            roles = ", ".join(endpoint.roles) or "public"
            parts.append(
                f"<tr><td>{endpoint.method}</td><td><code>{html.escape(endpoint.path)}</code></td>"
                f"<td>{html.escape(endpoint.summary)}</td><td>{html.escape(roles)}</td></tr>"
            )
        parts.append("</table>")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem}"
        "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;"
        "padding:.3rem;text-align:left}"
    )
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Yima API</title>'
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
    return web.Response(text=page, content_type="text/html")


@api.get("/metrics", roles=("operator",), produces="text/plain")
async def prometheus_metrics(request: web.Request) -> web.Response:
    """Prometheus metrics of this hub process (text format).

    Ingest rate and outcomes, ack latency, dead letters, verifications by verdict, job
    progress, HTTP requests, logins. Scrape with an operator or admin bearer token.
    """
    body, content_type = metrics.render()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response

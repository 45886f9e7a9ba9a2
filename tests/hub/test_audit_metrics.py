"""The audit log (every back-office change and login, retention cleanup), /metrics, and JSON
log lines."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from hub import housekeeping, logs
from hub.models import AuditEntry
from hub.timeutil import utcnow

PASSWORD = "correct horse battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition ``text`` (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


async def metrics_text(hub: Any) -> str:
    return str(await hub.api("GET", "/metrics"))


async def test_back_office_changes_are_audited_with_who_what_where_and_outcome(
    sqlite_hub: Any,
) -> None:
    hub = sqlite_hub
    await hub.add_product("TEA")
    await hub.api("POST", "/api/v1/products", {"sku": "TEA", "name": "again"}, status=409)
    await hub.api(
        "POST",
        "/api/v1/users",
        {"username": "olga", "password": PASSWORD, "role": "operator"},
        status=201,
    )
    token = (
        await hub.api(
            "POST", "/api/v1/login", {"username": "olga", "password": PASSWORD}, headers={}
        )
    )["token"]
    # An operator trying an admin-only change: refused, and audited as refused.
    await hub.api(
        "POST",
        "/api/v1/dealers",
        {"code": "D9", "name": "x", "region": "y"},
        status=403,
        headers=bearer(token),
    )
    await hub.api("GET", "/api/v1/users")  # reads are not audited
    page = await hub.api("GET", "/api/v1/audit")
    got = [(e["actor"], e["action"], e["target"], e["outcome"]) for e in page["entries"]]
    admin = got[-1][0]
    assert admin.startswith("token:") and "admin-token" not in json.dumps(page)
    assert got == [
        ("user:olga", "POST /api/v1/dealers", "/api/v1/dealers", "403"),
        ("user:olga", "login", None, "ok"),
        (admin, "POST /api/v1/users", "/api/v1/users", "201"),
        (admin, "POST /api/v1/products", "/api/v1/products", "409"),
        (admin, "POST /api/v1/products", "/api/v1/products", "201"),
    ]
    assert {e["client"] for e in page["entries"]} == {"127.0.0.1"}
    assert [e["role"] for e in page["entries"]] == [
        "operator",
        "operator",
        "admin",
        "admin",
        "admin",
    ]
    assert PASSWORD not in json.dumps(page)
    # Filters and paging.
    logins = await hub.api("GET", "/api/v1/audit?action=login")
    assert [e["actor"] for e in logins["entries"]] == ["user:olga"]
    first = await hub.api("GET", "/api/v1/audit?limit=2")
    older = await hub.api("GET", f"/api/v1/audit?limit=2&before={first['next_before']}")
    assert [e["id"] for e in first["entries"] + older["entries"]] == [
        e["id"] for e in page["entries"][:4]
    ]
    # Only an admin reads the audit log.
    await hub.api("GET", "/api/v1/audit", status=403, headers=bearer(token))


async def test_cleanup_deletes_only_entries_past_retention(sqlite_hub: Any) -> None:
    hub = sqlite_hub
    for sku in ("A", "B", "C"):
        await hub.add_product(sku)
    async with hub.sessions() as session, session.begin():
        oldest = await session.scalar(select(AuditEntry.id).order_by(AuditEntry.id))
        await session.execute(
            update(AuditEntry)
            .where(AuditEntry.id == oldest)
            .values(at=utcnow() - timedelta(days=hub.settings.audit_retention_days, hours=1))
        )
    assert await housekeeping.run_once(hub.sessions, hub.settings.audit_retention_days) == 1
    left = await hub.rows(select(AuditEntry.target).order_by(AuditEntry.id))
    assert len(left) == 2
    assert await housekeeping.run_once(hub.sessions, hub.settings.audit_retention_days) == 0


async def test_metrics_count_verifications_logins_requests_and_ingest(sqlite_plant: Any) -> None:
    hub = sqlite_plant
    before = await metrics_text(hub)
    urls = await hub.commissioned("TEA", 3)
    await hub.verify(urls[0])
    await hub.verify(hub.settings.public_base() + "/c/ZZZZZZZZZZZZZZZZZZZZ")
    await hub.api(
        "POST", "/api/v1/login", {"username": "nobody", "password": "x"}, status=401, headers={}
    )
    after = await metrics_text(hub)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("yima_ingest_events_total", outcome="applied") == 3
    assert delta("yima_ingest_messages_total") >= 1
    assert delta("yima_ingest_ack_seconds_count") >= 1
    assert delta("yima_verifications_total", verdict="not_activated") == 1
    assert delta("yima_verifications_total", verdict="unknown") == 1
    assert delta("yima_logins_total", outcome="refused") == 1
    assert (
        delta("yima_http_requests_total", method="POST", route="/api/v1/batches", status="201") == 1
    )
    assert "process_cpu_seconds_total" in after


async def test_metrics_need_an_operator(sqlite_hub: Any) -> None:
    hub = sqlite_hub
    response = await hub.client.get("/metrics")
    assert response.status == 401
    response = await hub.client.get("/metrics", headers={"Authorization": "Bearer wh-token"})
    assert response.status == 403
    response = await hub.client.get("/metrics", headers={"Authorization": "Bearer admin-token"})
    assert response.status == 200
    assert response.content_type == "text/plain"


def test_json_log_lines_carry_level_logger_message_and_extras() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonLines())
    logger = logging.getLogger("yima.test.jsonlines")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("station %s: %d events refused", "st-1", 3, extra={"station": "st-1"})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines() if line[:1] == "{")
    assert first["level"] == "WARNING" and first["logger"] == "yima.test.jsonlines"
    assert first["message"] == "station st-1: 3 events refused"
    assert first["station"] == "st-1" and first["time"].endswith("+00:00")
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]

"""The brand's alerts (copied codes, leaked codes, serial enumeration) and anti-diversion
(防窜货) statistics. A dealer sees only the alerts and statistics of codes shipped to it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import Field
from sqlalchemy import func, select

from hub.models import Alert, Code, Dealer, Order, ScanLog
from hub.timeutil import as_utc
from hub.web.api import Api, Out, Params
from hub.web.keys import PRINCIPAL, SESSIONS

api = Api("alerts", "Copied-code alerts and anti-diversion statistics for the brand and dealers.")

READERS = ("admin", "operator", "inspector", "dealer")


class AlertQuery(Params):
    kind: str | None = Field(
        None, max_length=32, pattern=r"^[a-z_]+$", description="Only alerts of this signal"
    )
    limit: int = Field(100, ge=1, le=1000)
    before_id: int | None = Field(
        None, ge=1, le=2**63 - 1, description="Page: alerts older than this id"
    )


class AlertOut(Out):
    id: int
    kind: str = Field(
        description="distinct_clients, impossible_travel, after_end_of_life, "
        "denied_earlier_scan, not_activated_scan or enumeration"
    )
    serial: str | None
    client: str | None = Field(description="Network of the scan that raised it first")
    dealer: str | None
    order: str | None
    region: str | None = Field(description="Region the code was shipped to")
    evidence: dict[str, Any]
    first_at: str
    last_at: str
    count: int


class AlertList(Out):
    alerts: list[AlertOut]


def _dealer_scope(request: web.Request) -> int | None:
    principal = request[PRINCIPAL]
    return principal.dealer_id if principal.role == "dealer" else None


@api.get("/api/v1/alerts", roles=READERS, query=AlertQuery, response=AlertList)
async def list_alerts(request: web.Request, query: AlertQuery) -> AlertList:
    """Alerts, newest first, with the evidence.

    A dealer sees the alerts of codes shipped to it (never enumeration alerts, which belong
    to no code).
    """
    statement = (
        select(Alert, Dealer.code, Order.number)
        .outerjoin(Dealer, Dealer.id == Alert.dealer_id)
        .outerjoin(Order, Order.id == Alert.order_id)
        .order_by(Alert.id.desc())
        .limit(query.limit)
    )
    dealer_id = _dealer_scope(request)
    if dealer_id is not None:
        statement = statement.where(Alert.dealer_id == dealer_id)
    if query.kind:
        statement = statement.where(Alert.kind == query.kind)
    if query.before_id:
        statement = statement.where(Alert.id < query.before_id)
    async with request.app[SESSIONS]() as session:
        rows = (await session.execute(statement)).all()
    return AlertList(
        alerts=[
            AlertOut(
                id=alert.id,
                kind=alert.kind,
                serial=alert.serial,
                client=alert.client,
                dealer=dealer,
                order=order,
                region=alert.region,
                evidence=alert.evidence,
                first_at=_iso(alert.first_at),
                last_at=_iso(alert.last_at),
                count=alert.count,
            )
            for alert, dealer, order in rows
        ]
    )


class DiversionRow(Out):
    dealer: str | None
    shipped_region: str | None
    scan_region: str = Field(description="Division code where the codes were scanned")
    codes: int = Field(description="Different codes scanned there")
    scans: int
    orders: list[str] = Field(description="Orders those codes were shipped under")


class DiversionReport(Out):
    rows: list[DiversionRow]


@api.get("/api/v1/reports/diversion", roles=READERS, response=DiversionReport)
async def diversion(request: web.Request) -> DiversionReport:
    """Anti-diversion (防窜货): scans outside the region a code was shipped to, per dealer,
    shipped region and scan region, with the orders involved (most scans first)."""
    statement = (
        select(
            Dealer.code,
            Code.region,
            ScanLog.place_region,
            func.count(func.distinct(ScanLog.code_id)),
            func.count(),
        )
        .join(Code, Code.id == ScanLog.code_id)
        .outerjoin(Dealer, Dealer.id == Code.dealer_id)
        .where(ScanLog.signals.like("%outside_region%"))
        .group_by(Dealer.code, Code.region, ScanLog.place_region)
        .order_by(func.count().desc())
        .limit(500)
    )
    dealer_id = _dealer_scope(request)
    if dealer_id is not None:
        statement = statement.where(Code.dealer_id == dealer_id)
    async with request.app[SESSIONS]() as session:
        groups = (await session.execute(statement)).all()
        rows = []
        for dealer, shipped, scanned, codes, scans in groups:
            scope = () if dealer_id is None else (Code.dealer_id == dealer_id,)
            orders = await session.scalars(
                select(Order.number)
                .distinct()
                .join(Code, Code.order_id == Order.id)
                .join(ScanLog, ScanLog.code_id == Code.id)
                .where(
                    ScanLog.signals.like("%outside_region%"),
                    ScanLog.place_region == scanned,
                    Code.region == shipped,
                    *scope,
                )
                .order_by(Order.number)
                .limit(20)
            )
            rows.append(
                DiversionRow(
                    dealer=dealer,
                    shipped_region=shipped,
                    scan_region=scanned or "",
                    codes=codes,
                    scans=scans,
                    orders=list(orders),
                )
            )
    return DiversionReport(rows=rows)


def _iso(moment: datetime) -> str:
    utc = as_utc(moment)
    assert utc is not None
    return utc.isoformat(timespec="seconds")

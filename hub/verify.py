"""Consumer verification: the hot path from a scanned text to a verdict, with the scan counted.

A request never opens a write transaction of its own. After the format and keyed check
(forged serials cost no database work), its scan joins the next *group*: one transaction
looks up every code of the group, reads their recent verifications, judges each scan with
the named signals of :mod:`hub.domain.signals` (in arrival order, each seeing the ones
before it), counts the scans, appends them to the scan log, raises alerts, and commits. Only
then are the group's requests answered, so nothing a consumer was told is lost. Under load
groups grow by themselves (scans queue while the previous group commits); idle, a group is
one scan and adds no delay. Product and station facts are cached in the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub import metrics
from hub.domain.lifecycle import ACTIVATED, State
from hub.domain.signals import Assessment, Place, Scan, Signal, Thresholds, assess
from hub.domain.verdict import Verdict
from hub.errors import UnavailableError
from hub.models import Alert, Code, Product, ScanLog, Station
from hub.timeutil import as_utc
from protocols.codes import Keyring, check_code, parse_code
from protocols.errors import CodeError, ForgedCodeError

log = logging.getLogger(__name__)

HISTORY_LIMIT = 200  # most recent verifications of a code the signals look at
_GTIN_MISMATCH = "the GTIN on the label does not match this code's product"


@dataclass(frozen=True)
class Visit:
    """One consumer request, as the web layer saw it."""

    raw: str  # the code text as printed (URL)
    at: datetime
    address: str | None = None
    device: str | None = None
    network: str | None = None
    user_agent: str | None = None
    place: Place | None = None
    denied_earlier: bool = False

    def as_scan(self) -> Scan:
        return Scan(self.at, self.device, self.network, self.place, self.denied_earlier)


@dataclass(frozen=True)
class VerifyResult:
    verdict: Verdict
    reason: str
    serial: str | None = None
    info: dict[str, Any] | None = None
    code_id: int | None = None  # for the scan log; not shown to the consumer
    signals: tuple[Signal, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": self.verdict.value, "reason": self.reason}
        if self.serial is not None:
            out["serial"] = self.serial
        if self.info is not None:
            out.update(self.info)
        return out


@dataclass
class _Job:
    visit: Visit
    serial: str | None
    gtin: str | None
    decided: VerifyResult | None  # known without the database (forged, malformed)
    future: asyncio.Future[VerifyResult]
    result: VerifyResult | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ProductFacts:
    sku: str
    name: str
    gtin: str | None


@dataclass(frozen=True)
class StationFacts:
    line: str
    site: str | None


class FactsCache:
    """Products and stations by id, reloaded whole when an id is missing or ``ttl`` passed
    (another hub process may have changed them); ``invalidate()`` after a local change."""

    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = ttl
        self.products: dict[int, ProductFacts] = {}
        self.stations: dict[str, StationFacts] = {}
        self._loaded = -1e9

    def invalidate(self) -> None:
        self._loaded = -1e9

    async def ensure(
        self, conn: AsyncConnection, products: Iterable[int], stations: Iterable[str | None]
    ) -> None:
        stale = time.monotonic() - self._loaded > self.ttl
        missing = any(p not in self.products for p in products) or any(
            s is not None and s not in self.stations for s in stations
        )
        if not (stale or missing):
            return
        rows = await conn.execute(select(Product.id, Product.sku, Product.name, Product.gtin))
        self.products = {r.id: ProductFacts(r.sku, r.name, r.gtin) for r in rows}
        rows = await conn.execute(select(Station.id, Station.line, Station.site))
        self.stations = {r.id: StationFacts(r.line, r.site) for r in rows}
        self._loaded = time.monotonic()


_LOOKUP = select(
    Code.id,
    Code.serial,
    Code.kind,
    Code.product_id,
    Code.station_id,
    Code.state,
    Code.lot,
    Code.commissioned_at,
    Code.activated_at,
    Code.region,
    Code.dealer_id,
    Code.order_id,
).where(Code.serial.in_(bindparam("serials", expanding=True)))

_RANKED = (
    select(
        ScanLog.id,
        ScanLog.code_id,
        ScanLog.at,
        ScanLog.device,
        ScanLog.network,
        ScanLog.lat,
        ScanLog.lon,
        ScanLog.place_region,
        ScanLog.place_source,
        ScanLog.denied_earlier,
        func.row_number()
        .over(partition_by=ScanLog.code_id, order_by=ScanLog.id.desc())
        .label("rank"),
    )
    .join(Code, Code.id == ScanLog.code_id)
    .where(ScanLog.code_id.in_(bindparam("ids", expanding=True)), ScanLog.at > Code.activated_at)
    .subquery()
)
_HISTORY = (
    select(_RANKED).where(_RANKED.c.rank <= HISTORY_LIMIT).order_by(_RANKED.c.code_id, _RANKED.c.id)
)


class Verifier:
    """The consumer verification service of one hub process (started and stopped with the
    app): the group writer and the facts cache."""

    def __init__(
        self,
        engine: AsyncEngine,
        keyring: Keyring,
        thresholds: Thresholds | None = None,
        *,
        group_max: int = 256,
        facts: FactsCache | None = None,
    ) -> None:
        self.engine = engine
        self.keyring = keyring
        self.thresholds = thresholds or Thresholds()
        self.group_max = group_max
        self.facts = facts or FactsCache()
        self.groups = 0
        self.scans = 0
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="scan-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(UnavailableError("The hub is shutting down"))

    async def verify(
        self, visit: Visit, serial_text: str | None = None, label_gtin: str | None = None
    ) -> VerifyResult:
        """Judge the scanned text, count and log the scan; returns after the commit.

        The web layer already split a printed URL by its route: it passes the serial part
        (and the GTIN of a Digital Link), which skips parsing the whole URL again (a GS1
        Digital Link parse costs several times the keyed check). Without them ``visit.raw``
        is parsed in full.
        """
        text = visit.raw if serial_text is None else serial_text
        serial: str | None = None
        gtin: str | None = None
        decided: VerifyResult | None = None
        try:
            checked = check_code(text, self.keyring)
            serial, gtin = checked.serial, checked.gtin
            if label_gtin is not None:
                gtin = _gtin14(label_gtin)
        except ForgedCodeError:
            # No database lookup for a serial we never sealed.
            decided = VerifyResult(
                Verdict.UNKNOWN, "not issued by this brand", parse_code(text).serial.value
            )
        except CodeError as exc:
            decided = VerifyResult(Verdict.UNKNOWN, f"malformed code: {exc}")
        if self._task is None or self._task.done():
            raise UnavailableError("Verification is not running")
        future: asyncio.Future[VerifyResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(visit, serial, gtin, decided, future))
        return await future

    async def raise_alert(self, row: dict[str, Any]) -> None:
        """An alert that comes with no scan (serial enumeration), in its own transaction."""
        async with self.engine.begin() as conn:
            await upsert_alerts(conn, [row])

    async def _run(self) -> None:
        while True:
            jobs = [await self._queue.get()]
            while len(jobs) < self.group_max and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
            await self._write(jobs)

    async def _write(self, jobs: list[_Job]) -> None:
        for attempt in (1, 2):
            try:
                async with self.engine.begin() as conn:
                    await self._group(conn, jobs)
                break
            except Exception as exc:
                if attempt == 2:
                    log.exception("writing %d scans failed", len(jobs))
                    for job in jobs:
                        if not job.future.done():
                            job.future.set_exception(
                                UnavailableError(f"Could not record the scan: {type(exc).__name__}")
                            )
                    return
                log.warning("writing %d scans failed (%s); retrying once", len(jobs), exc)
                await asyncio.sleep(0.05)
        self.groups += 1
        self.scans += len(jobs)
        for job in jobs:
            if job.result is not None:
                metrics.VERIFICATIONS.labels(verdict=job.result.verdict.value).inc()
            if not job.future.done() and job.result is not None:
                job.future.set_result(job.result)

    async def _group(self, conn: AsyncConnection, jobs: Sequence[_Job]) -> None:
        serials = {j.serial for j in jobs if j.decided is None and j.serial is not None}
        codes: dict[str, Any] = {}
        if serials:
            rows = await conn.execute(_LOOKUP, {"serials": sorted(serials)})
            codes = {r.serial: r for r in rows}
        await self.facts.ensure(
            conn, {c.product_id for c in codes.values()}, {c.station_id for c in codes.values()}
        )
        watched = [c.id for c in codes.values() if c.activated_at is not None]
        history: dict[int, list[Scan]] = defaultdict(list)
        if watched:
            for r in await conn.execute(_HISTORY, {"ids": watched}):
                history[r.code_id].append(_scan_of(r))

        increments: Counter[int] = Counter()
        order: list[tuple[_Job, Any, Assessment | None, int]] = []
        for job in jobs:
            code = codes.get(job.serial) if job.decided is None and job.serial else None
            if job.decided is not None:
                job.result = job.decided
            elif code is None:
                job.result = VerifyResult(
                    Verdict.UNKNOWN, "well formed but not in the code database", job.serial
                )
            elif job.gtin is not None and self.facts.products[code.product_id].gtin != job.gtin:
                # A label with another product's GTIN is not a scan of this code.
                job.result = VerifyResult(Verdict.UNKNOWN, _GTIN_MISMATCH, job.serial)
            else:
                increments[code.id] += 1
                scan = job.visit.as_scan()
                assessment = assess(
                    code.state,
                    history[code.id],
                    scan,
                    activated_at=as_utc(code.activated_at),
                    shipped_regions=_division_codes(code.region),
                    thresholds=self.thresholds,
                )
                history[code.id].append(scan)
                order.append((job, code, assessment, increments[code.id]))
                continue
            order.append((job, None, None, 0))

        counts: dict[int, tuple[int, datetime | None]] = {}
        by_increment: dict[int, list[int]] = defaultdict(list)
        for code_id, n in increments.items():
            by_increment[n].append(code_id)
        first_at = min((j.visit.at for j in jobs), default=None)
        for n, ids in by_increment.items():
            rows = await conn.execute(
                update(Code)
                .where(Code.id.in_(ids))
                .values(
                    scan_count=Code.scan_count + n,
                    first_scan_at=func.coalesce(Code.first_scan_at, first_at),
                    last_scan_at=max(j.visit.at for j in jobs),
                )
                .returning(Code.id, Code.scan_count, Code.first_scan_at)
                .execution_options(synchronize_session=False)
            )
            for r in rows:
                counts[r.id] = (r.scan_count - n, as_utc(r.first_scan_at))

        log_rows: list[dict[str, Any]] = []
        alerts: dict[str, dict[str, Any]] = {}
        for job, code, judged, seq in order:
            if code is not None and judged is not None:
                base, first_scan_at = counts[code.id]
                job.result = self._result(code, judged, base + seq, first_scan_at)
                for alert in _alerts(code, job.visit, judged):
                    _merge(alerts, alert)
            assert job.result is not None
            log_rows.append(_log_row(job.visit, job.result))
        await conn.execute(insert(ScanLog), log_rows)
        if alerts:
            await upsert_alerts(conn, list(alerts.values()))

    def _result(
        self, code: Any, assessment: Assessment, scan_count: int, first_scan_at: datetime | None
    ) -> VerifyResult:
        product = self.facts.products[code.product_id]
        station = self.facts.stations.get(code.station_id) if code.station_id else None
        first = assessment.first
        info: dict[str, Any] = {
            "state": code.state,
            "kind": code.kind,
            "product": {"sku": product.sku, "name": product.name, "gtin": product.gtin},
            "lot": code.lot,
            "produced_at": _iso(code.commissioned_at),
            "line": station.line if station else None,
            "site": station.site if station else None,
            "activated_at": _iso(code.activated_at),
            "region": code.region,
            "first_scan_at": _iso(first_scan_at),
            "scan_count": scan_count,
            "first_verified_at": _iso(first.at) if first is not None else None,
            "first_verified_region": (
                first.place.region if first is not None and first.place is not None else None
            ),
            "signals": [s.name for s in assessment.signals],
        }
        return VerifyResult(
            assessment.verdict, assessment.reason, code.serial, info, code.id, assessment.signals
        )


def _gtin14(text: str) -> str:
    """A label's GTIN as GTIN-14 for comparing with the product's (which is valid): any text
    that is not the product's GTIN is a mismatch, so no check-digit arithmetic is needed."""
    return text.zfill(14) if text.isdigit() and len(text) in (8, 12, 13) else text


def _scan_of(row: Any) -> Scan:
    place = None
    if row.lat is not None and row.lon is not None:
        place = Place(row.lat, row.lon, row.place_region, row.place_source or "ip")
    return Scan(as_utc(row.at) or row.at, row.device, row.network, place, bool(row.denied_earlier))


def _division_codes(region: str | None) -> tuple[str, ...]:
    """The division codes a shipping region names ("33" Zhejiang, "3301" Hangzhou); free
    text from before division codes names none, and then no scan is outside it."""
    if not region:
        return ()
    codes = []
    for part in region.split(","):
        code = part.strip()
        if not code.isdigit() or len(code) not in (2, 4, 6):
            return ()
        while len(code) > 2 and code.endswith("00"):
            code = code[:-2]
        codes.append(code)
    return tuple(codes)


def _log_row(visit: Visit, result: VerifyResult) -> dict[str, Any]:
    place = visit.place
    return {
        "at": visit.at,
        "raw": visit.raw[:512],
        "serial": result.serial,
        "code_id": result.code_id,
        "verdict": result.verdict.value,
        "reason": result.reason[:300],
        "client": (visit.address or "")[:64] or None,
        "user_agent": (visit.user_agent or "")[:200] or None,
        "device": visit.device,
        "network": visit.network,
        "lat": place.lat if place else None,
        "lon": place.lon if place else None,
        "place_region": place.region if place else None,
        "place_source": place.source if place else None,
        "denied_earlier": visit.denied_earlier,
        "signals": ",".join(s.name for s in result.signals)[:200] or None,
    }


def _alerts(code: Any, visit: Visit, assessment: Assessment) -> list[dict[str, Any]]:
    """What the brand is told: every accusing signal, and scans of never-activated codes
    (leaked factory codes). An outside-region scan alone is no alert (a travelling buyer);
    it feeds the anti-diversion statistics."""
    kinds: list[tuple[str, dict[str, Any]]] = [
        (s.name, s.evidence) for s in assessment.signals if s.accuses
    ]
    if assessment.verdict is Verdict.NOT_ACTIVATED and State(code.state) not in ACTIVATED:
        kinds.append(("not_activated_scan", {"state": code.state}))
    out = []
    for kind, evidence in kinds:
        place = visit.place
        out.append(
            {
                "key": f"{kind}:{code.id}",
                "kind": kind,
                "code_id": code.id,
                "serial": code.serial,
                "client": visit.network,
                "dealer_id": code.dealer_id,
                "order_id": code.order_id,
                "region": code.region,
                "evidence": {
                    **evidence,
                    "scan_region": place.region if place else None,
                    "reason": assessment.reason,
                },
                "first_at": visit.at,
                "last_at": visit.at,
                "count": 1,
            }
        )
    return out


def enumeration_alert(client: str, at: datetime, last_serial: str | None) -> dict[str, Any]:
    """One client ran out of tries for unknown codes (a serial-guessing script)."""
    return {
        "key": f"enumeration:{client}"[:120],
        "kind": "enumeration",
        "code_id": None,
        "serial": None,
        "client": client[:48],
        "dealer_id": None,
        "order_id": None,
        "region": None,
        "evidence": {"last_serial": last_serial},
        "first_at": at,
        "last_at": at,
        "count": 1,
    }


def _merge(alerts: dict[str, dict[str, Any]], alert: dict[str, Any]) -> None:
    known = alerts.get(alert["key"])
    if known is None:
        alerts[alert["key"]] = alert
    else:
        known["count"] += 1
        known["last_at"] = alert["last_at"]
        known["evidence"] = alert["evidence"]


async def upsert_alerts(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert alerts, or count a repeat of one already raised (by any hub process)."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = module.insert(Alert)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[Alert.key],
            set_={
                "count": Alert.count + statement.excluded.count,
                "last_at": statement.excluded.last_at,
                "evidence": statement.excluded.evidence,
            },
        ),
        rows,
    )


def _iso(moment: datetime | None) -> str | None:
    utc = as_utc(moment)
    return None if utc is None else utc.isoformat(timespec="seconds")

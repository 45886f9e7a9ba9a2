"""Consumer verification: format check, keyed check, then one atomic scan-count update."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.domain.verdict import Judgement, Verdict, judge
from hub.models import Code, Product, ScanLog, Station
from hub.timeutil import as_utc
from protocols.codes import Keyring, check_code, parse_code
from protocols.errors import CodeError, ForgedCodeError


@dataclass(frozen=True)
class VerifyResult:
    verdict: Verdict
    reason: str
    serial: str | None = None
    info: dict[str, Any] | None = None
    code_id: int | None = None  # for the scan log; not shown to the consumer

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": self.verdict.value, "reason": self.reason}
        if self.serial is not None:
            out["serial"] = self.serial
        if self.info is not None:
            out.update(self.info)
        return out


async def verify(
    session: AsyncSession,
    keyring: Keyring,
    text: str,
    *,
    threshold: int,
    now: datetime,
    client: str | None = None,
    user_agent: str | None = None,
) -> VerifyResult:
    """Judge a scanned code and log the scan (caller commits)."""
    result = await _judge(session, keyring, text, threshold, now)
    session.add(
        ScanLog(
            at=now,
            raw=text[:512],
            serial=result.serial,
            code_id=result.code_id,
            verdict=result.verdict.value,
            reason=result.reason[:300],
            client=(client or "")[:64] or None,
            user_agent=(user_agent or "")[:200] or None,
        )
    )
    return result


_GTIN_MISMATCH = "the GTIN on the label does not match this code's product"


async def _judge(
    session: AsyncSession, keyring: Keyring, text: str, threshold: int, now: datetime
) -> VerifyResult:
    try:
        checked = check_code(text, keyring)
    except ForgedCodeError:
        # No database lookup for a serial we never sealed.
        serial = _serial_of(text)
        return VerifyResult(Verdict.UNKNOWN, "not issued by this brand", serial)
    except CodeError as exc:
        return VerifyResult(Verdict.UNKNOWN, f"malformed code: {exc}")
    serial = checked.serial
    matches = [Code.serial == serial]
    if checked.gtin is not None:
        # A label with another product's GTIN is not a scan of this code: leave its count alone.
        matches.append(Code.product_id.in_(select(Product.id).where(Product.gtin == checked.gtin)))
    row = (
        await session.execute(
            update(Code)
            .where(*matches)
            .values(
                scan_count=Code.scan_count + 1,
                first_scan_at=func.coalesce(Code.first_scan_at, now),
                last_scan_at=now,
            )
            .returning(Code.id, Code.state, Code.scan_count, Code.first_scan_at)
        )
    ).first()
    if row is None:
        if checked.gtin is not None and await session.scalar(
            select(Code.id).where(Code.serial == serial)
        ):
            return VerifyResult(Verdict.UNKNOWN, _GTIN_MISMATCH, serial)
        return VerifyResult(Verdict.UNKNOWN, "well formed but not in the code database", serial)
    code_id, state, scan_count, first_scan_at = row
    code, product, station = (
        await session.execute(
            select(Code, Product, Station)
            .join(Product, Product.id == Code.product_id)
            .outerjoin(Station, Station.id == Code.station_id)
            .where(Code.id == code_id)
        )
    ).one()
    judgement: Judgement = judge(state, scan_count, threshold)
    info: dict[str, Any] = {
        "state": state,
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
    }
    return VerifyResult(judgement.verdict, judgement.reason, serial, info, code_id)


def _serial_of(text: str) -> str:
    """The serial of a text that passed the format check (for the scan log)."""
    return parse_code(text).serial.value


def _iso(moment: datetime | None) -> str | None:
    utc = as_utc(moment)
    return None if utc is None else utc.isoformat(timespec="seconds")

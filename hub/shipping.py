"""Shipping = activation: codes leave for a dealer and a region under an order.

A shipment carries a client-chosen UUID, so a PDA that retries after a lost response gets
the first result back instead of shipping twice. A case or pallet ships with its contents.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.domain import gate, rules
from hub.domain.lifecycle import ACTIVATED, State, Step
from hub.domain.orders import (
    SHIPPED,
    OrderState,
    backorder_number,
    check_scannable,
    completion_state,
)
from hub.errors import ConflictError, InvalidRequestError
from hub.models import Code, Dealer, Event, Order, OrderClaim, OrderLine, OrderScan, Product
from hub.registry import dealer_by_code
from hub.timeutil import utcnow
from protocols.codes import CheckedCode, Keyring, check_code, check_codes
from protocols.errors import CodeError, ForgedCodeError, ProtocolError
from protocols.messages import check_event_id
from protocols.pda import CodeStatus, Judgement, KnownCode, ScanResult, Tally

MAX_SHIPMENT_CODES = 10_000


@dataclass(frozen=True)
class ShipmentResult:
    shipment_id: str
    order: str
    dealer: str
    region: str
    activated: list[str]
    refused: list[dict[str, str]]
    replayed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "shipment_id": self.shipment_id,
            "order": self.order,
            "dealer": self.dealer,
            "region": self.region,
            "activated": self.activated,
            "refused": self.refused,
            "replayed": self.replayed,
        }


async def ship(
    session: AsyncSession,
    keyring: Keyring,
    *,
    shipment_id: str,
    order_number: str,
    dealer_code: str,
    region: str | None,
    codes: list[str],
    source: str,
) -> ShipmentResult:
    """Activate ``codes`` for an order (caller commits). Refusals are per code, with reasons."""
    try:
        check_event_id(shipment_id, "shipment id")
    except ProtocolError as exc:
        raise InvalidRequestError(str(exc)) from None
    if not order_number or len(order_number) > 64:
        raise InvalidRequestError(
            f"Invalid order number {order_number!r}: expected 1-64 characters"
        )
    if not 1 <= len(codes) <= MAX_SHIPMENT_CODES:
        raise InvalidRequestError(f"Expected 1..{MAX_SHIPMENT_CODES} codes, got {len(codes)}")
    previous = await session.get(Event, shipment_id)
    if previous is not None:
        if previous.type != "shipping":
            raise ConflictError(f"Id {shipment_id} belongs to a {previous.type} event")
        stored = dict(previous.payload["result"], replayed=True)
        return ShipmentResult(**stored)

    dealer = await dealer_by_code(session, dealer_code)
    region = region or dealer.region
    now = utcnow()
    order = await session.scalar(select(Order).where(Order.number == order_number))
    if order is None:
        order = Order(number=order_number, dealer_id=dealer.id, region=region, created_at=now)
        session.add(order)
        await session.flush()
    elif order.dealer_id != dealer.id:
        raise ConflictError(f"Order {order_number!r} belongs to another dealer")

    activated: list[str] = []
    refused: list[dict[str, str]] = []
    ship_ids: list[int] = []
    activation = {
        "state": State.SHIPPED.value,
        "order_id": order.id,
        "dealer_id": dealer.id,
        "region": region,
        "activated_at": now,
    }
    for text in codes:
        try:
            checked = check_code(text, keyring)
        except ForgedCodeError:
            refused.append({"code": text[:80], "reason": "forged code (fails the keyed check)"})
            continue
        except CodeError as exc:
            refused.append({"code": text[:80], "reason": f"malformed code: {exc}"})
            continue
        row = (
            await session.execute(
                select(Code.id, Code.serial, Product.gtin)
                .join(Product, Product.id == Code.product_id)
                .where(Code.serial == checked.serial)
            )
        ).first()
        if row is None:
            refused.append({"code": checked.serial, "reason": "unknown code"})
            continue
        code_id, serial, product_gtin = row
        why = rules.gtin_mismatch(checked.gtin, product_gtin, serial)
        if why is not None:
            refused.append({"code": serial, "reason": why})
            continue
        if code_id in ship_ids:
            refused.append({"code": serial, "reason": "listed twice in this shipment"})
            continue
        claimed_by = await session.scalar(
            select(Order.number)
            .join(OrderClaim, OrderClaim.order_id == Order.id)
            .where(OrderClaim.code_id == code_id, Order.id != order.id)
        )
        if claimed_by is not None:
            refused.append({"code": serial, "reason": f"claimed by order {claimed_by}"})
            continue
        # The gate claims the code with a conditional UPDATE, not read-then-write: of two
        # shipments racing for one code, the second finds it no longer shippable.
        moved = await gate.move(session, Step.SHIPPING, [code_id], activation)
        if not moved.complete:
            refused.append({"code": serial, "reason": moved.refused[code_id]})
            continue
        contents = await _contents(session, code_id)
        # Contents shipped on their own earlier keep their first activation: the gate
        # leaves them alone, which is what is wanted here.
        await gate.move(session, Step.SHIPPING, contents, activation)
        ship_ids.append(code_id)
        ship_ids.extend(contents)
        activated.append(serial)

    if activated:
        order.state = OrderState.COMPLETE.value
        order.shipped_at = now
    result = ShipmentResult(shipment_id, order_number, dealer.code, region, activated, refused)
    session.add(
        Event(
            id=shipment_id,
            type="shipping",
            source=source,
            occurred_at=now,
            recorded_at=now,
            outcome="applied" if activated else "refused",
            reason=None if activated else "no code could be shipped",
            payload={"result": result.as_dict() | {"replayed": False}, "code_ids": ship_ids},
        )
    )
    return result


async def _contents(session: AsyncSession, parent_id: int) -> list[int]:
    """Ids of everything packed inside a case or pallet, at any depth."""
    found: list[int] = []
    frontier = [parent_id]
    while frontier:
        children = list(await session.scalars(select(Code.id).where(Code.parent_id.in_(frontier))))
        found.extend(children)
        frontier = children
    return found


# Scanning against orders (PDA) ------------------------------------------------------------

MAX_SCAN_BATCH = 10_000
MAX_DOWNLOAD_SHIPPED = 20_000
_CHUNK = 500
_AVAILABLE = (State.COMMISSIONED.value, State.PACKED.value)
_ACTIVATED = tuple(s.value for s in ACTIVATED)
_STATUS = {
    State.GENERATED.value: CodeStatus.NOT_COMMISSIONED,
    **dict.fromkeys(_ACTIVATED, CodeStatus.SHIPPED),
    State.VOID.value: CodeStatus.UNAVAILABLE,
    State.RECALLED.value: CodeStatus.UNAVAILABLE,
    State.DECOMMISSIONED.value: CodeStatus.UNAVAILABLE,
}


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


async def _product_skus(session: AsyncSession, order: Order) -> dict[int, tuple[str, str | None]]:
    rows = await session.execute(
        select(Product.id, Product.sku, Product.gtin)
        .join(OrderLine, OrderLine.product_id == Product.id)
        .where(OrderLine.order_id == order.id)
    )
    return {pid: (sku, gtin) for pid, sku, gtin in rows}


async def tally(session: AsyncSession, order: Order) -> Tally:
    """The order's lines and what its claims cover, as the scan judgement needs them."""
    lines: dict[str, int] = {}
    gtins: dict[str, str] = {}
    for sku, gtin, quantity in await session.execute(
        select(Product.sku, Product.gtin, OrderLine.quantity)
        .join(Product, Product.id == OrderLine.product_id)
        .where(OrderLine.order_id == order.id)
    ):
        lines[sku] = quantity
        if gtin:
            gtins[gtin] = sku
    result = Tally(lines=lines, gtins=gtins)
    for serial, kind, sku, scan_id in await session.execute(
        select(Code.serial, OrderClaim.kind, Product.sku, OrderClaim.scan_id)
        .join(Code, Code.id == OrderClaim.code_id)
        .join(Product, Product.id == OrderClaim.product_id)
        .where(OrderClaim.order_id == order.id)
    ):
        result.covered[serial] = scan_id
        if kind == "item":
            result.counted[sku] = result.counted.get(sku, 0) + 1
    return result


@dataclass
class _Row:
    id: int
    serial: str
    kind: str
    state: str
    parent_id: int | None
    product_id: int
    sku: str
    order_id: int | None
    claimed_by: int | None = None


async def _rows_where(session: AsyncSession, condition: Any) -> list[_Row]:
    rows = await session.execute(
        select(
            Code.id,
            Code.serial,
            Code.kind,
            Code.state,
            Code.parent_id,
            Code.product_id,
            Product.sku,
            Code.order_id,
            OrderClaim.order_id,
        )
        .join(Product, Product.id == Code.product_id)
        .outerjoin(OrderClaim, OrderClaim.code_id == Code.id)
        .where(condition)
    )
    return [_Row(*row) for row in rows]


async def _descendants(session: AsyncSession, parent_ids: list[int]) -> dict[int, list[_Row]]:
    """Everything packed inside each of ``parent_ids``, at any depth."""
    inside: dict[int, list[_Row]] = {p: [] for p in parent_ids}
    root_of = {p: p for p in parent_ids}
    frontier = list(parent_ids)
    while frontier:
        found: list[_Row] = []
        for part in _chunks(frontier):
            found.extend(await _rows_where(session, Code.parent_id.in_(part)))
        for row in found:
            assert row.parent_id is not None
            root = root_of[row.parent_id]
            root_of[row.id] = root
            inside[root].append(row)
        frontier = [row.id for row in found]
    return inside


async def _order_numbers(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(
        (await session.execute(select(Order.id, Order.number).where(Order.id.in_(ids)))).all()
    )


@dataclass
class _Known:
    info: KnownCode
    row: _Row
    claim: list[_Row]  # the rows an accepted scan claims: the code and what is inside


async def known_codes(session: AsyncSession, order: Order, serials: list[str]) -> dict[str, _Known]:
    """What the hub knows of each serial, in the terms of the scan judgement."""
    rows: list[_Row] = []
    for part in _chunks(list(dict.fromkeys(serials))):
        rows.extend(await _rows_where(session, Code.serial.in_(part)))
    containers = [r.id for r in rows if r.kind != "item"]
    inside = await _descendants(session, containers) if containers else {}
    everything = rows + [r for found in inside.values() for r in found]
    numbers = await _order_numbers(
        session,
        {r.claimed_by for r in everything if r.claimed_by is not None}
        | {r.order_id for r in everything if r.order_id is not None},
    )
    known: dict[str, _Known] = {}
    for row in rows:
        contents = inside.get(row.id, [])
        status, detail = _status_of(row, order.id, numbers)
        if status is CodeStatus.AVAILABLE:
            for child in contents:
                child_status, child_detail = _status_of(child, order.id, numbers)
                if child_status is CodeStatus.CLAIMED:
                    status, detail = child_status, f"{child.serial} inside: {child_detail}"
                    break
        items: dict[str, int] = {}
        claim = [row]
        for child in contents:
            if child.state in _AVAILABLE and child.claimed_by in (None, order.id):
                claim.append(child)
                if child.kind == "item":
                    items[child.sku] = items.get(child.sku, 0) + 1
        info = KnownCode(
            serial=row.serial,
            kind=row.kind,
            sku=row.sku,
            status=status,
            contents=tuple(c.serial for c in contents),
            items=items,
            detail=detail,
        )
        known[row.serial] = _Known(info, row, claim)
    return known


def _status_of(row: _Row, order_id: int, numbers: dict[int, str]) -> tuple[CodeStatus, str | None]:
    status = _STATUS.get(row.state)
    if status is CodeStatus.SHIPPED and row.order_id is not None:
        return status, f"order {numbers.get(row.order_id, '?')}"
    if status is not None:
        return status, None
    if row.claimed_by is not None and row.claimed_by != order_id:
        return CodeStatus.CLAIMED, f"order {numbers.get(row.claimed_by, '?')}"
    return CodeStatus.AVAILABLE, None


async def download(session: AsyncSession, order: Order) -> dict[str, Any]:
    """What a PDA needs to judge scans of ``order`` offline: the order's products' codes that
    can ship (items, and cases/pallets with what is inside), what this order already covers,
    what other orders claimed, and the most recent shipped codes of these products."""
    products = await _product_skus(session, order)
    sku_of = {pid: sku for pid, (sku, _) in products.items()}
    codes: list[list[Any]] = []
    serial_of: dict[int, str] = {}
    parents: list[tuple[int, int | None]] = []
    claimed: list[list[str]] = []
    other_orders: set[int] = set()
    claimed_rows: list[tuple[str, int]] = []
    available = await session.execute(
        select(
            Code.id, Code.serial, Code.kind, Code.parent_id, Code.product_id, OrderClaim.order_id
        )
        .outerjoin(OrderClaim, OrderClaim.code_id == Code.id)
        .where(Code.product_id.in_(list(products)), Code.state.in_(_AVAILABLE))
        .order_by(Code.id)
    )
    for code_id, serial, kind, parent_id, product_id, claimed_by in available:
        if claimed_by is not None and claimed_by != order.id:
            claimed_rows.append((serial, claimed_by))
            other_orders.add(claimed_by)
            continue
        serial_of[code_id] = serial
        parents.append((code_id, parent_id))
        codes.append([serial, kind, sku_of[product_id], None])
    for index, (_, parent_id) in enumerate(parents):
        if parent_id is not None:
            codes[index][3] = serial_of.get(parent_id)
    numbers = await _order_numbers(session, other_orders)
    claimed = [[serial, numbers[order_id]] for serial, order_id in claimed_rows]
    covered = list(
        await session.scalars(
            select(Code.serial)
            .join(OrderClaim, OrderClaim.code_id == Code.id)
            .where(OrderClaim.order_id == order.id)
        )
    )
    shipped = list(
        await session.scalars(
            select(Code.serial)
            .where(Code.product_id.in_(list(products)), Code.state.in_(_ACTIVATED))
            .order_by(Code.activated_at.desc())
            .limit(MAX_DOWNLOAD_SHIPPED)
        )
    )
    return {"codes": codes, "covered": covered, "claimed": claimed, "shipped": shipped}


@dataclass(frozen=True)
class ScanIn:
    id: str
    code: str
    at: datetime
    action: str = "add"  # add | remove
    target: str | None = None  # the scan a remove takes back
    reason: str | None = None
    device_result: str = "ok"


async def upload_scans(
    session: AsyncSession,
    keyring: Keyring,
    order: Order,
    device: str,
    scans: list[ScanIn],
) -> list[dict[str, Any]]:
    """Record a batch of a device's scans (caller commits). Each scan id counts once: a
    re-upload returns the first answers. Scans the device accepted are judged again here,
    against the database; an accepted one claims its code (and a case's contents) for the
    order, so of two devices scanning one case only the first wins.

    Rows are written with Core executemany (no ORM object per scan): a 2,000-scan batch is
    the normal case after a device was offline."""
    if not 1 <= len(scans) <= MAX_SCAN_BATCH:
        raise InvalidRequestError(f"Expected 1..{MAX_SCAN_BATCH} scans, got {len(scans)}")
    ids = [s.id for s in scans]
    if len(set(ids)) != len(ids):
        raise InvalidRequestError("Scan ids must be unique within a batch")
    for scan in scans:
        try:
            check_event_id(scan.id, "scan id")
        except ProtocolError as exc:
            raise InvalidRequestError(str(exc)) from None
    answers: dict[str, dict[str, Any]] = {}
    for part in _chunks(ids):
        for sid, order_id, result, reason, items in await session.execute(
            select(
                OrderScan.id,
                OrderScan.order_id,
                OrderScan.result,
                OrderScan.reason,
                OrderScan.items,
            ).where(OrderScan.id.in_(part))
        ):
            if order_id != order.id:
                raise ConflictError(f"Scan id {sid} belongs to another order")
            answers[sid] = _answer(sid, result, reason, items)
    fresh = [s for s in scans if s.id not in answers]
    if not fresh:
        return [answers[i] for i in ids]
    check_scannable(order.number, order.state)
    count = await tally(session, order)
    to_check = [s for s in fresh if s.action == "add" and s.device_result == "ok"]
    checked: dict[str, CheckedCode | Judgement] = {}
    for scan, outcome in zip(
        to_check, check_codes([s.code for s in to_check], keyring), strict=True
    ):
        checked[scan.id] = _refusal(outcome) if isinstance(outcome, CodeError) else outcome
    serials = [c.serial for c in checked.values() if isinstance(c, CheckedCode)]
    known = await known_codes(session, order, serials)
    now = utcnow()
    rows: list[dict[str, Any]] = []
    claims: list[tuple[dict[str, Any], list[_Row]]] = []
    batch: dict[str, tuple[Judgement, dict[str, Any]]] = {}
    for scan in fresh:
        row: dict[str, Any] = {
            "id": scan.id,
            "order_id": order.id,
            "device": device[:64],
            "raw": scan.code[:300],
            "code_id": None,
            "result": scan.device_result,
            "reason": None,
            "items": 0,
            "scanned_at": scan.at,
            "recorded_at": now,
            "removed_at": None,
            "removed_reason": None,
        }
        if scan.action == "remove":
            row["result"], row["reason"] = await _remove(
                session, order, scan, count, now, batch, claims
            )
        elif scan.id not in checked:
            row["reason"] = (scan.reason or "refused on the device")[:300]
        else:
            code = checked[scan.id]
            if isinstance(code, Judgement):
                judgement = code
            else:
                entry = known.get(code.serial)
                judgement = count.judge(code.ref, entry.info if entry else None)
            row["result"], row["reason"] = judgement.result.value, judgement.reason[:300]
            if judgement.ok and isinstance(code, CheckedCode):
                entry = known[code.serial]
                row["code_id"] = entry.row.id
                row["items"] = sum(judgement.counts.values())
                count.accept(judgement, scan.id)
                claims.append((row, entry.claim))
                batch[scan.id] = (judgement, row)
        rows.append(row)
    await session.execute(insert(OrderScan), rows)
    await _claim(session, order, claims)
    if order.state == OrderState.OPEN.value and any(r["result"] == "ok" for r in rows):
        order.state = OrderState.IN_PROGRESS.value
    for row in rows:
        answers[row["id"]] = _answer(row["id"], row["result"], row["reason"], row["items"])
    return [answers[i] for i in ids]


def _answer(scan_id: str, result: str, reason: str | None, items: int) -> dict[str, Any]:
    return {"id": scan_id, "result": result, "reason": reason, "items": items}


def _refusal(error: CodeError) -> Judgement:
    if isinstance(error, ForgedCodeError):
        return Judgement(ScanResult.BAD_CHECK, "forged code (fails the keyed check)")
    return Judgement(ScanResult.BAD_CHECK, f"not a Yima code: {error}")


def _keyed(text: str, keyring: Keyring) -> CheckedCode | Judgement:
    try:
        return check_code(text, keyring)
    except CodeError as exc:
        return _refusal(exc)


async def _claim(
    session: AsyncSession, order: Order, claims: list[tuple[dict[str, Any], list[_Row]]]
) -> None:
    """Insert the claims of accepted scans. Normally one executemany; when another device
    claimed one of the codes meanwhile, scan by scan, and the losers become conflicts."""
    if not claims:
        return
    try:
        async with session.begin_nested():
            await session.execute(
                insert(OrderClaim),
                [c for row, codes in claims for c in _claim_rows(order, row, codes)],
            )
        return
    except IntegrityError:
        pass
    for row, codes in claims:
        try:
            async with session.begin_nested():
                await session.execute(insert(OrderClaim), _claim_rows(order, row, codes))
        except IntegrityError:
            winner = await session.scalar(
                select(Order.number)
                .join(OrderClaim, OrderClaim.order_id == Order.id)
                .where(OrderClaim.code_id.in_([c.id for c in codes]))
                .limit(1)
            )
            row["result"] = ScanResult.CONFLICT.value
            row["reason"] = f"{codes[0].serial} is claimed by order {winner}"[:300]
            row["items"] = 0
            await session.execute(
                update(OrderScan)
                .where(OrderScan.id == row["id"])
                .values(result=row["result"], reason=row["reason"], items=0)
            )


def _claim_rows(order: Order, scan: dict[str, Any], codes: list[_Row]) -> list[dict[str, Any]]:
    return [
        {
            "code_id": c.id,
            "order_id": order.id,
            "scan_id": scan["id"],
            "product_id": c.product_id,
            "kind": c.kind,
        }
        for c in codes
    ]


async def _remove(
    session: AsyncSession,
    order: Order,
    scan: ScanIn,
    count: Tally,
    now: datetime,
    batch: dict[str, tuple[Judgement, dict[str, Any]]],
    claims: list[tuple[dict[str, Any], list[_Row]]],
) -> tuple[str, str]:
    """Take back an earlier scan (an undo, or a removal with a reason)."""
    reason = (scan.reason or "removed")[:200]
    if scan.target in batch:  # accepted earlier in this very batch
        judgement, pending = batch.pop(scan.target)
        count.release(judgement)
        claims[:] = [c for c in claims if c[0] is not pending]
        pending["removed_at"], pending["removed_reason"] = now, reason
        return "removed", f"scan {pending['id']} removed: {reason}"
    target = await session.get(OrderScan, scan.target) if scan.target else None
    if target is None or target.order_id != order.id:
        return "refused", f"no scan {str(scan.target)[:40]} in this order to remove"
    if target.removed_at is None:
        target.removed_at, target.removed_reason = now, reason
        for sku, kind in await session.execute(
            select(Product.sku, OrderClaim.kind)
            .join(Product, Product.id == OrderClaim.product_id)
            .where(OrderClaim.scan_id == target.id)
        ):
            if kind == "item":
                count.counted[sku] = count.counted.get(sku, 0) - 1
        await session.execute(delete(OrderClaim).where(OrderClaim.scan_id == target.id))
        for serial in [s for s, sid in count.covered.items() if sid == target.id]:
            count.covered.pop(serial)
    return "removed", f"scan {target.id} removed: {reason}"


async def complete(
    session: AsyncSession,
    order: Order,
    *,
    completion_id: str,
    reason: str | None,
    source: str,
) -> dict[str, Any]:
    """Ship what the order's scans claimed (caller commits): every claimed code is activated
    through the lifecycle gate, bound to the order, its dealer and region. Something missing
    needs a reason and leaves a backorder for the rest. A repeat returns the first answer."""
    try:
        check_event_id(completion_id, "completion id")
    except ProtocolError as exc:
        raise InvalidRequestError(str(exc)) from None
    previous = await session.get(Event, completion_id)
    if previous is not None:
        if previous.type != "shipping" or previous.payload.get("order") != order.number:
            raise ConflictError(f"Id {completion_id} belongs to another event")
        return dict(previous.payload["result"], replayed=True)
    check_scannable(order.number, order.state)
    count = await tally(session, order)
    shortfall = count.shortfall()
    state = completion_state(order.number, shortfall, reason)
    code_ids = list(
        await session.scalars(select(OrderClaim.code_id).where(OrderClaim.order_id == order.id))
    )
    if not code_ids:
        raise InvalidRequestError(f"Order {order.number!r} has no accepted scans to ship")
    now = utcnow()
    moved = await gate.move(
        session,
        Step.SHIPPING,
        code_ids,
        {
            "order_id": order.id,
            "dealer_id": order.dealer_id,
            "region": order.region,
            "activated_at": now,
        },
    )
    if not moved.complete:
        serials = dict(
            (
                await session.execute(
                    select(Code.id, Code.serial).where(Code.id.in_(list(moved.refused)[:20]))
                )
            ).all()
        )
        detail = "; ".join(
            f"{serials.get(i, i)}: {why}" for i, why in list(moved.refused.items())[:20]
        )
        raise ConflictError(
            f"Order {order.number!r} cannot ship: {len(moved.refused)} claimed codes changed "
            f"state since they were scanned ({detail}); remove those scans and complete again"
        )
    order.state = state.value
    order.shipped_at = now
    order.short_reason = (
        reason.strip()[:300] if state is OrderState.SHORT_SHIPPED and reason else None
    )
    backorder = None
    if shortfall:
        taken = await session.scalars(
            select(Order.number).where(Order.number.like(f"{order.number}-BO%"))
        )
        backorder = Order(
            number=backorder_number(order.number, taken),
            dealer_id=order.dealer_id,
            region=order.region,
            state=OrderState.OPEN.value,
            created_at=now,
            notes=f"backorder of {order.number}: {order.short_reason}"[:2000],
            assigned_to=order.assigned_to,
            backorder_of=order.id,
        )
        session.add(backorder)
        await session.flush()
        products = {sku: pid for pid, (sku, _) in (await _product_skus(session, order)).items()}
        session.add_all(
            OrderLine(order_id=backorder.id, product_id=products[sku], quantity=n)
            for sku, n in shortfall.items()
        )
    result = {
        "order": order.number,
        "state": state.value,
        "activated": len(moved.moved),
        "items": count.done,
        "shortfall": shortfall,
        "backorder": backorder.number if backorder else None,
        "replayed": False,
    }
    session.add(
        Event(
            id=completion_id,
            type="shipping",
            source=source[:80],
            occurred_at=now,
            recorded_at=now,
            outcome="applied",
            reason=order.short_reason,
            payload={"order": order.number, "result": result, "code_ids": moved.moved},
        )
    )
    return result


async def receive(
    session: AsyncSession,
    keyring: Keyring,
    order: Order,
    *,
    receipt_id: str,
    codes: list[str],
    source: str,
) -> dict[str, Any]:
    """A dealer's inbound scan of a shipped order: what arrived (received; a case receives
    what is inside), what is still missing, and what was scanned but is not this order's."""
    try:
        check_event_id(receipt_id, "receipt id")
    except ProtocolError as exc:
        raise InvalidRequestError(str(exc)) from None
    if not 1 <= len(codes) <= MAX_SHIPMENT_CODES:
        raise InvalidRequestError(f"Expected 1..{MAX_SHIPMENT_CODES} codes, got {len(codes)}")
    previous = await session.get(Event, receipt_id)
    if previous is not None:
        if previous.type != "receiving" or previous.payload.get("order") != order.number:
            raise ConflictError(f"Id {receipt_id} belongs to another event")
        return dict(previous.payload["result"], replayed=True)
    if order.state not in SHIPPED:
        raise ConflictError(f"Order {order.number!r} is {order.state}: it has not shipped")
    unexpected: list[dict[str, str]] = []
    serials: list[str] = []
    for text in codes:
        checked = _keyed(text, keyring)
        if isinstance(checked, Judgement):
            unexpected.append({"code": text[:80], "reason": checked.reason[:200]})
        else:
            serials.append(checked.serial)
    rows: dict[str, _Row] = {}
    for part in _chunks(list(dict.fromkeys(serials))):
        rows.update((r.serial, r) for r in await _rows_where(session, Code.serial.in_(part)))
    numbers = await _order_numbers(session, {r.order_id for r in rows.values() if r.order_id})
    arrived: list[int] = []
    received: list[str] = []
    for serial in dict.fromkeys(serials):
        row = rows.get(serial)
        if row is None:
            unexpected.append({"code": serial, "reason": "unknown code"})
        elif row.order_id != order.id:
            where = (
                f"shipped under order {numbers[row.order_id]}"
                if row.order_id
                else f"is {row.state}, not shipped"
            )
            unexpected.append({"code": serial, "reason": f"not in this order: {where}"})
        else:
            received.append(serial)
            arrived.append(row.id)
            if row.kind != "item":
                arrived.extend(
                    r.id
                    for r in (await _descendants(session, [row.id]))[row.id]
                    if r.order_id == order.id
                )
    if arrived:
        # Codes received earlier stay received: the gate leaves them alone.
        await gate.move(session, Step.RECEIVING, arrived)
    missing = list(
        await session.scalars(
            select(Code.serial)
            .where(
                Code.order_id == order.id, Code.state == State.SHIPPED.value, Code.kind == "item"
            )
            .order_by(Code.id)
        )
    )
    result = {
        "order": order.number,
        "received": received,
        "missing": missing[:1000],
        "missing_count": len(missing),
        "unexpected": unexpected,
        "replayed": False,
    }
    now = utcnow()
    session.add(
        Event(
            id=receipt_id,
            type="receiving",
            source=source[:80],
            occurred_at=now,
            recorded_at=now,
            outcome="applied" if received else "refused",
            reason=None if received else "no code of this order was scanned",
            payload={"order": order.number, "result": result, "code_ids": arrived},
        )
    )
    return result


async def inspect(
    session: AsyncSession, keyring: Keyring, text: str, *, region: str | None, source: str
) -> dict[str, Any]:
    """稽查: where a code found in a shop was shipped (order, dealer, region), and whether it
    was diverted (the inspector's region differs from the region it shipped to). Recorded
    as an inspecting event; changes no state."""
    checked = _keyed(text, keyring)
    answer: dict[str, Any] = {
        "code": text[:80],
        "found": False,
        "state": None,
        "product": None,
        "order": None,
        "dealer": None,
        "dealer_name": None,
        "shipped_region": None,
        "shipped_at": None,
        "diverted": False,
        "reason": None,
    }
    if isinstance(checked, Judgement):
        answer["reason"] = checked.reason[:200]
    else:
        answer["code"] = checked.serial
        row = (
            await session.execute(
                select(Code, Product.sku, Order.number, Dealer.code, Dealer.name)
                .join(Product, Product.id == Code.product_id)
                .outerjoin(Order, Order.id == Code.order_id)
                .outerjoin(Dealer, Dealer.id == Code.dealer_id)
                .where(Code.serial == checked.serial)
            )
        ).first()
        if row is None:
            answer["reason"] = "unknown code"
        else:
            code, sku, number, dealer_code, dealer_name = row
            answer.update(
                found=True,
                state=code.state,
                product=sku,
                order=number,
                dealer=dealer_code,
                dealer_name=dealer_name,
                shipped_region=code.region,
                shipped_at=code.activated_at,
            )
            if code.state not in _ACTIVATED:
                answer["reason"] = f"never shipped: code is {code.state}"
            elif region and code.region and region.strip() != code.region:
                answer["diverted"] = True
                answer["reason"] = (
                    f"窜货 diverted: shipped to {code.region}, found in {region.strip()}"
                )
    now = utcnow()
    session.add(
        Event(
            id=str(uuid.uuid4()),
            type="inspecting",
            source=source[:80],
            occurred_at=now,
            recorded_at=now,
            outcome="applied",
            reason=answer["reason"],
            payload={"code": answer["code"], "region": region, "diverted": answer["diverted"]},
        )
    )
    return answer


async def unship(
    session: AsyncSession, order: Order, *, reason: str, grace: timedelta, subject: str
) -> dict[str, Any]:
    """Take back a mistaken shipment (admin, within ``grace`` of shipping; audited as an
    unshipping event). Its codes return to the warehouse, the order opens again."""
    if order.state not in SHIPPED or order.shipped_at is None:
        raise ConflictError(f"Order {order.number!r} is {order.state}: nothing to un-ship")
    now = utcnow()
    shipped_at = (
        order.shipped_at if order.shipped_at.tzinfo else order.shipped_at.replace(tzinfo=UTC)
    )
    if now - shipped_at > grace:
        hours = grace.total_seconds() / 3600
        raise ConflictError(
            f"Order {order.number!r} shipped at {shipped_at:%Y-%m-%d %H:%M} UTC: the "
            f"un-ship grace period of {hours:g} h is over"
        )
    late = await session.scalar(
        select(func.count())
        .select_from(Code)
        .where(Code.order_id == order.id, Code.state != State.SHIPPED.value)
    )
    if late:
        raise ConflictError(
            f"Order {order.number!r}: {late} codes were received or redeemed since: cannot un-ship"
        )
    ids = list(await session.scalars(select(Code.id).where(Code.order_id == order.id)))
    moved = await gate.move(
        session,
        Step.UNSHIPPING,
        ids,
        {"order_id": None, "dealer_id": None, "region": None, "activated_at": None},
    )
    packed = (
        list(
            await session.scalars(
                select(Code.id).where(Code.id.in_(ids), Code.parent_id.is_not(None))
            )
        )
        if len(ids) <= 30_000
        else []
    )
    if packed:
        await gate.move(session, Step.PACKING, packed)
    await session.execute(delete(OrderClaim).where(OrderClaim.order_id == order.id))
    await session.execute(
        update(OrderScan)
        .where(OrderScan.order_id == order.id, OrderScan.removed_at.is_(None))
        .values(removed_at=now, removed_reason=f"un-shipped: {reason}"[:300])
    )
    order.state = OrderState.OPEN.value
    order.shipped_at = None
    order.short_reason = None
    session.add(
        Event(
            id=str(uuid.uuid4()),
            type="unshipping",
            source=subject[:80],
            occurred_at=now,
            recorded_at=now,
            outcome="applied",
            reason=reason[:300],
            payload={"order": order.number, "code_ids": moved.moved},
        )
    )
    return {"order": order.number, "state": order.state, "returned": len(moved.moved)}


async def code_for_order(
    session: AsyncSession, keyring: Keyring, order: Order, text: str
) -> KnownCode | None:
    """One code as the scan judgement of ``order`` sees it; None for no code of ours."""
    checked = _keyed(text, keyring)
    if isinstance(checked, Judgement):
        return None
    found = (await known_codes(session, order, [checked.serial])).get(checked.serial)
    return None if found is None else found.info

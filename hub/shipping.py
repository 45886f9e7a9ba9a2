"""Shipping = activation: codes leave for a dealer and a region under an order.

A shipment carries a client-chosen UUID, so a PDA that retries after a lost response gets
the first result back instead of shipping twice. A case or pallet ships with its contents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.domain import gate, rules
from hub.domain.lifecycle import State, Step
from hub.errors import ConflictError, InvalidRequestError
from hub.models import Code, Event, Order, Product
from hub.registry import dealer_by_code
from hub.timeutil import utcnow
from protocols.codes import Keyring, check_code
from protocols.errors import CodeError, ForgedCodeError, ProtocolError
from protocols.messages import check_event_id

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
        order.state = "shipped"
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

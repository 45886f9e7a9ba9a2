"""The warehouse audience: PDAs shipping codes to dealers (activation)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field
from sqlalchemy.exc import IntegrityError

from hub import shipping
from hub.web.api import Api, Body, Out
from hub.web.keys import KEYRING, PRINCIPAL, SESSIONS

api = Api("pda", "Warehouse PDAs: outbound shipping against orders.")


class ShipmentIn(Body):
    id: str = Field(
        description="Client-chosen UUID: a retry with the same id replays", max_length=36
    )
    order: str = Field(min_length=1, max_length=64, description="Order number")
    dealer: str = Field(min_length=1, max_length=64, description="Dealer code")
    region: str | None = Field(None, max_length=100, description="Default: the dealer's region")
    codes: list[str] = Field(
        min_length=1, max_length=shipping.MAX_SHIPMENT_CODES, description="Code texts as scanned"
    )


class Refusal(Out):
    code: str
    reason: str


class ShipmentOut(Out):
    shipment_id: str
    order: str
    dealer: str
    region: str
    activated: list[str]
    refused: list[Refusal]
    replayed: bool


@api.post("/api/v1/shipments", roles=("warehouse",), body=ShipmentIn, response=ShipmentOut)
async def add_shipment(request: web.Request, body: ShipmentIn) -> ShipmentOut:
    """Ship codes for an order: activates them for the dealer and region.

    Idempotent by shipment id. A case or pallet ships with its contents. Each code that
    cannot ship is refused with its reason; the others ship.
    """
    arguments = {
        "shipment_id": body.id,
        "order_number": body.order,
        "dealer_code": body.dealer,
        "region": body.region,
        "codes": body.codes,
        "source": f"api:{request[PRINCIPAL].role}",
    }
    try:
        result = await _ship(request.app, arguments)
    except IntegrityError:
        # The same shipment id committed concurrently (a PDA retrying while the first try
        # was still running): run again, which now finds it and replays its result.
        result = await _ship(request.app, arguments)
    return ShipmentOut.model_validate(result.as_dict())


async def _ship(app: web.Application, arguments: dict[str, Any]) -> shipping.ShipmentResult:
    async with app[SESSIONS]() as session, session.begin():
        return await shipping.ship(session, app[KEYRING], **arguments)

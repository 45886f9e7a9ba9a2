"""Shipping = activation, through the HTTP API with the warehouse token."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from hub.models import Event, Order
from hub.settings import Settings
from hub.web.app import create_app
from protocols.codes import CodeKey, CodeKind, parse_code

WAREHOUSE = {"Authorization": "Bearer wh-token"}
NEVER_READ = "shipping refused: not commissioned: never read on a production line"


def serial_of(url: str) -> str:
    return parse_code(url).serial.value


async def shipment(hub: Any, body: Any, status: int = 200) -> Any:
    return await hub.api("POST", "/api/v1/shipments", body, status=status, headers=WAREHOUSE)


async def test_shipping_activates_codes(plant: Any) -> None:
    hub = plant
    urls = await hub.commissioned("TEA", 3)
    ship_id = str(uuid.uuid4())
    result = await hub.ship(urls[:2], id=ship_id, order="SO-1", dealer="D1")
    assert result == {
        "shipment_id": ship_id,
        "order": "SO-1",
        "dealer": "D1",
        "region": "Zhejiang",
        "activated": [serial_of(u) for u in urls[:2]],
        "refused": [],
        "replayed": False,
    }
    order = await hub.scalar(select(Order).where(Order.number == "SO-1"))
    assert (order.state, order.region) == ("complete", "Zhejiang")
    assert order.shipped_at is not None
    for url in urls[:2]:
        code = await hub.code(url)
        assert (code.state, code.order_id, code.region) == ("shipped", order.id, "Zhejiang")
        assert code.dealer_id == order.dealer_id
        assert code.activated_at is not None
    assert (await hub.code(urls[2])).state == "commissioned"
    event = await hub.scalar(select(Event).where(Event.id == ship_id))
    assert (event.type, event.outcome) == ("shipping", "applied")
    # Who: role and the token's fingerprint (never the token itself).
    assert event.source.startswith("api:warehouse/token:") and "wh-token" not in event.source


async def test_region_can_be_named_per_shipment(plant: Any) -> None:
    hub = plant
    urls = await hub.commissioned("WINE", 1)
    result = await hub.ship(urls, region="Jiangsu")
    assert result["region"] == "Jiangsu"
    assert (await hub.code(urls[0])).region == "Jiangsu"


async def test_every_printed_form_is_accepted(plant: Any) -> None:
    hub = plant
    urls = await hub.commissioned("WINE", 3)
    serials = [serial_of(u) for u in urls]
    key = hub.keyring.active
    from protocols.codes import Serial

    forms = [urls[0], f"(01)09506000134352(21){serials[1]}", Serial(serials[2]).as_human()]
    result = await hub.ship(forms)
    assert result["activated"] == serials
    assert key.key_id == 0


async def test_per_code_refusals_with_reasons(plant: Any) -> None:
    hub = plant
    shipped, ok, twice = await hub.commissioned("TEA", 3)
    await hub.ship([shipped], order="SO-0")
    generated = (await hub.urls("TEA", 1))[0]
    forged_serial = CodeKey(0, secrets.token_bytes(32)).seal(CodeKind.ITEM, 1).value
    forged = f"{hub.runtime.public_base}/c/{forged_serial}"
    unissued = hub.keyring.active.seal(CodeKind.ITEM, 999_999).value
    expected = [
        {"code": serial_of(generated), "reason": NEVER_READ},
        {"code": serial_of(shipped), "reason": "shipping refused: already shipped"},
        {"code": forged, "reason": "forged code (fails the keyed check)"},
        {
            "code": "hello",
            "reason": "malformed code: Invalid serial 'hello': expected 20 symbols "
            "(or 21 with a check symbol), got 5",
        },
        {"code": unissued, "reason": "unknown code"},
        {"code": serial_of(twice), "reason": "listed twice in this shipment"},
    ]
    result = await hub.ship(
        [generated, shipped, ok, forged, "hello", unissued, twice, serial_of(twice)],
        order="SO-1",
    )
    assert result["activated"] == [serial_of(ok), serial_of(twice)]
    assert result["refused"] == expected
    assert (await hub.code(generated)).state == "generated"
    assert (await hub.code(shipped)).order_id != (await hub.code(ok)).order_id


async def test_nothing_shippable_is_recorded_as_refused(plant: Any) -> None:
    hub = plant
    generated = (await hub.urls("TEA", 1))[0]
    ship_id = str(uuid.uuid4())
    result = await hub.ship([generated], id=ship_id)
    assert result["activated"] == []
    assert result["refused"] == [{"code": serial_of(generated), "reason": NEVER_READ}]
    event = await hub.scalar(select(Event).where(Event.id == ship_id))
    assert (event.outcome, event.reason) == ("refused", "no code could be shipped")


async def test_replay_returns_the_first_result_and_changes_nothing(plant: Any) -> None:
    hub = plant
    urls = await hub.commissioned("TEA", 2)
    generated = (await hub.urls("TEA", 1))[0]
    body = {"id": str(uuid.uuid4()), "order": "SO-1", "dealer": "D1", "codes": [*urls, generated]}
    first = await shipment(hub, body)
    before = [(c.state, c.activated_at, c.order_id) for c in [await hub.code(u) for u in urls]]
    events_before = await hub.count(Event)

    again = await shipment(hub, body)
    assert again == {**first, "replayed": True}
    # Even a changed body gets the recorded result back: the id is the idempotency key.
    changed = await shipment(hub, {**body, "codes": [generated], "order": "SO-2"})
    assert changed == again
    assert [(c.state, c.activated_at, c.order_id) for c in [await hub.code(u) for u in urls]] == (
        before
    )
    assert await hub.count(Event) == events_before
    assert await hub.count(Order, Order.number == "SO-2") == 0


async def test_shipment_id_of_another_event_is_a_conflict(plant: Any) -> None:
    hub = plant
    url = (await hub.urls("TEA", 1))[0]
    event = hub.station.commission(url)
    await hub.station.send(event)
    body = {"id": event.id, "order": "SO-1", "dealer": "D1", "codes": [url]}
    assert await shipment(hub, body, 409) == {
        "error": f"Id {event.id} belongs to a commission event"
    }


async def test_order_bound_to_another_dealer_is_a_conflict(plant: Any) -> None:
    hub = plant
    await hub.add_dealer("D2", region="Jiangsu")
    urls = await hub.commissioned("TEA", 2)
    await hub.ship(urls[:1], order="SO-1", dealer="D1")
    body = {"id": str(uuid.uuid4()), "order": "SO-1", "dealer": "D2", "codes": urls[1:]}
    assert await shipment(hub, body, 409) == {"error": "Order 'SO-1' belongs to another dealer"}
    assert (await hub.code(urls[1])).state == "commissioned"


async def test_unknown_dealer(plant: Any) -> None:
    hub = plant
    urls = await hub.commissioned("TEA", 1)
    body = {"id": str(uuid.uuid4()), "order": "SO-1", "dealer": "NOPE", "codes": urls}
    assert await shipment(hub, body, 404) == {"error": "Unknown dealer 'NOPE'"}
    assert (await hub.code(urls[0])).state == "commissioned"
    assert await hub.count(Order) == 0


GOOD = {"id": "7d0f3d5e-1c1e-4b8e-9d55-3f1c2b7a9e01", "order": "SO-1", "dealer": "D1"}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({**GOOD}, "body.codes: Field required"),
        ({**GOOD, "codes": "abc"}, "body.codes: Input should be a valid array"),
        (
            {**GOOD, "codes": [1, 2]},
            "body.codes[0]: Input should be a valid string; "
            "body.codes[1]: Input should be a valid string",
        ),
        (
            {**GOOD, "codes": []},
            "body.codes: List should have at least 1 item after validation, not 0",
        ),
        (
            {**GOOD, "codes": ["x"] * 10_001},
            "body.codes: List should have at most 10000 items after validation, not 10001",
        ),
        ({**GOOD, "id": "abc", "codes": ["x"]}, "shipment id expected a UUID, got 'abc'"),
        (
            {**GOOD, "id": GOOD["id"].upper(), "codes": ["x"]},
            f"shipment id expected a lower-case hyphenated UUID, got {GOOD['id'].upper()!r}",
        ),
        (
            {**GOOD, "order": "", "codes": ["x"]},
            "body.order: String should have at least 1 character",
        ),
        ({**GOOD, "order": 5, "codes": ["x"]}, "body.order: Input should be a valid string"),
        ({"order": "SO-1", "dealer": "D1", "codes": ["x"]}, "body.id: Field required"),
        ({**GOOD, "region": 3, "codes": ["x"]}, "body.region: Input should be a valid string"),
        ([1, 2], "body: Input should be an object"),
    ],
)
async def test_bad_bodies(sqlite_plant: Any, body: Any, error: str) -> None:
    hub = sqlite_plant
    assert await shipment(hub, body, 422) == {"error": error}
    assert await hub.count(Event) == await hub.count(Order) == 0


async def test_body_that_is_not_json(plant: Any) -> None:
    response = await plant.client.post(
        "/api/v1/shipments",
        data=b"{not json",
        headers={**WAREHOUSE, "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert (await response.json())["error"].startswith("body: Invalid JSON: ")


async def test_body_too_large(aiohttp_client: Any, hub_settings: Settings) -> None:
    settings = hub_settings.model_copy(update={"max_request_bytes": 2048})
    client = await aiohttp_client(create_app(settings))
    body = {**GOOD, "codes": ["x" * 100] * 30}
    response = await client.post("/api/v1/shipments", json=body, headers=WAREHOUSE)
    assert response.status == 413
    assert await response.json() == {"error": "Request body too large: expected at most 2048 bytes"}


# Authentication and roles ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/products"),
        ("POST", "/api/v1/stations"),
        ("POST", "/api/v1/dealers"),
        ("POST", "/api/v1/batches"),
        ("GET", "/api/v1/batches/1"),
        ("GET", "/api/v1/batches/1/export"),
        ("GET", "/api/v1/info"),
    ],
)
async def test_warehouse_token_cannot_call_admin_endpoints(
    sqlite_hub: Any, method: str, path: str
) -> None:
    hub = sqlite_hub
    body = {"sku": "X", "name": "X"} if method == "POST" else None
    assert await hub.api(method, path, body, status=403, headers=WAREHOUSE) == {
        "error": f"Role 'warehouse' may not call {method} {path}"
    }
    assert await hub.count(Order) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Bearer "},
        {"Authorization": "wh-token"},
        {"Authorization": "Basic d2gtdG9rZW46"},
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/shipments", "/api/v1/products"])
async def test_missing_or_unknown_token(
    sqlite_hub: Any, headers: dict[str, str], path: str
) -> None:
    hub = sqlite_hub
    response = await hub.client.post(path, json={}, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert await response.json() == {"error": "Missing or unknown bearer token"}


async def test_admin_token_may_ship(plant: Any) -> None:
    urls = await plant.commissioned("TEA", 1)
    body = {"id": str(uuid.uuid4()), "order": "SO-1", "dealer": "D1", "codes": urls}
    result = await plant.api("POST", "/api/v1/shipments", body)
    assert result["activated"] == [serial_of(urls[0])]
    event = await plant.scalar(select(Event).where(Event.id == body["id"]))
    assert event.source.startswith("api:admin/token:")


# Races ----------------------------------------------------------------------------------------


async def test_concurrent_shipments_of_one_code_activate_it_once(plant: Any) -> None:
    hub = plant
    await hub.add_dealer("D2", region="Jiangsu")
    urls = await hub.commissioned("TEA", 1)
    results = await asyncio.gather(
        *(hub.ship(urls, order=f"SO-{n}", dealer="D1" if n % 2 else "D2") for n in range(6))
    )
    winners = [r for r in results if r["activated"]]
    assert len(winners) == 1, results
    losers = [r["refused"] for r in results if not r["activated"]]
    assert (
        losers
        == [[{"code": serial_of(urls[0]), "reason": "shipping refused: already shipped"}]] * 5
    )
    code = await hub.code(urls[0])
    order = await hub.scalar(select(Order).where(Order.id == code.order_id))
    assert order.number == winners[0]["order"]
    assert code.region == winners[0]["region"]


async def test_concurrent_retries_of_one_shipment_id_replay_it(plant: Any) -> None:
    """A PDA retrying while its first request still runs gets the same result, never a 500."""
    hub = plant
    urls = await hub.commissioned("TEA", 2)
    shipment_id = str(uuid.uuid4())
    results = await asyncio.gather(*(hub.ship(urls, id=shipment_id) for _ in range(5)))
    first = [r for r in results if not r["replayed"]]
    assert len(first) == 1, results
    assert len(first[0]["activated"]) == 2
    for result in results:
        assert {**result, "replayed": False} == first[0]


async def test_concurrent_shipments_on_existing_orders_activate_a_code_once(plant: Any) -> None:
    """Orders that exist already: no insert serializes the transactions, the UPDATE must."""
    hub = plant
    await hub.add_dealer("D2", region="Jiangsu")
    openers = await hub.commissioned("TEA", 6)
    for n, url in enumerate(openers):
        await hub.ship([url], order=f"SO-{n}", dealer="D1" if n % 2 else "D2")
    urls = await hub.commissioned("TEA", 2)
    results = await asyncio.gather(
        *(hub.ship(urls, order=f"SO-{n}", dealer="D1" if n % 2 else "D2") for n in range(6))
    )
    for url in urls:
        serial = serial_of(url)
        winners = [r for r in results if serial in r["activated"]]
        assert len(winners) == 1, results
        code = await hub.code(url)
        order = await hub.scalar(select(Order).where(Order.id == code.order_id))
        assert order.number == winners[0]["order"]


async def test_contents_shipped_earlier_keep_their_first_activation(plant: Any) -> None:
    hub = plant
    await hub.add_dealer("D2", region="Jiangsu")
    items = await hub.commissioned("TEA", 2)
    case = (await hub.urls("TEA", 1, kind="case"))[0]
    await hub.station.send(hub.station.aggregate(case, items))
    first = await hub.ship(items[:1], order="SO-1", dealer="D1")
    assert first["activated"] == [serial_of(items[0])]
    early = await hub.code(items[0])

    second = await hub.ship([case], order="SO-2", dealer="D2")
    assert second["activated"] == [serial_of(case)]
    late = await hub.code(items[1])
    again = await hub.code(items[0])
    assert (again.order_id, again.region, again.activated_at) == (
        early.order_id,
        "Zhejiang",
        early.activated_at,
    )
    assert (late.state, late.region) == ("shipped", "Jiangsu")
    assert late.order_id != early.order_id

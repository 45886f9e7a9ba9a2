"""Orders and the PDA API: import, download, scan batches, completion, receiving, 稽查, un-ship."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from hub.models import AuditEntry, Code, Event, Order
from hub.settings import Settings
from protocols.codes import parse_code

ADMIN = {"Authorization": "Bearer admin-token"}
WH = {"Authorization": "Bearer wh-token"}
WH2 = {"Authorization": "Bearer wh2-token"}
DEALER = {"Authorization": "Bearer dealer-token"}
INSPECTOR = {"Authorization": "Bearer insp-token"}


@pytest.fixture
def hub_settings(database_url: str, broker_url: str, hub_settings_factory: Any) -> Settings:
    settings: Settings = hub_settings_factory(
        database_url,
        broker_url,
        tokens={
            "admin-token": "admin",
            "wh-token": "warehouse",
            "wh2-token": "warehouse",
            "dealer-token": "dealer",
            "insp-token": "inspector",
        },
    )
    return settings


def serial(url: str) -> str:
    return parse_code(url).serial.value


def now() -> str:
    return datetime.now(UTC).isoformat()


async def new_order(hub: Any, number: str = "SO-1", **lines: int) -> dict[str, Any]:
    body = {
        "orders": [
            {
                "number": number,
                "dealer": "D1",
                "notes": "请轻放 handle with care",
                "lines": [{"sku": sku, "quantity": n} for sku, n in (lines or {"TEA": 3}).items()],
            }
        ]
    }
    return dict(await hub.api("POST", "/api/v1/orders", body, status=201))


async def scan(
    hub: Any,
    order: str,
    *codes: str,
    headers: dict[str, str] = WH,
    device: str = "pda-1",
    status: int = 200,
) -> Any:
    scans = [{"id": str(uuid.uuid4()), "code": c, "at": now()} for c in codes]
    return await hub.api(
        "POST",
        f"/api/v1/pda/orders/{order}/scans",
        {"device": device, "scans": scans},
        status=status,
        headers=headers,
    )


def results(answer: Any) -> list[str]:
    return [s["result"] for s in answer["scans"]]


async def complete(hub: Any, order: str, reason: str | None = None, status: int = 200) -> Any:
    body = {"id": str(uuid.uuid4()), "reason": reason}
    return await hub.api(
        "POST", f"/api/v1/pda/orders/{order}/complete", body, status=status, headers=WH
    )


async def packed_case(hub: Any, sku: str, items: int) -> tuple[str, list[str]]:
    """A commissioned case code with ``items`` commissioned items packed inside."""
    (case,) = await hub.commissioned(sku, 1, kind="case")
    inner = await hub.commissioned(sku, items)
    ack = await hub.station.send(hub.station.aggregate(case, inner))
    assert ack.rejected == (), ack
    return case, inner


# Import ------------------------------------------------------------------------------------


async def test_json_orders_are_created_once_and_listed(plant: Any) -> None:
    hub = plant
    assert await new_order(hub, TEA=3, WINE=2) == {"created": ["SO-1"], "skipped": []}
    assert await new_order(hub, TEA=3, WINE=2) == {"created": [], "skipped": ["SO-1"]}
    other = await hub.api(
        "POST",
        "/api/v1/orders",
        {"orders": [{"number": "SO-1", "dealer": "D1", "lines": [{"sku": "TEA", "quantity": 9}]}]},
        status=409,
    )
    assert other == {"error": "Order 'SO-1' exists with other contents: nothing imported"}
    order = await hub.api("GET", "/api/v1/orders/SO-1")
    assert (order["state"], order["region"], order["dealer"]) == ("open", "Zhejiang", "D1")
    assert [(line["sku"], line["quantity"], line["scanned"]) for line in order["lines"]] == [
        ("TEA", 3, 0),
        ("WINE", 2, 0),
    ]
    assert order["notes"] == "请轻放 handle with care"


async def test_unknown_dealer_or_product_imports_nothing(plant: Any) -> None:
    hub = plant
    body = {
        "orders": [
            {"number": "A", "dealer": "D1", "lines": [{"sku": "TEA", "quantity": 1}]},
            {"number": "B", "dealer": "D9", "lines": [{"sku": "BEER", "quantity": 1}]},
        ]
    }
    answer = await hub.api("POST", "/api/v1/orders", body, status=422)
    assert answer == {
        "error": "Orders refused, nothing imported: unknown dealer 'D9'; unknown product 'BEER'"
    }
    assert (await hub.api("GET", "/api/v1/orders"))["orders"] == []


CSV = (
    "order,dealer,region,sku,quantity,notes,assigned_to\n"
    "SO-7,D1,Jiangsu,TEA,10,急单,pda-1\n"
    "SO-7,D1,Jiangsu,WINE,5,急单,pda-1\n"
    "SO-8,D1,,TEA,1,,\n"
)


async def test_csv_import_groups_rows_into_orders(sqlite_plant: Any) -> None:
    hub = sqlite_plant
    response = await hub.client.post(
        "/api/v1/orders/import",
        data=("\ufeff" + CSV).encode(),
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert response.status == 201, await response.text()
    assert await response.json() == {"created": ["SO-7", "SO-8"], "skipped": []}
    order = await hub.api("GET", "/api/v1/orders/SO-7")
    assert (order["region"], order["assigned_to"], order["notes"]) == ("Jiangsu", "pda-1", "急单")
    assert [(x["sku"], x["quantity"]) for x in order["lines"]] == [("TEA", 10), ("WINE", 5)]
    assert (await hub.api("GET", "/api/v1/orders/SO-8"))["region"] == "Zhejiang"


async def test_xlsx_import(sqlite_plant: Any) -> None:
    from openpyxl import Workbook

    hub = sqlite_plant
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in CSV.splitlines():
        sheet.append([int(c) if c.isdigit() else (c or None) for c in row.split(",")])
    buffer = io.BytesIO()
    book.save(buffer)
    response = await hub.client.post(
        "/api/v1/orders/import",
        data=buffer.getvalue(),
        headers={
            **ADMIN,
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        },
    )
    assert response.status == 201, await response.text()
    assert (await response.json())["created"] == ["SO-7", "SO-8"]


@pytest.mark.parametrize(
    ("text", "content_type", "error"),
    [
        (
            "order,dealer,sku\nA,D1,TEA\n",
            "text/csv",
            "Import header lacks quantity: expected columns order, dealer, region, sku, "
            "quantity, notes, assigned_to, got order, dealer, sku",
        ),
        (
            "order,dealer,sku,quantity\nA,D1,TEA,1\nA,D1,WINE,ten\nB,D1,,1\nA,D2,WINE,1\n"
            "A,D1,TEA,2\nC,D1,TEA,0\n",
            "text/csv",
            "Import refused, nothing imported: row 3: quantity 'ten' is no whole number; "
            "row 4: empty sku; row 5: order A has dealer D1 on row 2 and D2 here; "
            "row 6: order A lists TEA twice; row 7: quantity 0, expected 1..1000000",
        ),
        ("order,dealer,sku,quantity\n", "text/csv", "Import refused: the file has no order lines"),
        ("", "text/csv", "Import refused: the file is empty"),
        (
            "order,dealer,sku,quantity\n",
            "application/pdf",
            "Import of type 'application/pdf': expected text/csv or an XLSX workbook",
        ),
        ("PK\x03\x04broken", "text/csv", "XLSX cannot be read: File is not a zip file"),
    ],
)
async def test_bad_import_files_say_what_is_wrong(
    sqlite_plant: Any, text: str, content_type: str, error: str
) -> None:
    response = await sqlite_plant.client.post(
        "/api/v1/orders/import",
        data=text.encode(),
        headers={**ADMIN, "Content-Type": content_type},
    )
    assert (response.status, await response.json()) == (422, {"error": error})


# Download and scanning ----------------------------------------------------------------------


async def test_assigned_orders_and_download(plant: Any) -> None:
    hub = plant
    await new_order(hub, "SO-1", TEA=2)
    await new_order(hub, "SO-2", TEA=1)
    await hub.api("PUT", "/api/v1/orders/SO-2/assignment", {"assigned_to": "pda-9"})
    mine = await hub.api("GET", "/api/v1/pda/orders?device=pda-1", headers=WH)
    assert [o["number"] for o in mine["orders"]] == ["SO-1"]
    theirs = await hub.api("GET", "/api/v1/pda/orders?device=pda-9", headers=WH)
    assert [o["number"] for o in theirs["orders"]] == ["SO-1", "SO-2"]

    case, inner = await packed_case(hub, "TEA", 2)
    loose = await hub.commissioned("TEA", 1)
    await hub.commissioned("WINE", 1)  # another product: not in the download
    download = await hub.api("GET", "/api/v1/pda/orders/SO-1", headers=WH)
    assert download["order"]["number"] == "SO-1"
    codes = {c[0]: c for c in download["codes"]}
    assert set(codes) == {serial(u) for u in [case, *inner, *loose]}
    assert codes[serial(case)] == [serial(case), "case", "TEA", None]
    assert codes[serial(inner[0])] == [serial(inner[0]), "item", "TEA", serial(case)]
    assert download["covered"] == download["claimed"] == download["shipped"] == []


async def test_every_scan_result_on_the_hub(plant: Any) -> None:
    hub = plant
    await new_order(hub, TEA=2)
    tea = await hub.commissioned("TEA", 3)
    wine = await hub.commissioned("WINE", 1)
    never_read = await hub.urls("TEA", 1)
    shipped = await hub.commissioned("TEA", 1)
    await hub.ship(shipped, order="SO-0")
    forged = tea[0][:-3] + ("AAA" if not tea[0].endswith("AAA") else "BBB")
    answer = await scan(
        hub,
        "SO-1",
        tea[0],
        tea[0],
        wine[0],
        never_read[0],
        shipped[0],
        forged,
        "hello",
        tea[1],
        tea[2],
    )
    assert results(answer) == [
        "ok",
        "duplicate_in_order",
        "wrong_product",
        "not_commissioned",
        "already_shipped",
        "bad_check",
        "bad_check",
        "ok",
        "over_quantity",
    ]
    reasons = [s["reason"] for s in answer["scans"]]
    assert reasons[4] == f"{serial(shipped[0])} is already shipped (order SO-0)"
    assert reasons[5] == "forged code (fails the keyed check)"
    assert reasons[8] == f"item {serial(tea[2])} adds 1 TEA, only 0 left on the line"
    assert answer["order"]["state"] == "in_progress"
    assert answer["order"]["lines"][0]["scanned"] == 2


async def test_a_case_counts_its_items_all_or_nothing(plant: Any) -> None:
    hub = plant
    await new_order(hub, TEA=3)
    big, _ = await packed_case(hub, "TEA", 4)
    small, inner = await packed_case(hub, "TEA", 2)
    answer = await scan(hub, "SO-1", big, inner[0], small)
    assert results(answer) == ["over_quantity", "ok", "duplicate_in_order"]
    assert answer["scans"][0]["reason"] == f"case {serial(big)} adds 4 TEA, only 3 left on the line"
    assert answer["scans"][2]["reason"] == (
        f"case {serial(small)} holds {serial(inner[0])}, already scanned in this order"
    )


async def test_re_upload_is_idempotent_and_removal_releases(plant: Any) -> None:
    hub = plant
    await new_order(hub, TEA=1)
    (code,) = await hub.commissioned("TEA", 1)
    batch = {"device": "pda-1", "scans": [{"id": str(uuid.uuid4()), "code": code, "at": now()}]}
    first = await hub.api("POST", "/api/v1/pda/orders/SO-1/scans", batch, headers=WH)
    again = await hub.api("POST", "/api/v1/pda/orders/SO-1/scans", batch, headers=WH)
    assert results(first) == results(again) == ["ok"]
    assert again["order"]["lines"][0]["scanned"] == 1
    scan_id = batch["scans"][0]["id"]
    removal = {
        "id": str(uuid.uuid4()),
        "code": scan_id,
        "at": now(),
        "action": "remove",
        "target": scan_id,
        "reason": "damaged box",
    }
    answer = await hub.api(
        "POST",
        "/api/v1/pda/orders/SO-1/scans",
        {"device": "pda-1", "scans": [removal]},
        headers=WH,
    )
    assert answer["scans"][0]["result"] == "removed"
    assert answer["order"]["lines"][0]["scanned"] == 0
    assert results(await scan(hub, "SO-1", code)) == ["ok"]


async def test_two_devices_one_case_one_wins(plant: Any) -> None:
    hub = plant
    await new_order(hub, "SO-A", TEA=5)
    await new_order(hub, "SO-B", TEA=5)
    case, inner = await packed_case(hub, "TEA", 3)
    assert results(await scan(hub, "SO-A", case, device="pda-1")) == ["ok"]
    lost = await scan(hub, "SO-B", case, headers=WH2, device="pda-2")
    assert results(lost) == ["conflict"]
    assert lost["scans"][0]["reason"] == f"{serial(case)} is claimed by another order (order SO-A)"
    item = await scan(hub, "SO-B", inner[0], headers=WH2, device="pda-2")
    assert (
        item["scans"][0]["reason"] == f"{serial(inner[0])} is claimed by another order (order SO-A)"
    )
    # The download of the other order names the claims.
    download = await hub.api("GET", "/api/v1/pda/orders/SO-B", headers=WH2)
    assert sorted(download["claimed"]) == sorted([serial(u), "SO-A"] for u in [case, *inner])
    # The legacy shipment path respects claims too.
    legacy = await hub.ship([inner[1]], order="SO-X")
    assert legacy["refused"] == [{"code": serial(inner[1]), "reason": "claimed by order SO-A"}]


# Completion -------------------------------------------------------------------------------


async def test_completion_activates_the_claimed_codes(plant: Any) -> None:
    hub = plant
    await new_order(hub, TEA=3)
    case, inner = await packed_case(hub, "TEA", 2)
    (loose,) = await hub.commissioned("TEA", 1)
    await scan(hub, "SO-1", case, loose)
    body = {"id": str(uuid.uuid4())}
    done = await hub.api("POST", "/api/v1/pda/orders/SO-1/complete", body, headers=WH)
    assert done == {
        "order": "SO-1",
        "state": "complete",
        "activated": 4,
        "items": 3,
        "shortfall": {},
        "backorder": None,
        "replayed": False,
    }
    again = await hub.api("POST", "/api/v1/pda/orders/SO-1/complete", body, headers=WH)
    assert again == {**done, "replayed": True}
    order = await hub.scalar(select(Order).where(Order.number == "SO-1"))
    for url in [case, *inner, loose]:
        code = await hub.code(url)
        assert (code.state, code.order_id, code.dealer_id, code.region) == (
            "shipped",
            order.id,
            order.dealer_id,
            "Zhejiang",
        )
    verdict = await hub.verify(loose)
    assert verdict["verdict"] == "genuine"
    assert (await scan(hub, "SO-1", loose, status=409))["error"] == (
        "Order 'SO-1' is complete: expected open or in_progress"
    )


async def test_short_shipment_needs_a_reason_and_leaves_a_backorder(plant: Any) -> None:
    hub = plant
    await new_order(hub, TEA=3, WINE=1)
    (code,) = await hub.commissioned("TEA", 1)
    await scan(hub, "SO-1", code)
    refused = await complete(hub, "SO-1", status=422)
    assert refused == {
        "error": "Order 'SO-1' is short (2 TEA, 1 WINE): a short shipment needs a reason"
    }
    done = await complete(hub, "SO-1", reason="缺货 out of stock")
    assert (done["state"], done["shortfall"], done["backorder"]) == (
        "short_shipped",
        {"TEA": 2, "WINE": 1},
        "SO-1-BO1",
    )
    backorder = await hub.api("GET", "/api/v1/orders/SO-1-BO1")
    assert (backorder["state"], backorder["backorder_of"]) == ("open", "SO-1")
    assert [(x["sku"], x["quantity"]) for x in backorder["lines"]] == [("TEA", 2), ("WINE", 1)]
    assert (await hub.api("GET", "/api/v1/orders/SO-1"))["short_reason"] == "缺货 out of stock"


async def test_nothing_scanned_cannot_complete(plant: Any) -> None:
    hub = plant
    await new_order(hub, TEA=1)
    answer = await complete(hub, "SO-1", reason="nothing there", status=422)
    assert answer == {"error": "Order 'SO-1' has no accepted scans to ship"}


# Receiving, inspection, un-ship, scope ------------------------------------------------------


async def test_dealer_receiving(plant: Any) -> None:
    hub = plant
    await new_order(hub, TEA=3)
    case, inner = await packed_case(hub, "TEA", 2)
    (loose,) = await hub.commissioned("TEA", 1)
    (stranger,) = await hub.commissioned("TEA", 1)
    await scan(hub, "SO-1", case, loose)
    await complete(hub, "SO-1")
    body = {"id": str(uuid.uuid4()), "codes": [case, stranger, "junk"]}
    got = await hub.api("POST", "/api/v1/pda/orders/SO-1/receipts", body, headers=ADMIN)
    assert got["received"] == [serial(case)]
    assert (got["missing"], got["missing_count"]) == ([serial(loose)], 1)
    assert [u["code"] for u in got["unexpected"]] == ["junk", serial(stranger)]
    assert got["unexpected"][1]["reason"] == "not in this order: is commissioned, not shipped"
    assert [(await hub.code(u)).state for u in inner] == ["received", "received"]
    assert (await hub.code(loose)).state == "shipped"


async def login(hub: Any, username: str, role: str, **scope: str) -> dict[str, str]:
    body = {"username": username, "password": "correct horse battery", "role": role, **scope}
    await hub.api("POST", "/api/v1/users", body, status=201)
    answer = await hub.api(
        "POST",
        "/api/v1/login",
        {"username": username, "password": "correct horse battery"},
        headers={},
    )
    return {"Authorization": f"Bearer {answer['token']}"}


async def test_a_dealer_sees_only_its_own_orders(plant: Any) -> None:
    hub = plant
    await hub.add_dealer("D2", region="Jiangsu")
    await new_order(hub, "SO-1", TEA=1)
    await hub.api(
        "POST",
        "/api/v1/orders",
        {"orders": [{"number": "SO-2", "dealer": "D2", "lines": [{"sku": "TEA", "quantity": 1}]}]},
        status=201,
    )
    d2 = await login(hub, "dora", "dealer", dealer="D2")
    assert [
        o["number"] for o in (await hub.api("GET", "/api/v1/orders", headers=d2))["orders"]
    ] == ["SO-2"]
    assert (await hub.api("GET", "/api/v1/orders/SO-2", headers=d2))["dealer"] == "D2"
    for path in ("/api/v1/orders/SO-1",):
        assert await hub.api("GET", path, headers=d2, status=404) == {
            "error": "Unknown order 'SO-1'"
        }
    receipt = {"id": str(uuid.uuid4()), "codes": ["x"]}
    assert await hub.api(
        "POST", "/api/v1/pda/orders/SO-1/receipts", receipt, headers=d2, status=404
    ) == {"error": "Unknown order 'SO-1'"}
    # A warehouse user logs in and gets a token for the PDA API.
    wh = await login(hub, "wang", "warehouse")
    assert [
        o["number"] for o in (await hub.api("GET", "/api/v1/pda/orders", headers=wh))["orders"]
    ] == [
        "SO-1",
        "SO-2",
    ]


async def test_inspector_lookup_flags_diversion(plant: Any) -> None:
    hub = plant
    await new_order(hub, TEA=1)
    (code,) = await hub.commissioned("TEA", 1)
    await scan(hub, "SO-1", code)
    await complete(hub, "SO-1")
    here = await hub.api(
        "GET", f"/api/v1/pda/lookup?code={serial(code)}&region=Zhejiang", headers=INSPECTOR
    )
    assert (here["order"], here["dealer"], here["shipped_region"], here["diverted"]) == (
        "SO-1",
        "D1",
        "Zhejiang",
        False,
    )
    away = await hub.api(
        "GET", f"/api/v1/pda/lookup?code={serial(code)}&region=Guangdong", headers=INSPECTOR
    )
    assert away["diverted"] is True
    assert away["reason"] == "窜货 diverted: shipped to Zhejiang, found in Guangdong"
    events = await hub.count(Event, Event.type == "inspecting")
    assert events == 2
    assert (await hub.code(code)).state == "shipped"
    unknown = await hub.api("GET", "/api/v1/pda/lookup?code=hello", headers=INSPECTOR)
    assert (unknown["found"], unknown["diverted"]) == (False, False)


async def test_unship_within_the_grace_period(plant: Any) -> None:
    hub = plant
    await new_order(hub, TEA=3)
    case, inner = await packed_case(hub, "TEA", 2)
    (loose,) = await hub.commissioned("TEA", 1)
    await scan(hub, "SO-1", case, loose)
    await complete(hub, "SO-1")
    forbidden = await hub.api(
        "POST", "/api/v1/orders/SO-1/unship", {"reason": "x"}, headers=WH, status=403
    )
    assert "may not call" in forbidden["error"]
    back = await hub.api("POST", "/api/v1/orders/SO-1/unship", {"reason": "wrong truck"})
    assert back == {"order": "SO-1", "state": "open", "returned": 4}
    states = [(await hub.code(u)).state for u in [case, *inner, loose]]
    assert states == ["commissioned", "packed", "packed", "commissioned"]
    assert (await hub.code(loose)).order_id is None
    event = await hub.scalar(select(Event).where(Event.type == "unshipping"))
    assert (event.reason, event.source) == ("wrong truck", "token:" + event.source[6:])
    entry = await hub.scalar(select(AuditEntry).where(AuditEntry.action == "unship"))
    assert (entry.target, entry.outcome, entry.details["reason"]) == (
        "order:SO-1",
        "ok",
        "wrong truck",
    )
    # The order can be scanned and shipped again.
    assert results(await scan(hub, "SO-1", case, loose)) == ["ok", "ok"]
    await complete(hub, "SO-1")
    async with hub.sessions() as session, session.begin():
        await session.execute(
            update(Order)
            .where(Order.number == "SO-1")
            .values(shipped_at=datetime.now(UTC) - timedelta(hours=25))
        )
    late = await hub.api("POST", "/api/v1/orders/SO-1/unship", {"reason": "late"}, status=409)
    assert "grace period of 24 h is over" in late["error"]
    assert (await hub.code(loose)).state == "shipped"
    assert await hub.count(Code, Code.state == "shipped") == 4


async def test_a_code_the_download_lacks_is_looked_up(plant: Any) -> None:
    hub = plant
    await new_order(hub, TEA=1)
    (wine,) = await hub.commissioned("WINE", 1)
    (never_read,) = await hub.urls("TEA", 1)
    path = "/api/v1/pda/orders/SO-1/codes?code="
    found = await hub.api("GET", path + serial(wine), headers=WH)
    assert (found["known"], found["sku"], found["status"], found["kind"]) == (
        True,
        "WINE",
        "available",
        "item",
    )
    assert (await hub.api("GET", path + never_read, headers=WH))["status"] == "not_commissioned"
    assert await hub.api("GET", path + "hello", headers=WH) == {
        "known": False,
        "serial": None,
        "kind": None,
        "sku": None,
        "status": None,
        "contents": [],
        "items": {},
        "detail": None,
    }

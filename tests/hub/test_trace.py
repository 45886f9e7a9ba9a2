"""Trace (item → case → pallet → order → dealer; lots, materials, multi-code) and recall,
with the dealer scope: another dealer's code is not found."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import select

from hub.models import Code, Event

PASSWORD = "correct horse battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def serial(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


async def user_token(hub: Any, username: str, role: str, **scope: Any) -> dict[str, str]:
    body = {"username": username, "password": PASSWORD, "role": role, **scope}
    await hub.api("POST", "/api/v1/users", body, status=201)
    answer = await hub.api(
        "POST", "/api/v1/login", {"username": username, "password": PASSWORD}, headers={}
    )
    return bearer(answer["token"])


async def scenario(hub: Any) -> dict[str, Any]:
    """Lot LOT-1 of TEA: 4 items, two packed in a case, the case on a pallet; the pallet
    ships to D1 (order SO-1), one loose item to D2 (order SO-2), one item stays home.
    Lot LOT-2: 1 item shipped to D2. Lot LOT-1 is registered with a material."""
    await hub.add_dealer("D2", region="Jiangsu")
    await hub.api(
        "POST",
        "/api/v1/lots",
        {
            "sku": "TEA",
            "lot_no": "LOT-1",
            "factory": "Hangzhou",
            "materials": [
                {"material": "tea leaves", "supplier": "Longjing Co", "supplier_lot": "LJ-7"}
            ],
        },
        status=201,
    )
    items = await hub.urls("TEA", 4)
    (case,) = await hub.urls("TEA", 1, "case")
    (pallet,) = await hub.urls("TEA", 1, "pallet")
    other = (await hub.urls("TEA", 1))[0]
    station = hub.station
    ack = await station.send(*(station.commission(u) for u in items))
    assert ack.rejected == ()
    ack = await station.send(station.commission(other, lot="LOT-2"))
    assert ack.rejected == ()
    ack = await station.send(station.aggregate(case, items[:2]))
    assert ack.rejected == ()
    ack = await station.send(station.aggregate(pallet, [case]))
    assert ack.rejected == ()
    shipped = await hub.ship([pallet], order="SO-1", dealer="D1")
    assert shipped["refused"] == []
    shipped = await hub.ship([items[2], other], order="SO-2", dealer="D2")
    assert shipped["refused"] == []
    # Who shipped: the warehouse token's role and fingerprint, never the token.
    sources = {r[0] for r in await hub.rows(select(Event.source).where(Event.type == "shipping"))}
    assert len(sources) == 1 and sources.pop().startswith("api:warehouse/token:")
    return {"items": items, "case": case, "pallet": pallet, "other": other}


async def test_a_code_traces_to_its_case_pallet_order_and_dealer(sqlite_plant: Any) -> None:
    hub = sqlite_plant
    s = await scenario(hub)
    got = await hub.api("GET", f"/api/v1/trace/code?code={serial(s['items'][0])}")
    assert [(c["serial"], c["kind"]) for c in got["containers"]] == [
        (serial(s["case"]), "case"),
        (serial(s["pallet"]), "pallet"),
    ]
    assert got["state"] == "shipped" and got["lot"] == "LOT-1" and got["work_order"] == "WO-1"
    assert got["order"]["number"] == "SO-1" and got["dealer"] == {"code": "D1", "name": "Dealer D1"}
    assert got["station"] == "st-1" and got["line"] == "L1" and got["product"]["sku"] == "TEA"
    case = await hub.api("GET", f"/api/v1/trace/code?code={serial(s['case'])}")
    assert case["contents"] == 2 and case["kind"] == "case"
    # Unknown and forged codes are 404 with a reason.
    forged = await hub.api("GET", "/api/v1/trace/code?code=ZZZZZZZZZZZZZZZZZZZZ", status=404)
    assert "not a code of this brand" in forged["error"]


async def test_multi_code_query_answers_each_code_in_order(sqlite_plant: Any) -> None:
    hub = sqlite_plant
    s = await scenario(hub)
    text = f" {s['items'][3]} ;;garbage; {serial(s['other'])}\n"
    got = await hub.api("POST", "/api/v1/trace/codes", {"codes": text})
    assert got["found"] == 2
    first, second, third = got["results"]
    assert first["serial"] == serial(s["items"][3]) and first["state"] == "commissioned"
    assert first["order"] is None and first["dealer"] is None
    assert second["query"] == "garbage" and "not a code of this brand" in second["error"]
    assert third["dealer"]["code"] == "D2" and third["lot"] == "LOT-2"
    too_many = ";".join(["x"] * 1001)
    refused = await hub.api("POST", "/api/v1/trace/codes", {"codes": too_many}, status=422)
    assert refused["error"] == "1001 codes given: expected at most 1000"
    await hub.api("POST", "/api/v1/trace/codes", {"codes": " ; "}, status=422)


async def test_a_dealer_sees_only_its_own_codes(hub: Any, station_factory: Any) -> None:
    from tests.hub.conftest import furnish

    await furnish(hub, station_factory)
    s = await scenario(hub)
    d1 = await user_token(hub, "dealer1", "dealer", dealer="D1")
    d2 = await user_token(hub, "dealer2", "dealer", dealer="D2")
    mine = serial(s["items"][0])
    theirs = serial(s["items"][2])
    got = await hub.api("GET", f"/api/v1/trace/code?code={mine}", headers=d1)
    assert got["dealer"]["code"] == "D1"
    denied = await hub.api("GET", f"/api/v1/trace/code?code={theirs}", headers=d1, status=404)
    assert denied["error"] == f"Not found: no code {theirs} found"
    # Exactly what a code that does not exist at all gets.
    home = serial(s["items"][3])  # never shipped: no dealer's
    assert (await hub.api("GET", f"/api/v1/trace/code?code={home}", headers=d2, status=404))[
        "error"
    ] == f"Not found: no code {home} found"
    many = await hub.api("POST", "/api/v1/trace/codes", {"codes": f"{mine};{theirs}"}, headers=d2)
    assert [r.get("serial") for r in many["results"]] == [None, theirs]
    # Lots and recalls are not for dealers at all.
    await hub.api("GET", "/api/v1/trace/lots/TEA/LOT-1", headers=d1, status=403)
    await hub.api("GET", "/api/v1/recalls", headers=d1, status=403)


async def test_a_lot_shows_materials_states_and_destinations(sqlite_plant: Any) -> None:
    hub = sqlite_plant
    s = await scenario(hub)
    got = await hub.api("GET", "/api/v1/trace/lots/TEA/LOT-1")
    assert got["details"]["factory"] == "Hangzhou"
    assert got["materials"] == [
        {
            "material": "tea leaves",
            "supplier": "Longjing Co",
            "supplier_lot": "LJ-7",
            "quantity": None,
        }
    ]
    assert got["states"] == {"commissioned": 1, "shipped": 3}
    assert [(d["dealer"], d["order"], d["codes"]) for d in got["destinations"]] == [
        ("D1", "SO-1", 2),
        ("D2", "SO-2", 1),
    ]
    text = await hub.api("GET", "/api/v1/trace/lots/TEA/LOT-1/items")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["serial"] for r in rows} == {serial(u) for u in s["items"]}
    packed = {r["serial"]: r["container"] for r in rows}
    assert packed[serial(s["items"][0])] == serial(s["case"])
    assert {r["dealer"] for r in rows} == {"D1", "D2", ""}
    await hub.api("GET", "/api/v1/trace/lots/TEA/NOPE", status=404)
    await hub.api("GET", "/api/v1/trace/lots/NOPE/LOT-1/items", status=404)
    material = await hub.api("GET", "/api/v1/trace/materials?supplier_lot=LJ-7")
    assert material["lots"] == [{"sku": "TEA", "lot": "LOT-1"}]
    assert len(material["destinations"]) == 2
    await hub.api("GET", "/api/v1/trace/materials?supplier_lot=LJ-7&supplier=Other", status=404)


async def test_recall_by_lot_moves_codes_through_the_gate_and_lists_contacts(
    sqlite_plant: Any,
) -> None:
    hub = sqlite_plant
    s = await scenario(hub)
    out = await hub.api(
        "POST",
        "/api/v1/recalls",
        {"reason": "contaminated leaves", "lot": {"sku": "TEA", "lot": "LOT-1"}},
        status=201,
    )
    assert out["moved"] == 4 and out["refused"] == {}
    assert out["lots"] == [{"sku": "TEA", "lot": "LOT-1"}] and out["actor"].startswith("token:")
    states = {c.serial: c.state for c in await hub.rows(select(Code.serial, Code.state))}
    assert {states[serial(u)] for u in s["items"]} == {"recalled"}
    assert states[serial(s["other"])] == "shipped"  # another lot: untouched
    # The consumer is told.
    verdict = await hub.verify(s["items"][2])
    assert verdict["verdict"] == "recalled"
    # The recall is an event with who and why; a second recall moves nothing and says why.
    event = await hub.scalar(select(Event).where(Event.type == "recalling"))
    assert event.payload["moved"] == 4 and event.source.startswith("api:admin/token:")
    again = await hub.api(
        "POST",
        "/api/v1/recalls",
        {"reason": "again", "lot": {"sku": "TEA", "lot": "LOT-1"}},
        status=201,
    )
    assert again["moved"] == 0
    assert again["refused"] == {"recalling refused: already recalled": 4}
    contacts = await hub.api("GET", f"/api/v1/recalls/{out['id']}/contacts")
    rows = list(csv.DictReader(io.StringIO(contacts)))
    assert [(r["dealer"], r["order"], r["codes"]) for r in rows] == [
        ("D1", "SO-1", "2"),
        ("D2", "SO-2", "1"),
    ]
    listed = await hub.api("GET", "/api/v1/recalls")
    assert [r["id"] for r in listed["recalls"]] == [again["id"], out["id"]]
    await hub.api("GET", "/api/v1/recalls/999/contacts", status=404)


async def test_recall_by_material_lot_and_bad_requests(sqlite_plant: Any) -> None:
    hub = sqlite_plant
    s = await scenario(hub)
    out = await hub.api(
        "POST",
        "/api/v1/recalls",
        {"reason": "supplier recall", "material": {"supplier_lot": "LJ-7"}},
        status=201,
    )
    assert out["moved"] == 4 and out["selection"] == {
        "material": {"supplier_lot": "LJ-7", "supplier": None}
    }
    assert (await hub.code(s["other"])).state == "shipped"
    both = {
        "reason": "x",
        "lot": {"sku": "TEA", "lot": "LOT-1"},
        "material": {"supplier_lot": "LJ-7"},
    }
    answer = await hub.api("POST", "/api/v1/recalls", both, status=422)
    assert "exactly one of 'lot' and 'material'" in answer["error"]
    answer = await hub.api("POST", "/api/v1/recalls", {"reason": "x"}, status=422)
    assert "exactly one of 'lot' and 'material'" in answer["error"]
    await hub.api(
        "POST",
        "/api/v1/recalls",
        {"reason": "x", "material": {"supplier_lot": "NOPE"}},
        status=404,
    )


async def test_cli_trace_prints_the_chain(sqlite_plant: Any, monkeypatch: Any, capsys: Any) -> None:
    import asyncio
    import json

    from hub.cli import main as cli_main

    hub = sqlite_plant
    s = await scenario(hub)
    keys = {str(k): v for k, v in hub.settings.code_keys.items()}
    monkeypatch.setenv("YIMA_HUB_CODE_KEYS", json.dumps(keys))
    common = ["--database-url", hub.settings.database_url]
    code = await asyncio.to_thread(cli_main, ["trace", serial(s["items"][0]), *common])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith(f"item {serial(s['items'][0])}  [shipped]  TEA")
    assert f"  in case {serial(s['case'])} [shipped]" in lines
    assert f"  in pallet {serial(s['pallet'])} [shipped]" in lines
    (order_line,) = [line for line in lines if line.startswith("  order ")]
    assert order_line.startswith("  order SO-1 [") and order_line.endswith("], region Zhejiang")
    code = await asyncio.to_thread(cli_main, ["trace", f"{serial(s['other'])};NOPE", *common])
    out = capsys.readouterr().out
    assert code == 1 and "NOPE: not a code of this brand" in out and "dealer D2" in out
    code = await asyncio.to_thread(cli_main, ["trace", "--lot", "TEA", "LOT-1", *common])
    out = capsys.readouterr().out
    assert code == 0
    assert "  material tea leaves from Longjing Co, supplier lot LJ-7" in out
    assert "  → dealer D1 Dealer D1, order SO-1 (Zhejiang): 2 codes" in out


async def test_cli_recall_and_audit(sqlite_plant: Any, capsys: Any) -> None:
    import asyncio

    from hub.cli import main as cli_main

    hub = sqlite_plant
    s = await scenario(hub)
    common = ["--database-url", hub.settings.database_url]
    code = await asyncio.to_thread(
        cli_main, ["recall", "--supplier-lot", "LJ-7", "--reason", "supplier recall", *common]
    )
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("recall 1: 4 codes recalled (TEA LOT-1)"), out
    assert (await hub.code(s["items"][0])).state == "recalled"
    code = await asyncio.to_thread(
        cli_main, ["recall", "--lot", "TEA", "LOT-1", "--reason", "again", *common]
    )
    out = capsys.readouterr().out
    assert "  4 left alone: recalling refused: already recalled" in out
    code = await asyncio.to_thread(cli_main, ["recall", "--reason", "x", *common])
    assert code == 2 and "Give --lot SKU LOT or --supplier-lot" in capsys.readouterr().err
    code = await asyncio.to_thread(cli_main, ["audit", "list", "--limit", "3", *common])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and len(lines) == 3
    assert "\tPOST /api/v1/shipments\t/api/v1/shipments\t200\t127.0.0.1" in lines[0]
    code = await asyncio.to_thread(cli_main, ["audit", "cleanup", *common])
    assert code == 0
    assert capsys.readouterr().out == "0 audit entries older than 365 days deleted\n"

"""Master data through the admin API: products, lots with materials and inspection report,
dealers with authorised regions, warehouses, stores, and CSV/XLSX imports (all or nothing,
with a report of every problem by row and column)."""

from __future__ import annotations

import io
from typing import Any

import pytest
import xlsxwriter

from hub import registry
from hub.models import Dealer, DealerRegion, Product

ADMIN = {"Authorization": "Bearer admin-token"}  # the token tests/hub/conftest.py configures
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def test_product_with_all_fields(hub: Any) -> None:
    body = {
        "sku": "TEA-500",
        "name": "龙井茶",
        "name_en": "Longjing tea",
        "gtin": "6901234567892",
        "spec": "500g x 12",
        "image_url": "https://img.example.cn/tea.png",
        "attributes": {"产地": "杭州", "grade": "A"},
    }
    out = await hub.api("POST", "/api/v1/products", body, status=201)
    assert out == {**body, "gtin": "06901234567892"}
    assert await hub.api("GET", "/api/v1/products/TEA-500") == out
    listed = await hub.api("GET", "/api/v1/products?limit=10")
    assert listed["total"] == 1 and listed["items"] == [out]
    await hub.api("GET", "/api/v1/products/NOPE", status=404)


async def test_lot_with_materials_and_report(hub: Any) -> None:
    await hub.add_product("TEA")
    lot = await hub.api(
        "POST",
        "/api/v1/lots",
        {
            "sku": "TEA",
            "lot_no": "L20261125",
            "produced_on": "2026-11-25",
            "expires_on": "2028-11-24",
            "factory": "杭州一厂",
            "workshop": "W2",
            "line": "L1",
            "shift": "night",
            "operator": "张三",
            "materials": [
                {"material": "茶叶", "supplier": "梅家坞合作社", "supplier_lot": "MJW-77"},
                {
                    "material": "铁罐",
                    "supplier": "Can Co",
                    "supplier_lot": "C-1",
                    "quantity": "12k",
                },
            ],
        },
        status=201,
    )
    assert lot["produced_on"] == "2026-11-25" and lot["inspection_report"] is None
    assert [m["supplier_lot"] for m in lot["materials"]] == ["MJW-77", "C-1"]
    response = await hub.client.put(
        f"/api/v1/lots/{lot['id']}/report?filename=qc.pdf",
        data=PDF,
        headers={**ADMIN, "Content-Type": "application/pdf"},
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["size"] == len(PDF)
    got = await hub.client.get(f"/api/v1/lots/{lot['id']}/report", headers=ADMIN)
    assert got.status == 200 and await got.read() == PDF
    assert got.content_type == "application/pdf"
    again = await hub.api("GET", f"/api/v1/lots/{lot['id']}")
    assert again["inspection_report"] == f"/api/v1/lots/{lot['id']}/report"
    listed = await hub.api("GET", "/api/v1/lots?sku=TEA")
    assert [x["lot_no"] for x in listed["items"]] == ["L20261125"]


async def test_lot_refusals(hub: Any) -> None:
    await hub.add_product("TEA")
    base = {"sku": "TEA", "lot_no": "L1"}
    bad = {**base, "produced_on": "2026-11-25", "expires_on": "2026-11-24"}
    out = await hub.api("POST", "/api/v1/lots", bad, status=422)
    assert "expires on 2026-11-24, before it was produced (2026-11-25)" in out["error"]
    await hub.api("POST", "/api/v1/lots", base, status=201)
    await hub.api("POST", "/api/v1/lots", base, status=409)
    await hub.api("POST", "/api/v1/lots", {**base, "sku": "NOPE"}, status=404)
    await hub.api("GET", "/api/v1/lots/999/report", status=404)
    response = await hub.client.put(
        "/api/v1/lots/1/report", data=b"MZ\x90", headers={**ADMIN, "Content-Type": "text/x"}
    )
    assert response.status == 422
    assert "expected one of application/pdf" in (await response.json())["error"]


async def test_dealer_authorised_regions(hub: Any) -> None:
    out = await hub.api(
        "POST",
        "/api/v1/dealers",
        {
            "code": "D-ZJ",
            "name": "浙江经销商",
            "region": "Zhejiang",
            "authorised_regions": ["33", "320500000000", "330000"],
            "phone": "0571-0000",
        },
        status=201,
    )
    assert out["authorised_regions"] == ["320500", "330000"]
    async with hub.sessions() as session:
        dealer = await registry.dealer_by_code(session, "D-ZJ")
        assert await registry.is_authorised(session, dealer.id, "330106")  # 杭州 西湖区
        assert await registry.is_authorised(session, dealer.id, "320505")  # 苏州 虎丘区
        assert not await registry.is_authorised(session, dealer.id, "320100")  # 南京
    bad = await hub.api(
        "POST",
        "/api/v1/dealers",
        {"code": "D2", "name": "x", "region": "r", "authorised_regions": ["449999"]},
        status=422,
    )
    assert "Unknown division code '449999'" in bad["error"]
    listed = await hub.api("GET", "/api/v1/dealers")
    assert [d["code"] for d in listed["items"]] == ["D-ZJ"]


async def test_warehouses_and_stores(hub: Any) -> None:
    await hub.add_dealer("D1")
    w = {"code": "WH1", "name": "杭州仓", "region_code": "330100", "address": "滨江区 1 号"}
    assert await hub.api("POST", "/api/v1/warehouses", w, status=201) == w
    s = {"code": "S1", "name": "西湖店", "dealer": "D1", "region_code": "330106", "address": None}
    assert await hub.api("POST", "/api/v1/stores", s, status=201) == s
    await hub.api("POST", "/api/v1/stores", {**s, "code": "S2", "dealer": "NOPE"}, status=404)
    await hub.api("POST", "/api/v1/warehouses", {**w, "region_code": "33x"}, status=422)
    await hub.api("POST", "/api/v1/warehouses", w, status=409)
    assert (await hub.api("GET", "/api/v1/stores"))["items"] == [s]
    assert (await hub.api("GET", "/api/v1/warehouses"))["total"] == 1


async def test_regions_endpoint(sqlite_hub: Any) -> None:
    provinces = await sqlite_hub.api("GET", "/api/v1/regions")
    assert len(provinces["items"]) == 34
    sz = await sqlite_hub.api("GET", "/api/v1/regions/440300")
    assert sz["items"][0]["full_name"] == "广东省 深圳市"
    assert "南山区" in {r["name"] for r in sz["items"][1:]}
    await sqlite_hub.api("GET", "/api/v1/regions/449999", status=404)
    await sqlite_hub.api("GET", "/api/v1/regions/abc", status=422)


# Imports ----------------------------------------------------------------------------------


async def post_file(hub: Any, path: str, data: bytes, fmt: str = "csv") -> dict[str, Any]:
    response = await hub.client.post(
        f"{path}?format={fmt}",
        data=data,
        headers={**ADMIN, "Content-Type": "application/octet-stream"},
    )
    assert response.status == 200, await response.text()
    return dict(await response.json())


def xlsx(rows: list[list[Any]]) -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    sheet = book.add_worksheet()
    for r, row in enumerate(rows):
        sheet.write_row(r, 0, row)
    book.close()
    return out.getvalue()


async def test_import_products_csv_gb18030(hub: Any) -> None:
    text = (
        "sku,name,name_en,gtin,spec,attr:产地\n"
        "A1,龙井,Longjing,6901234567892,500g,杭州\n"
        "A2,红茶,,,,\n"
    )
    report = await post_file(hub, "/api/v1/products/import", text.encode("gb18030"))
    assert report == {"imported": 2, "problems": []}
    out = await hub.api("GET", "/api/v1/products/A1")
    assert out["name"] == "龙井" and out["attributes"] == {"产地": "杭州"}
    assert out["gtin"] == "06901234567892"


async def test_import_products_xlsx_with_numeric_gtin(hub: Any) -> None:
    data = xlsx([["SKU", "Name", "GTIN"], ["X1", "茶", 6901234567892], ["X2", "酒", None]])
    assert (await post_file(hub, "/api/v1/products/import", data, "xlsx"))["imported"] == 2
    assert (await hub.api("GET", "/api/v1/products/X1"))["gtin"] == "06901234567892"


async def test_import_reports_every_problem_and_imports_nothing(hub: Any) -> None:
    await hub.add_product("OLD")
    text = (
        "sku,name,gtin,colour\n"
        "N1,好,6901234567892,red\n"
        "OLD,dup of db,,\n"
        "N1,dup in file,,\n"
        ",no sku,6901234567890,\n"
        "N3," + "x" * 201 + ",06901234567892,\n"
    )
    report = await post_file(hub, "/api/v1/products/import", text.encode())
    assert report["imported"] == 0
    problems = {(p["row"], p["column"]) for p in report["problems"]}
    assert problems == {
        (1, "colour"),  # unknown column
        (3, "sku"),  # exists in the database
        (4, "sku"),  # twice in the file
        (5, "sku"),  # empty
        (5, "gtin"),  # bad check digit
        (6, "name"),  # too long
        (6, "gtin"),  # same GTIN as row 2
    }
    by_cell = {(p["row"], p["column"]): p["problem"] for p in report["problems"]}
    assert by_cell[(4, "sku")] == "'N1' also on row 2"
    assert by_cell[(3, "sku")] == "product 'OLD' already exists"
    assert by_cell[(6, "name")] == "201 characters: expected 1-200"
    async with hub.sessions() as session:
        assert await registry.count_rows(session, Product) == 1  # only OLD


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        (b"", "csv", "Empty file"),
        (b"\x00\x01garbage", "xlsx", "Not a readable XLSX file"),
        (b"PK\x03\x04junk", "csv", "expected CSV text"),
    ],
)
async def test_unreadable_files_are_422(
    sqlite_hub: Any, data: bytes, fmt: str, message: str
) -> None:
    response = await sqlite_hub.client.post(
        f"/api/v1/products/import?format={fmt}", data=data, headers=ADMIN
    )
    assert response.status == 422
    assert message in (await response.json())["error"]


async def test_import_dealers(hub: Any) -> None:
    text = (
        "code,name,region,authorised_regions,phone\n"
        "D1,杭州经销,Zhejiang,330100;330200,123\n"
        "D2,苏州经销,Jiangsu,320599,\n"
    )
    report = await post_file(hub, "/api/v1/dealers/import", text.encode())
    assert report["imported"] == 0
    assert [(p["row"], p["column"]) for p in report["problems"]] == [(3, "authorised_regions")]
    assert "Unknown division code '320599'" in report["problems"][0]["problem"]
    fixed = text.replace("320599", "320500")
    assert (await post_file(hub, "/api/v1/dealers/import", fixed.encode()))["imported"] == 2
    async with hub.sessions() as session:
        assert await registry.count_rows(session, Dealer) == 2
        assert await registry.count_rows(session, DealerRegion) == 3

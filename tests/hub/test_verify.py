"""Consumer verification: the printed URL, as JSON and as the zh / en page."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from hub.models import ScanLog
from hub.web.pages import TEXT
from protocols.codes import CodeKey, CodeKind, parse_code

GTIN = "09506000134352"
OTHER_GTIN = "04006381333931"


def serial_of(url: str) -> str:
    return parse_code(url).serial.value


def path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


async def shipped(hub: Any, sku: str = "WINE", count: int = 1) -> list[str]:
    urls = await hub.commissioned(sku, count)
    await hub.ship(urls)
    return list(urls)


async def scans(hub: Any) -> list[Any]:
    return await hub.rows(
        select(
            ScanLog.raw, ScanLog.serial, ScanLog.code_id, ScanLog.verdict, ScanLog.reason
        ).order_by(ScanLog.id)
    )


async def test_genuine(plant: Any) -> None:
    hub = plant
    url = (await shipped(hub))[0]
    body = await hub.verify(url)
    code = await hub.code(url)
    assert body == {
        "verdict": "genuine",
        "reason": "activated",
        "serial": serial_of(url),
        "state": "shipped",
        "kind": "item",
        "product": {"sku": "WINE", "name": "Product WINE", "gtin": GTIN},
        "lot": "LOT-1",
        "produced_at": body["produced_at"],
        "line": "L1",
        "site": "Plant A",
        "activated_at": body["activated_at"],
        "region": "Zhejiang",
        "first_scan_at": body["first_scan_at"],
        "scan_count": 1,
    }
    for name in ("produced_at", "activated_at", "first_scan_at"):
        assert datetime.fromisoformat(body[name]).utcoffset() is not None
    assert code.scan_count == 1
    assert await scans(hub) == [(url, serial_of(url), code.id, "genuine", "activated")]


async def test_short_url_of_a_product_without_gtin(plant: Any) -> None:
    url = (await shipped(plant, "TEA"))[0]
    assert "/c/" in url
    body = await plant.verify(url)
    assert (body["verdict"], body["product"]["gtin"]) == ("genuine", None)


@pytest.mark.parametrize(
    ("commission", "reason"),
    [(False, "code is generated, not shipped"), (True, "code is commissioned, not shipped")],
)
async def test_not_activated(plant: Any, commission: bool, reason: str) -> None:
    hub = plant
    url = (await (hub.commissioned("TEA", 1) if commission else hub.urls("TEA", 1)))[0]
    for count in (1, 2, 10):
        while (await hub.code(url)).scan_count < count - 1:
            await hub.verify(url)
        body = await hub.verify(url)
        assert (body["verdict"], body["reason"], body["scan_count"]) == (
            "not_activated",
            reason,
            count,
        )
    assert body["activated_at"] is None
    assert {row.verdict for row in await scans(hub)} == {"not_activated"}


def unknown_cases(hub: Any, wine: str) -> list[tuple[str, dict[str, Any]]]:
    base = hub.runtime.public_base
    forged = CodeKey(0, secrets.token_bytes(32)).seal(CodeKind.ITEM, 0).value
    other_key = CodeKey(6, secrets.token_bytes(32)).seal(CodeKind.ITEM, 0).value
    unissued = hub.keyring.active.seal(CodeKind.ITEM, 777_777).value
    wine_serial = serial_of(wine)
    return [
        (f"{base}/c/{forged}", {"reason": "not issued by this brand", "serial": forged}),
        (f"{base}/c/{other_key}", {"reason": "not issued by this brand", "serial": other_key}),
        (
            f"{base}/c/{unissued}",
            {"reason": "well formed but not in the code database", "serial": unissued},
        ),
        (
            f"{base}/c/hello",
            {
                "reason": "malformed code: Invalid serial 'hello': expected 20 symbols "
                "(or 21 with a check symbol), got 5"
            },
        ),
        (
            f"{base}/01/{OTHER_GTIN}/21/{wine_serial}",
            {
                "reason": "the GTIN on the label does not match this code's product",
                "serial": wine_serial,
            },
        ),
        (
            f"{base}/01/{GTIN}/21/{unissued}",
            {"reason": "well formed but not in the code database", "serial": unissued},
        ),
    ]


async def test_unknown(plant: Any) -> None:
    hub = plant
    wine = (await shipped(hub))[0]
    cases = unknown_cases(hub, wine)
    for url, expected in cases:
        assert await hub.verify(url) == {"verdict": "unknown", **expected}, url
    # None of them counted as a scan of a real code, the mislabelled genuine one included.
    assert (await hub.code(wine)).scan_count == 0
    assert (await hub.code(wine)).first_scan_at is None
    assert await scans(hub) == [
        (url, expected.get("serial"), None, "unknown", expected["reason"])
        for url, expected in cases
    ]


async def test_suspicious_after_threshold_scans(plant: Any) -> None:
    hub = plant
    url = (await shipped(hub))[0]
    threshold = hub.settings.suspicious_scan_threshold
    bodies = [await hub.verify(url) for _ in range(threshold + 2)]
    assert [b["verdict"] for b in bodies] == ["genuine"] * threshold + ["suspicious"] * 2
    assert [b["scan_count"] for b in bodies] == list(range(1, threshold + 3))
    assert bodies[threshold]["reason"] == f"scanned {threshold + 1} times (more than {threshold})"
    assert {b["first_scan_at"] for b in bodies} == {bodies[0]["first_scan_at"]}
    code = await hub.code(url)
    assert code.scan_count == threshold + 2
    assert code.last_scan_at >= code.first_scan_at
    assert [row.verdict for row in await scans(hub)] == [b["verdict"] for b in bodies]


async def test_scan_log_keeps_client_and_user_agent(plant: Any) -> None:
    hub = plant
    url = (await shipped(hub))[0]
    await hub.verify(url, **{"User-Agent": "MicroMessenger/8.0"})
    row = await hub.scalar(select(ScanLog))
    assert (row.client, row.user_agent) == ("127.0.0.1", "MicroMessenger/8.0")


async def test_concurrent_scans_are_counted_exactly(plant: Any) -> None:
    hub = plant
    url = (await shipped(hub))[0]
    bodies = await asyncio.gather(*(hub.verify(url) for _ in range(20)))
    assert sorted(b["scan_count"] for b in bodies) == list(range(1, 21))
    assert (await hub.code(url)).scan_count == 20
    assert len(await scans(hub)) == 20


# The page -------------------------------------------------------------------------------------


async def page(hub: Any, url: str, query: str = "", **headers: str) -> str:
    response = await hub.client.get(path(url) + query, headers=headers)
    assert response.status == 200
    assert response.content_type == "text/html"
    return str(await response.text())


@pytest.mark.parametrize(
    ("query", "headers", "lang"),
    [
        ("", {}, "zh"),
        ("", {"Accept-Language": "zh-CN,zh;q=0.9"}, "zh"),
        ("", {"Accept-Language": "en-US,en;q=0.8"}, "en"),
        ("", {"Accept-Language": "fr-FR, en;q=0.5"}, "en"),
        ("", {"Accept-Language": "de"}, "zh"),
        ("?lang=en", {}, "en"),
        ("?lang=en", {"Accept-Language": "zh-CN"}, "en"),
        ("?lang=zh", {"Accept-Language": "en"}, "zh"),
        ("?lang=xx", {"Accept-Language": "en"}, "en"),
    ],
)
async def test_page_language(
    sqlite_plant: Any, query: str, headers: dict[str, str], lang: str
) -> None:
    hub = sqlite_plant
    url = (await shipped(hub))[0]
    text = await page(hub, url, query, **headers)
    t = TEXT[lang]
    other = TEXT["en" if lang == "zh" else "zh"]
    assert f'<html lang="{"zh-CN" if lang == "zh" else "en"}">' in text
    assert f"<h1>{t['genuine']}</h1>" in text
    assert t["genuine_note"] in text
    assert other["genuine"] not in text
    assert 'data-verdict="genuine"' in text
    assert serial_of(url) in text
    assert f"?lang={'en' if lang == 'zh' else 'zh'}" in text


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_page_shows_every_verdict(plant: Any, lang: str) -> None:
    hub = plant
    genuine = (await shipped(hub))[0]
    fresh = (await hub.urls("TEA", 1))[0]
    unknown = f"{hub.runtime.public_base}/c/hello"
    t = TEXT[lang]
    for url, verdict in ((genuine, "genuine"), (fresh, "not_activated"), (unknown, "unknown")):
        text = await page(hub, url, f"?lang={lang}")
        assert f"<h1>{t[verdict]}</h1>" in text, verdict
        assert t[f"{verdict}_note"] in text
    for _ in range(hub.settings.suspicious_scan_threshold):
        await hub.verify(genuine)
    text = await page(hub, genuine, f"?lang={lang}")
    assert f"<h1>{t['suspicious']}</h1>" in text
    assert (
        f"<dt>{t['scan_count']}</dt><dd>{hub.settings.suspicious_scan_threshold + 2}</dd>" in text
    )


async def test_page_shows_lot_and_times_as_written(plant: Any) -> None:
    hub = plant
    url = (await shipped(hub))[0]
    body = await hub.verify(url)
    text = await page(hub, url, "?lang=zh")
    produced = datetime.fromisoformat(body["produced_at"]).strftime("%Y-%m-%d %H:%M UTC")
    assert f"<dt>{TEXT['zh']['lot']}</dt><dd>LOT-1</dd>" in text
    assert f"<dt>{TEXT['zh']['produced_at']}</dt><dd>{produced}</dd>" in text


async def test_page_escapes_product_names(hub: Any) -> None:
    await hub.api(
        "POST", "/api/v1/products", {"sku": "X", "name": "<script>alert(1)</script>"}, status=201
    )
    url = (await hub.urls("X", 1))[0]
    text = await page(hub, url)
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


# Not found ------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/nope", "/c/", "/c/a/b", "/01/123", "/01/x/21/y/z"])
async def test_not_found(sqlite_hub: Any, target: str) -> None:
    hub = sqlite_hub
    response = await hub.client.get(target, headers={"Accept": "application/json"})
    assert response.status == 404
    assert await response.json() == {"error": f"No such page: {target}"}

    response = await hub.client.get(target)
    assert response.status == 404
    assert response.content_type == "text/html"
    text = await response.text()
    assert TEXT["zh"]["not_found"] in text
    assert TEXT["zh"]["not_found_note"] in text

    response = await hub.client.get(target, headers={"Accept-Language": "en"})
    assert TEXT["en"]["not_found"] in await response.text()
    assert await hub.count(ScanLog) == 0


async def test_method_not_allowed(sqlite_hub: Any) -> None:
    hub = sqlite_hub
    response = await hub.client.post("/c/hello", headers={"Accept": "application/json"})
    assert response.status == 405
    assert await response.json() == {"error": "Method POST not allowed: use GET"}


async def test_head_is_not_a_scan(plant: Any) -> None:
    """A link-preview bot's HEAD must not count as a consumer scan."""
    hub = plant
    url = (await shipped(hub))[0]
    response = await hub.client.head(path(url))
    assert response.status == 405
    assert (await hub.code(url)).scan_count == 0
    assert await scans(hub) == []

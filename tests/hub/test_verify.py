"""Consumer verification: the printed URL, as JSON and as the zh / en page."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from hub.models import Alert, ScanLog
from hub.web.pages import TEXT
from protocols.codes import CodeKey, CodeKind, parse_code

GTIN = "09506000134352"
OTHER_GTIN = "04006381333931"


@pytest.fixture
def hub_settings(database_url: str, broker_url: str, hub_settings_factory: Any) -> Any:
    """The test client is a trusted proxy: X-Forwarded-For names the consumer."""
    return hub_settings_factory(database_url, broker_url, trusted_proxies=["127.0.0.1/32"])


async def as_person(
    hub: Any, url: str, device: str, address: str, query: str = "", **headers: str
) -> dict[str, Any]:
    """Verify ``url`` as the person with this device cookie at this address (JSON)."""
    hub.client.session.cookie_jar.clear()
    response = await hub.client.get(
        path(url) + query,
        headers={
            "Accept": "application/json",
            "Cookie": f"yima_d={device}",
            "X-Forwarded-For": address,
            "User-Agent": "Mozilla/5.0 (iPhone) MicroMessenger/8.0",
            **headers,
        },
    )
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def alerts(hub: Any) -> list[tuple[str, str | None, int]]:
    rows = await hub.rows(select(Alert.kind, Alert.serial, Alert.count).order_by(Alert.id))
    return [tuple(r) for r in rows]


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
        "first_verified_at": body["first_scan_at"],
        "first_verified_region": None,
        "signals": [],
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
    for person in range(2, 4):
        await as_person(hub, genuine, f"d{person}", f"10.0.{person}.9")
    hub.client.session.cookie_jar.clear()
    text = await page(hub, genuine, f"?lang={lang}", **{"X-Forwarded-For": "10.0.9.9"})
    assert f"<h1>{t['suspicious']}</h1>" in text
    assert f"<dt>{t['scan_count']}</dt><dd>4</dd>" in text


async def test_page_shows_lot_and_times_as_written(plant: Any) -> None:
    hub = plant
    url = (await shipped(hub))[0]
    body = await hub.verify(url)
    text = await page(hub, url, "?lang=zh")
    shanghai = ZoneInfo("Asia/Shanghai")
    produced = datetime.fromisoformat(body["produced_at"]).astimezone(shanghai)
    produced = produced.strftime("%Y-%m-%d %H:%M")
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


# Copied-code signals and alerts ---------------------------------------------------------------


async def test_one_person_rescanning_is_never_suspicious(plant: Any) -> None:
    hub = plant
    url = (await shipped(hub))[0]
    bodies = [await as_person(hub, url, "phone1", "36.16.1.7") for _ in range(12)]
    # A new cookie on the same home network is the same person, too.
    bodies.append(await as_person(hub, url, "phone1new", "36.16.1.99"))
    assert [b["verdict"] for b in bodies] == ["genuine"] + ["genuine_rescanned"] * 12
    assert [b["scan_count"] for b in bodies] == list(range(1, 14))
    assert {b["first_verified_at"] for b in bodies} == {bodies[0]["first_scan_at"]}
    assert await alerts(hub) == []


async def test_three_people_make_a_copied_code_and_one_alert(plant: Any) -> None:
    hub = plant
    url = (await shipped(hub))[0]
    first = await as_person(hub, url, "buyer", "36.16.1.7")
    second = await as_person(hub, url, "friend", "120.1.2.3")
    third = await as_person(hub, url, "fake1", "61.2.3.4")
    fourth = await as_person(hub, url, "fake2", "59.5.6.7")
    assert [b["verdict"] for b in (first, second, third, fourth)] == [
        "genuine",
        "genuine",
        "suspicious",
        "suspicious",
    ]
    assert third["reason"] == "verified by 3 different people"
    assert third["signals"] == ["distinct_clients"]
    assert fourth["reason"] == "verified by 4 different people"
    # The first buyer coming back is told the truth too: the code has been copied.
    again = await as_person(hub, url, "buyer", "36.16.1.8")
    assert again["verdict"] == "suspicious"
    assert await alerts(hub) == [("distinct_clients", serial_of(url), 3)]
    alert = await hub.scalar(select(Alert))
    code = await hub.code(url)
    assert (alert.code_id, alert.dealer_id, alert.order_id) == (
        code.id,
        code.dealer_id,
        code.order_id,
    )
    assert alert.evidence["clients"] == 4
    assert alert.client == "61.2.3.0/24"  # who raised it first


async def test_scans_before_activation_never_count_against_the_buyer(plant: Any) -> None:
    hub = plant
    url = (await hub.commissioned("WINE", 1))[0]
    for n in range(6):  # warehouse staff, a griefer: many people before shipping
        body = await as_person(hub, url, f"g{n}", f"100.64.{n}.1")
        assert body["verdict"] == "not_activated"
    assert await alerts(hub) == [("not_activated_scan", serial_of(url), 6)]
    await hub.ship([url])
    body = await as_person(hub, url, "buyer", "36.16.1.7")
    assert (body["verdict"], body["scan_count"]) == ("genuine", 7)
    assert body["first_verified_at"] is not None
    assert body["first_verified_at"] >= body["activated_at"] >= body["first_scan_at"]


async def test_impossible_travel(plant: Any) -> None:
    hub = plant
    url = (await shipped(hub))[0]
    hangzhou = "?lat=30.27&lon=120.15"
    urumqi = "?lat=43.83&lon=87.62"
    await as_person(hub, url, "buyer", "36.16.1.7", hangzhou)
    body = await as_person(hub, url, "other", "110.1.1.1", urumqi)
    assert body["verdict"] == "suspicious"
    assert body["signals"] == ["impossible_travel"]
    assert body["reason"].startswith("verified 3")
    assert body["reason"].endswith(" km apart within 0.0 h")
    # The buyer travelling with the product is no travel between people.
    url2 = (await shipped(hub))[0]
    await as_person(hub, url2, "traveller", "36.16.1.7", hangzhou)
    body = await as_person(hub, url2, "traveller", "110.1.1.1", urumqi)
    assert body["verdict"] == "genuine_rescanned"


async def test_concurrent_people_are_judged_in_order(plant: Any) -> None:
    hub = plant
    url = (await shipped(hub))[0]
    bodies = await asyncio.gather(*(as_person(hub, url, f"p{n}", f"10.{n}.0.1") for n in range(20)))
    by_count = sorted(bodies, key=lambda b: b["scan_count"])
    assert [b["scan_count"] for b in by_count] == list(range(1, 21))
    assert [b["verdict"] for b in by_count] == ["genuine"] * 2 + ["suspicious"] * 18
    assert await alerts(hub) == [("distinct_clients", serial_of(url), 18)]


@pytest.mark.parametrize(
    "agent",
    [
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "TelegramBot (like TwitterBot)",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; Baiduspider/2.0)",
        "WhatsApp/2.23.20.0",
        "",
    ],
)
async def test_link_previewers_and_bots_are_no_scans(sqlite_plant: Any, agent: str) -> None:
    hub = sqlite_plant
    url = (await shipped(hub))[0]
    response = await hub.client.get(path(url), headers={"User-Agent": agent})
    assert response.status == 200
    text = await response.text()
    assert TEXT["zh"]["preview"] in text
    assert "data-verdict" not in text
    assert (await hub.code(url)).scan_count == 0
    assert await scans(hub) == []


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.44(0x18002c2f) NetType/WIFI",
        "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/116.0 Mobile Safari/537.36 MQQBrowser/6.2 QQ/8.9.78",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120 Mobile",
    ],
)
async def test_phone_browsers_are_scans(sqlite_plant: Any, agent: str) -> None:
    hub = sqlite_plant
    url = (await shipped(hub))[0]
    response = await hub.client.get(path(url), headers={"User-Agent": agent})
    assert 'data-verdict="genuine"' in await response.text()
    assert (await hub.code(url)).scan_count == 1


async def test_a_group_of_scans_is_one_transaction(db: Any) -> None:
    from hub.db import create_engine
    from hub.verify import Verifier, Visit
    from protocols.codes import CodeKind

    engine = create_engine(db.url)
    verifier = Verifier(engine, db.keyring)
    await verifier.start()
    try:
        base = "https://y.example.cn/c/"
        unissued = [db.keyring.active.seal(CodeKind.ITEM, n).value for n in range(40)]
        results = await asyncio.gather(
            *(verifier.verify(Visit(base + s, datetime.now(UTC))) for s in unissued)
        )
    finally:
        await verifier.stop()
        await engine.dispose()
    assert {r.reason for r in results} == {"well formed but not in the code database"}
    assert (verifier.groups, verifier.scans) == (1, 40)
    assert await db.count(ScanLog) == 40

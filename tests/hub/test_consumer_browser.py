"""The consumer page in headless Chromium (Debian's chromium driven by Playwright) on a phone
screen: every verdict in both languages, checked for what a consumer must see, with
screenshots (``YIMA_SAVE_SCREENSHOTS=1`` refreshes docs/screenshots/, shown in README)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from hub.web.pages import TEXT

from .conftest import furnish, start_hub

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The README's screenshots are refreshed with YIMA_SAVE_SCREENSHOTS=1; otherwise a run saves
# them to a temporary folder (a test run never dirties the work tree).
README_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.44"
)

playwright_api = pytest.importorskip("playwright.async_api")


@pytest.fixture
async def browser() -> Any:
    if shutil.which(CHROMIUM) is None:
        pytest.fail("chromium is not installed: ./yima test installs it (DEBS)")
    async with playwright_api.async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture
async def shop(
    aiohttp_client: Any,
    tmp_path: Path,
    broker_url: str,
    hub_settings_factory: Any,
    station_factory: Any,
) -> Any:
    settings = hub_settings_factory(
        f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}",
        broker_url,
        trusted_proxies=["127.0.0.1/32"],
        ip_regions={"36.16.0.0/16": "330100", "110.0.0.0/8": "650100"},
        brand_name="江南酒业 Jiangnan Wines",
        brand_hotline="400-800-1234",
    )
    hub = await furnish(await start_hub(aiohttp_client, settings), station_factory)
    await hub.api(
        "POST",
        "/api/v1/products",
        {
            "sku": "LONG",
            "name": "江南陈酿 <b>十年</b> Aged-Reserve-Extraordinarily-Long-Name",
            "gtin": "06901234567892",
        },
        status=201,
    )
    return hub


async def open_page(
    browser: Any, url: str, lang: str, address: str, device: str | None = None
) -> Any:
    context = await browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        user_agent=UA,
        locale="zh-CN" if lang == "zh" else "en-US",
        extra_http_headers={"X-Forwarded-For": address},
    )
    if device:
        await context.add_cookies(
            [{"name": "yima_d", "value": device, "url": url.split("/01/")[0].split("/c/")[0]}]
        )
    page = await context.new_page()
    response = await page.goto(url)
    assert response is not None and response.status == 200
    return context, page


SHOTS = README_SHOTS if os.environ.get("YIMA_SAVE_SCREENSHOTS") else Path(tempfile.mkdtemp())


async def shoot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert len(shot) > 10_000


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_every_verdict_on_a_phone(shop: Any, browser: Any, lang: str) -> None:
    hub = shop
    t = TEXT[lang]
    base = str(hub.client.make_url("")).rstrip("/")

    def local(url: str) -> str:
        return base + "/" + url.split("://", 1)[1].split("/", 1)[1]

    genuine = local((await hub.commissioned("LONG", 1))[0])
    await hub.ship([genuine], region="330000")
    fresh = local((await hub.commissioned("LONG", 1))[0])
    copied = local((await hub.commissioned("LONG", 1))[0])
    await hub.ship([copied], region="330000")
    unknown = (
        base
        + "/c/"
        + hub.keyring.active.seal_range(
            __import__("protocols.codes").codes.CodeKind.ITEM, 999_000, 1
        )[0]
    )

    # genuine, then the same phone again: genuine_rescanned
    context, page = await open_page(browser, genuine, lang, "36.16.1.7", "buyerphone1")
    badge = page.locator("[data-verdict]")
    assert await badge.get_attribute("data-verdict") == "genuine"
    assert t["genuine"] in await page.locator("h1").inner_text()
    body = await page.locator("body").inner_text()
    assert t["first"] in body
    assert "<b>" in body  # the product name shown as text, escaped, not as markup
    assert await page.locator("b").count() == 0
    await shoot(page, f"genuine-{lang}")
    await page.reload()
    assert await badge.get_attribute("data-verdict") == "genuine_rescanned"
    sentence = await page.locator("[data-sentence]").inner_text()
    assert ("第 2 次查询" if lang == "zh" else "check number 2") in sentence
    await shoot(page, f"genuine_rescanned-{lang}")
    await context.close()

    # not activated (a leaked factory code), unknown (a guessed serial)
    for url, verdict in ((fresh, "not_activated"), (unknown, "unknown")):
        context, page = await open_page(browser, url, lang, "36.16.2.7")
        assert await page.locator("[data-verdict]").get_attribute("data-verdict") == verdict
        assert t[f"{verdict}_note"] in await page.locator("body").inner_text()
        assert await page.locator("a.warn[href^='tel:']").count() == 1
        await shoot(page, f"{verdict}-{lang}")
        await context.close()

    # suspicious: three different people far apart
    for n, address in enumerate(("36.16.3.7", "110.1.1.1")):
        context, page = await open_page(browser, copied, lang, address, f"person{n}xx")
        await context.close()
    context, page = await open_page(browser, copied, lang, "110.9.9.9", "person9xx")
    assert await page.locator("[data-verdict]").get_attribute("data-verdict") == "suspicious"
    assert await page.locator("[data-question=seen] a").count() == 2
    assert await page.locator("a.warn").count() == 1
    # Labels and values line up and nothing overflows the phone's width.
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]
    await shoot(page, f"suspicious-{lang}")
    await context.close()

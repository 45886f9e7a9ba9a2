"""Alerts API, anti-diversion statistics, and the consumer rate limits (429 + Retry-After)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from sqlalchemy import select

from hub.models import Alert, ScanLog
from protocols.codes import CodeKind, parse_code

PHONE = "Mozilla/5.0 (iPhone) MicroMessenger/8.0"


@pytest.fixture
def hub_settings(database_url: str, broker_url: str, hub_settings_factory: Any) -> Any:
    return hub_settings_factory(
        database_url,
        broker_url,
        trusted_proxies=["127.0.0.1/32"],
        ip_regions={"36.16.0.0/16": "330100", "110.0.0.0/8": "650100", "61.0.0.0/8": "440300"},
        unknown_burst=5,
        unknown_per_hour=6,
        scan_burst=30,
    )


def path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


async def scan(hub: Any, url: str, device: str, address: str) -> Any:
    hub.client.session.cookie_jar.clear()
    return await hub.client.get(
        path(url),
        headers={
            "Accept": "application/json",
            "Cookie": f"yima_d={device}",
            "X-Forwarded-For": address,
            "User-Agent": PHONE,
        },
    )


async def verdict(hub: Any, url: str, device: str, address: str) -> str:
    response = await scan(hub, url, device, address)
    assert response.status == 200, await response.text()
    return str((await response.json())["verdict"])


async def copied(hub: Any, dealer: str = "D1", region: str = "330000") -> str:
    url = (await hub.commissioned("WINE", 1))[0]
    await hub.ship([url], dealer=dealer, region=region, order=f"SO-{secrets.token_hex(3)}")
    for n, address in enumerate(("36.16.1.1", "110.1.1.1", "61.1.1.1")):
        await verdict(hub, url, f"dev{n}", address)
    return url


async def test_alerts_list_with_evidence_and_dealer_scope(plant: Any) -> None:
    hub = plant
    await hub.add_dealer("D2", region="Guangdong")
    mine = await copied(hub, "D1")
    theirs = await copied(hub, "D2")
    body = await hub.api("GET", "/api/v1/alerts")
    kinds = {(a["kind"], a["serial"], a["dealer"]) for a in body["alerts"]}
    serial = parse_code(mine).serial.value
    other = parse_code(theirs).serial.value
    assert ("distinct_clients", serial, "D1") in kinds
    assert ("distinct_clients", other, "D2") in kinds
    alert = next(
        a for a in body["alerts"] if a["serial"] == serial and a["kind"] == "distinct_clients"
    )
    assert alert["evidence"]["clients"] == 3
    assert alert["region"] == "330000"
    assert alert["order"].startswith("SO-")

    await hub.api(
        "POST",
        "/api/v1/users",
        {"username": "d1", "password": "correct horse battery", "role": "dealer", "dealer": "D1"},
        status=201,
    )
    login = await hub.api(
        "POST", "/api/v1/login", {"username": "d1", "password": "correct horse battery"}, headers={}
    )
    dealer = {"Authorization": f"Bearer {login['token']}"}
    body = await hub.api("GET", "/api/v1/alerts", headers=dealer)
    assert body["alerts"]
    assert {a["dealer"] for a in body["alerts"]} == {"D1"}
    body = await hub.api("GET", "/api/v1/alerts?kind=impossible_travel", headers=dealer)
    assert {a["kind"] for a in body["alerts"]} <= {"impossible_travel"}


async def test_diversion_report(plant: Any) -> None:
    hub = plant
    url = (await hub.commissioned("WINE", 1))[0]
    await hub.ship([url], region="330000", order="SO-Z")
    assert await verdict(hub, url, "buyer", "61.5.5.5") == "genuine"  # Shenzhen, not Zhejiang
    body = await hub.api("GET", "/api/v1/reports/diversion")
    assert body["rows"] == [
        {
            "dealer": "D1",
            "shipped_region": "330000",
            "scan_region": "440300",
            "codes": 1,
            "scans": 1,
            "orders": ["SO-Z"],
        }
    ]
    # Not an accusation and not an alert: a travelling buyer looks the same.
    assert await hub.count(Alert) == 0


async def test_serial_enumeration_is_rate_limited_and_alerted(plant: Any) -> None:
    hub = plant
    base = hub.runtime.public_base
    guesses = [
        f"{base}/c/{hub.keyring.active.seal(CodeKind.ITEM, 900_000 + n).value}" for n in range(8)
    ]
    statuses = []
    for url in guesses:
        response = await scan(hub, url, "bot", "45.1.2.3")
        statuses.append(response.status)
        if response.status == 429:
            retry = int(response.headers["Retry-After"])
            assert 1 <= retry <= 600
            assert "Too many unknown codes" in (await response.json())["error"]
    assert statuses == [200] * 5 + [429] * 3
    assert await hub.count(ScanLog) == 5  # refused requests write nothing
    alert = await hub.scalar(select(Alert).where(Alert.kind == "enumeration"))
    assert (alert.client, alert.count) == ("45.1.2.0/24", 1)
    # Another network is not affected, and real codes still verify for it.
    real = (await hub.commissioned("WINE", 1))[0]
    await hub.ship([real])
    assert await verdict(hub, real, "person", "36.16.9.9") == "genuine"


async def test_rate_limit_errors_are_json_or_text(sqlite_plant: Any) -> None:
    hub = sqlite_plant  # default limits: 10 unknown codes at once
    for n in range(11):
        response = await hub.client.get(
            f"/c/{hub.keyring.active.seal(CodeKind.ITEM, 800_000 + n).value}",
            headers={"X-Forwarded-For": "45.9.9.9", "User-Agent": PHONE},
        )
    assert response.status == 429
    assert response.headers["Retry-After"].isdigit()
    assert "Too many unknown codes" in await response.text()

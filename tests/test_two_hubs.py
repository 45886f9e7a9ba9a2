"""Past one machine: two hub processes on one PostgreSQL and one Mosquitto (shared
subscription), a station's events and 1,000 verifications spread over both, one hub killed
mid-run. Every event applied once, every answered scan counted once, alerts raised once."""

from __future__ import annotations

import json
import secrets
import signal
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg

from simulators.consumers import STATION, commission_codes
from simulators.hubproc import RunningHub, start_hub

PHONE = "Mozilla/5.0 (iPhone) MicroMessenger/8.0"
ENV = {
    "YIMA_HUB_TRUSTED_PROXIES": json.dumps(["127.0.0.1/32"]),
    "YIMA_HUB_SCAN_BURST": "100000",
}


def call(hub: RunningHub, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - a local test hub
        hub.url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {hub.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        text = response.read().decode()
    return json.loads(text) if text.startswith(("{", "[")) else text


def verify(hub: RunningHub, url: str, person: int) -> str | None:
    """One consumer scan through ``hub``; None when the hub did not answer."""
    path = url.split("://", 1)[1].split("/", 1)[1]
    request = urllib.request.Request(  # noqa: S310
        f"{hub.url}/{path}",
        headers={
            "Accept": "application/json",
            "User-Agent": PHONE,
            "Cookie": f"yima_d=person{person:06d}",
            "X-Forwarded-For": f"10.{person // 250 % 250}.{person % 250}.1",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return str(json.loads(response.read())["verdict"])
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


async def counts(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn.replace("postgresql+asyncpg", "postgresql"))
    try:
        return {
            "scan_count": await conn.fetchval("SELECT coalesce(sum(scan_count), 0) FROM codes"),
            "scan_log": await conn.fetchval("SELECT count(*) FROM scan_log"),
            "commissioned": await conn.fetchval(
                "SELECT count(*) FROM codes WHERE state <> 'generated'"
            ),
            "events": await conn.fetchval(
                "SELECT count(*) FROM events WHERE type = 'commission' AND outcome = 'applied'"
            ),
            "alerts": [
                tuple(r)
                for r in await conn.fetch("SELECT kind, serial, count FROM alerts ORDER BY id")
            ],
        }
    finally:
        await conn.close()


def test_two_hubs_share_the_work_and_survive_losing_one(
    tmp_path: Path, pg_database_url: str, broker_url: str, topic_prefix: str
) -> None:
    import asyncio

    secret, token = secrets.token_bytes(32), secrets.token_hex(16)
    same = {
        "database_url": pg_database_url,
        "mqtt_url": broker_url,
        "topic_prefix": topic_prefix,
        "code_secret": secret,
        "token": token,
        "env": ENV,
    }
    with start_hub(tmp_path / "a", **same) as a, start_hub(tmp_path / "b", **same) as b:
        call(a, "POST", "/api/v1/products", {"sku": "W", "name": "酒", "gtin": "06901234567892"})
        call(b, "POST", "/api/v1/stations", {"station_id": STATION, "line": "L1"})
        call(a, "POST", "/api/v1/dealers", {"code": "D1", "name": "经销商", "region": "330000"})
        batch = call(b, "POST", "/api/v1/batches", {"sku": "W", "count": 200})
        exported = call(a, "GET", f"/api/v1/batches/{batch['id']}/export")
        urls = [line.split(",")[2] for line in exported.splitlines()[1:]]
        assert len(urls) == 200

        # The station's events: both hubs share the subscription.
        first_events = commission_codes(a, urls[:100])
        call(
            b,
            "POST",
            "/api/v1/shipments",
            {"id": str(uuid.uuid4()), "order": "SO-1", "dealer": "D1", "codes": urls[:100]},
        )
        copied = urls[0]  # scanned by four different people, across both hubs

        answered: list[str] = []

        def scan_many(hub: RunningHub, jobs: list[tuple[str, int]]) -> list[str | None]:
            with ThreadPoolExecutor(8) as pool:
                return list(pool.map(lambda job: verify(hub, *job), jobs))

        # 1,000 verifications: 500 split over both hubs, then hub A dies, then 500 on B.
        first = [(urls[1 + n % 99], 1 + n % 99) for n in range(500)]
        for n, hub in enumerate((a, b)):
            results = scan_many(hub, first[n::2])
            assert None not in results
            answered += [r for r in results if r is not None]
        assert verify(a, copied, 900_001) == "genuine"
        assert verify(b, copied, 900_002) == "genuine"
        assert a.process is not None
        a.process.send_signal(signal.SIGKILL)
        a.process.wait()
        assert verify(a, copied, 900_003) is None  # a dead hub answers nothing
        # The rest of the station's events arrive while only B runs, plus a replay of
        # everything (a station that never saw its acks sends again).
        commission_codes(b, urls[100:])
        commission_codes(b, [], first_events)
        later = [(urls[1 + n % 99], 1 + n % 99) for n in range(498)]
        results = scan_many(b, later)
        assert None not in results
        answered += [r for r in results if r is not None]
        assert verify(b, copied, 900_004) == "suspicious"
        assert verify(b, copied, 900_005) == "suspicious"

    state = asyncio.run(counts(pg_database_url))
    scans = len(answered) + 4  # the copied code's answered scans
    assert len(answered) == 998
    assert state["scan_count"] == state["scan_log"] == scans
    assert (state["commissioned"], state["events"]) == (200, 200)
    # Every genuine buyer re-scanned their own code: never accused.
    assert set(answered) == {"genuine", "genuine_rescanned"}
    assert state["alerts"] == [("distinct_clients", copied.rsplit("/", 1)[-1], 2)]

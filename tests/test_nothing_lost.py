"""What "nothing lost" means, end to end: the hub is killed (SIGKILL) while a line is
publishing, and restarted on the same database. Every item read on the line ends up
commissioned exactly once, and the station's outbox drains; the station is never told about
an event the hub had not committed.
"""

from __future__ import annotations

import csv
import io
import secrets
import sqlite3
import time
from pathlib import Path

import pytest

from edge_agent.agent import EdgeAgent
from edge_agent.settings import EdgeSettings, WorkOrderSettings
from simulators.camera import SyntheticConveyor
from simulators.hubproc import RunningHub, start_hub

pytestmark = pytest.mark.slow
ITEMS = 60


def export_urls(hub: RunningHub, batch_id: int) -> list[str]:
    return [row["url"] for row in csv.DictReader(io.StringIO(hub.export_csv(batch_id)))]


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_hub_killed_mid_ingest_loses_nothing(
    tmp_path: Path, broker_url: str, topic_prefix: str
) -> None:
    hub_dir = tmp_path / "hub"
    same = {
        "mqtt_url": broker_url,
        "topic_prefix": topic_prefix,
        "code_secret": secrets.token_bytes(32),
        "token": secrets.token_hex(16),
    }
    with start_hub(hub_dir, **same) as hub:
        admin = hub.client
        admin.request("POST", "/api/v1/products", {"sku": "TEA", "name": "Tea"})
        admin.request("POST", "/api/v1/stations", {"station_id": "line-1", "line": "Line 1"})
        batch = admin.request("POST", "/api/v1/batches", {"sku": "TEA", "count": ITEMS})
        urls = export_urls(hub, batch["id"])
        settings = EdgeSettings(
            station_id="line-1",
            mqtt_url=broker_url,
            topic_prefix=topic_prefix,
            outbox_path=tmp_path / "outbox.sqlite3",
            source="in-process",
            resend_interval=1.0,
            work_order=WorkOrderSettings(id="WO-1", sku="TEA", lot="L1"),
        )
        agent = EdgeAgent(settings, SyntheticConveyor(urls, fps=20, realtime=True))
        agent.start()

        def commissioned() -> int:
            info = admin.request("GET", f"/api/v1/batches/{batch['id']}")
            return int(info["states"].get("commissioned", 0))

        wait_for(lambda: commissioned() >= 10, 60, "the first commissioned items")
        assert hub.process is not None
        hub.process.kill()
        hub.process.wait()
    try:
        # The line keeps running with the hub down: events wait in the outbox.
        time.sleep(2)
        killed_at = agent.counters()
        assert killed_at.pending > 0
        with start_hub(hub_dir, **same) as hub:
            assert agent.wait_finished(120)
            assert agent.wait_drained(60), agent.counters()
            final = hub.client.request("GET", f"/api/v1/batches/{batch['id']}")
        counters = agent.counters()
    finally:
        agent.stop()
    assert final["states"] == {"commissioned": ITEMS}
    assert (counters.commissioned, counters.rejected, counters.pending) == (ITEMS, 0, 0)
    with sqlite3.connect(hub_dir / "hub.sqlite3") as db:
        rows = db.execute(
            "SELECT outcome, count(*), count(DISTINCT json_extract(payload, '$.code')) "
            "FROM events WHERE type = 'commission' GROUP BY outcome"
        ).fetchall()
    assert rows == [("applied", ITEMS, ITEMS)]  # exactly once in the database

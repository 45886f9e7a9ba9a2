"""The Kivy PDA screens under Xvfb against a live hub: a warehouse user logs in, opens an
order, scans (progress moves, the screen turns green), scans a wrong code (red, blocked until
acknowledged; the next scan waits), acknowledges, completes. Screenshots go to
docs/screens/ when YIMA_SAVE_SCREENSHOTS=1, else to the test's temporary folder."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "pda_app" / "drive_ui.py"


async def add_user(hub: Any, name: str, password: str) -> None:
    body = {"username": name, "password": password, "role": "warehouse"}
    await hub.api("POST", "/api/v1/users", body, status=201)


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_the_scan_screens_under_xvfb(
    sqlite_plant: Any, tmp_path: Path, language: str
) -> None:
    if shutil.which("xvfb-run") is None:
        pytest.fail("xvfb-run is not installed: run ./yima test, which installs it")
    hub = sqlite_plant
    await hub.api(
        "POST",
        "/api/v1/orders",
        {
            "orders": [
                {
                    "number": "SO-1001",
                    "dealer": "D1",
                    "lines": [{"sku": "TEA", "quantity": 3}, {"sku": "WINE", "quantity": 1}],
                }
            ]
        },
        status=201,
    )
    tea = await hub.commissioned("TEA", 2)
    (wine,) = await hub.commissioned("WINE", 1)
    await add_user(hub, "wang", "correct horse battery")
    shots = ROOT / "docs" / "screens" if os.environ.get("YIMA_SAVE_SCREENSHOTS") else tmp_path / "s"
    codes = {"good": [tea[0], wine], "bad": tea[0], "reason": "缺货 out of stock"}
    command = [
        "xvfb-run",
        "-a",
        "-s",
        "-screen 0 480x800x24",
        sys.executable,
        str(DRIVER),
        str(hub.client.make_url("")).rstrip("/"),
        "wang",
        "correct horse battery",
        "SO-1001",
        str(shots),
        str(tmp_path / "device"),
        json.dumps(codes),
        language,
    ]
    run = await asyncio.to_thread(
        subprocess.run, command, cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    steps = {}
    for line in run.stdout.splitlines():
        if line.startswith("{"):
            step = json.loads(line)
            steps[step["step"]] = step
    assert run.returncode == 0 and "confirmed" in steps, run.stdout[-2000:] + run.stderr[-4000:]
    green, red = [0.13, 0.55, 0.25, 1], [0.78, 0.12, 0.12, 1]
    assert steps["orders"]["screen"] == "orders"
    assert (steps["ok0"]["color"], steps["ok0"]["done"], steps["ok0"]["total"]) == (green, 1, 4)
    assert (steps["ok1"]["done"], steps["ok1"]["error"]) == (2, False)
    assert (steps["error"]["color"], steps["error"]["error"]) == (red, True)
    assert steps["error"]["result"] == ("重复扫描" if language == "zh" else "Already scanned")
    assert steps["blocked"]["error"] is True  # the next scan waits behind the error
    assert steps["acknowledged"]["error"] is True  # ... and was a duplicate too
    assert (steps["cleared"]["error"], steps["cleared"]["done"]) == (False, 2)
    assert steps["exceptions"]["screen"] == "exceptions"
    assert steps["summary"]["screen"] == "summary"
    assert steps["confirmed"]["summary"] == (
        "短发完成  (backorder SO-1001-BO1)"
        if language == "zh"
        else "Short-shipped  (backorder SO-1001-BO1)"
    )
    for name in steps:
        assert (shots / f"pda-{language}-{name}.png").stat().st_size > 5000
    summary = await hub.api("GET", "/api/v1/orders/SO-1001")
    assert (summary["state"], summary["short_reason"]) == ("short_shipped", "缺货 out of stock")
    assert [line["scanned"] for line in summary["lines"]] == [1, 1]

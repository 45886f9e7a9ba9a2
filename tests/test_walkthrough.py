"""The operator's path through the command-line tools, as the README describes it.

yima-hub serve → products / stations / batches over the admin API → printer CSV →
``yima-edge run --config docs/station.example.toml`` (synthetic camera) → codes commissioned
→ ``yima-pda ship`` → consumer verdicts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulators.hubproc import start_hub
from simulators.plant import consumer_verdict

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "station.example.toml"

pytestmark = pytest.mark.slow


def run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=ROOT,
    )


def test_operator_walkthrough(tmp_path: Path) -> None:
    with start_hub(tmp_path / "hub") as hub:
        admin = hub.client
        admin.request(
            "POST",
            "/api/v1/products",
            {"sku": "DEMO-TEA-250", "name": "Tea", "gtin": "6901234567892"},
        )
        admin.request("POST", "/api/v1/stations", {"station_id": "hz-line1-cam1", "line": "Line 1"})
        admin.request(
            "POST", "/api/v1/dealers", {"code": "D1", "name": "Dealer", "region": "Zhejiang"}
        )
        batch = admin.request("POST", "/api/v1/batches", {"sku": "DEMO-TEA-250", "count": 6})
        csv_text = hub.export_csv(batch["id"])
        (tmp_path / "batch-1.csv").write_text(csv_text, encoding="utf-8")
        urls = [line.split(",")[2] for line in csv_text.splitlines()[1:]]

        config = EXAMPLE.read_text(encoding="utf-8")
        config = config.replace(
            'mqtt_url = "mqtt://127.0.0.1:1883"', f'mqtt_url = "{hub.mqtt_url}"'
        )
        config = config.replace("realtime = true", "realtime = false")
        station = tmp_path / "station.toml"
        station.write_text(config, encoding="utf-8")
        edge = run("edge_agent", "run", "--config", str(station))
        assert edge.returncode == 0, edge.stderr[-2000:]
        counters = dict(line.split(None, 1) for line in edge.stdout.splitlines() if line.strip())
        assert counters["commissioned"] == "6"
        assert counters["acked"] == "6"
        assert counters["pending"] == "0"
        assert admin.request("GET", f"/api/v1/batches/{batch['id']}")["states"] == {
            "commissioned": 6
        }

        ship = run(
            "pda_app",
            "--hub",
            hub.url,
            "--token",
            hub.token,
            "ship",
            "--order",
            "SO-1",
            "--dealer",
            "D1",
            stdin="\n".join(urls[:3]) + "\n",
        )
        assert ship.returncode == 0, ship.stderr
        assert len(json.loads(ship.stdout)["activated"]) == 3

        assert [consumer_verdict(u) for u in urls] == ["genuine"] * 3 + ["not_activated"] * 3


def test_pda_ship_reports_refusals_and_replays(tmp_path: Path) -> None:
    with start_hub(tmp_path / "hub") as hub:
        admin = hub.client
        admin.request("POST", "/api/v1/products", {"sku": "P", "name": "P"})
        admin.request(
            "POST", "/api/v1/dealers", {"code": "D1", "name": "Dealer", "region": "Zhejiang"}
        )
        batch = admin.request("POST", "/api/v1/batches", {"sku": "P", "count": 1})
        info = admin.request("GET", f"/api/v1/batches/{batch['id']}")
        assert info["states"] == {"generated": 1}
        shipment = "6f96226f-0494-489c-a567-847f58137ffa"
        args = (
            "pda_app",
            "--hub",
            hub.url,
            "--token",
            hub.token,
            "ship",
            "--order",
            "SO-9",
            "--dealer",
            "D1",
            "--id",
            shipment,
            "not-a-code",
        )
        first = run(*args)
        assert first.returncode == 3  # something was refused
        result = json.loads(first.stdout)
        assert result["activated"] == []
        assert result["refused"][0]["code"] == "not-a-code"
        assert result["refused"][0]["reason"].startswith(
            "malformed code: Invalid serial 'not-a-code'"
        )
        again = json.loads(run(*args).stdout)
        assert again == {**result, "replayed": True}

        unknown_dealer = run(
            "pda_app",
            "--hub",
            hub.url,
            "--token",
            hub.token,
            "ship",
            "--order",
            "SO-10",
            "--dealer",
            "NOPE",
            "x",
        )
        assert unknown_dealer.returncode == 1
        assert "hub refused (404): Unknown dealer 'NOPE'" in unknown_dealer.stderr


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (
            [
                "--hub",
                "http://127.0.0.1:9",
                "--token",
                "t",
                "ship",
                "--order",
                "O",
                "--dealer",
                "D",
                "--id",
                "6f96226f-0494-489c-a567-847f58137ffa",
                "x",
            ],
            1,
            "yima-pda: cannot reach the hub at http://127.0.0.1:9",
        ),
        (
            ["--hub", "http://127.0.0.1:9", "ship", "--order", "O", "--dealer", "D", "x"],
            2,
            "yima-pda: no token: pass --token or set YIMA_PDA_TOKEN",
        ),
        (
            ["--hub", "ftp://x", "--token", "t", "ship", "--order", "O", "--dealer", "D", "x"],
            1,
            "yima-pda: Hub URL must be http(s)://..., got 'ftp://x'",
        ),
    ],
)
def test_pda_errors(argv: list[str], code: int, message: str) -> None:
    proc = run("pda_app", *argv)
    assert proc.returncode == code
    assert proc.stderr.startswith(message)

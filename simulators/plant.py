"""A whole plant on one machine: hub, broker, a camera line, a warehouse and consumers.

Every joint is real: the hub runs as ``yima-hub serve`` (SQLite, embedded mosquitto), the
line is a real ``EdgeAgent`` reading a synthetic camera and publishing over MQTT, shipping
goes through the hub's HTTP API with the PDA client, and consumers GET the printed URLs.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import secrets
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.agent import EdgeAgent
from edge_agent.cli import build_source
from edge_agent.settings import EdgeSettings, SimCameraSettings, WorkOrderSettings
from pda_app.client import HubClient, HubRefused
from protocols.codes import SERIAL_ALPHABET, Serial, code_url
from simulators.hubproc import RunningHub, start_hub

log = logging.getLogger(__name__)

PRODUCT = {
    "sku": "DEMO-TEA-250",
    "name": "龙井茶 250g · Longjing tea 250 g",
    "gtin": "6901234567892",
}
STATION = {
    "station_id": "hz-line1-cam1",
    "line": "一号线 Line 1",
    "site": "杭州工厂 Hangzhou plant",
}
DEALER = {"code": "D-ZJ-001", "name": "浙江经销商 Zhejiang dealer", "region": "浙江 Zhejiang"}


@dataclass
class PlantOptions:
    items: int | None = None
    hub_url: str | None = None
    mqtt_url: str | None = None
    token: str | None = None
    forged: int = 50
    timeout: float = 300.0
    realtime: bool = False
    workdir: Path | None = None


@dataclass
class LineRun:
    batch_id: int
    urls: list[str]
    commissioned: int
    edge: dict[str, Any]
    seconds: float


@dataclass
class Summary:
    items: int = 0
    commissioned: int = 0
    shipped: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    forged_tried: int = 0
    forged_accepted: int = 0
    hub_url: str = ""
    edge: dict[str, Any] = field(default_factory=dict)
    hub_ingest: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "commissioned": self.commissioned,
            "shipped": self.shipped,
            "verdicts": dict(sorted(self.verdicts.items())),
            "forged_tried": self.forged_tried,
            "forged_accepted": self.forged_accepted,
            "hub_url": self.hub_url,
            "edge": self.edge,
            "hub_ingest": self.hub_ingest,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }


class Plant:
    def __init__(self, hub: RunningHub, workdir: Path, *, realtime: bool = False) -> None:
        self.hub = hub
        self.admin = hub.client
        self.workdir = workdir
        self.realtime = realtime
        self._lot = 0

    def setup(self) -> None:
        """Product, station and dealer; tolerate a hub that has them already."""
        for path, body in (
            ("/api/v1/products", PRODUCT),
            ("/api/v1/stations", STATION),
            ("/api/v1/dealers", DEALER),
        ):
            try:
                self.admin.request("POST", path, body)
            except HubRefused as exc:
                if exc.status != 409:
                    raise

    def run_line(self, count: int, timeout: float) -> LineRun:
        """Generate ``count`` codes, print them, and commission them through a real station."""
        started = time.monotonic()
        batch = self.admin.request(
            "POST", "/api/v1/batches", {"sku": PRODUCT["sku"], "count": count}
        )
        printer_csv = self.hub.export_csv(batch["id"])
        urls = [row["url"] for row in csv.DictReader(io.StringIO(printer_csv))]
        codes_csv = self.workdir / f"batch-{batch['id']}.csv"
        codes_csv.write_text(printer_csv, encoding="utf-8")
        self._lot += 1
        settings = EdgeSettings(
            station_id=STATION["station_id"],
            mqtt_url=self.hub.mqtt_url,
            topic_prefix=self.hub.topic_prefix,
            outbox_path=self.workdir / "station-outbox.sqlite3",
            source="sim",
            sim=SimCameraSettings(codes_csv=codes_csv, realtime=self.realtime),
            work_order=WorkOrderSettings(
                id=f"WO-{batch['id']}", sku=PRODUCT["sku"], lot=f"LOT-{self._lot:04d}"
            ),
        )
        agent = EdgeAgent(settings, build_source(settings))
        agent.start()
        try:
            deadline = time.monotonic() + timeout
            if not agent.wait_finished(timeout):
                raise TimeoutError(f"the line did not finish {count} items in {timeout:.0f} s")
            if not agent.wait_drained(max(1.0, deadline - time.monotonic())):
                raise TimeoutError(
                    f"{agent.outbox.pending_count()} events not acknowledged by the hub"
                )
            counters = agent.counters()
        finally:
            agent.stop()
        info = self.admin.request("GET", f"/api/v1/batches/{batch['id']}")
        return LineRun(
            batch_id=batch["id"],
            urls=urls,
            commissioned=int(info["states"].get("commissioned", 0)),
            edge={
                k: v
                for k, v in counters.__dict__.items()
                if k in ("frames", "reads", "commissioned", "duplicates", "acked", "rejected")
            },
            seconds=time.monotonic() - started,
        )

    def ship(self, urls: list[str], order: str) -> dict[str, Any]:
        return self.admin.ship(order, DEALER["code"], urls, shipment_id=str(uuid.uuid4()))


UNLIMITED = {
    "YIMA_HUB_SCAN_BURST": "1000000",
    "YIMA_HUB_UNKNOWN_BURST": "1000000",
}


def consumer_verdict(url: str) -> str:
    """What a consumer's phone gets for a printed URL (JSON flavour)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"expected an http(s) URL, got {url!r}")
    req = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310
        return str(json.loads(response.read())["verdict"])


def forged_urls(real_serials: list[str], public_base: str, gtin: str, count: int) -> list[str]:
    """Half random well-formed serials, half one-symbol changes of real ones (copy-and-alter)."""
    out = []
    for i in range(count):
        if i % 2 == 0 or not real_serials:
            first = secrets.choice(SERIAL_ALPHABET[:16])  # format 1, any key id
            body = "".join(secrets.choice(SERIAL_ALPHABET) for _ in range(19))
            out.append(code_url(public_base, first + body))
        else:
            serial = secrets.choice(real_serials)
            pos = 1 + secrets.randbelow(len(serial) - 1)
            symbol = secrets.choice(SERIAL_ALPHABET.replace(serial[pos], ""))
            out.append(code_url(public_base, serial[:pos] + symbol + serial[pos + 1 :], gtin))
    return out


@contextmanager
def _hub(options: PlantOptions, workdir: Path) -> Iterator[RunningHub]:
    if options.hub_url is None:
        # Every simulated consumer and forger calls from this machine's one address: lift the
        # hub's per-network consumer limits, which would otherwise answer 429.
        with start_hub(workdir / "hub", mqtt_url=options.mqtt_url, env=UNLIMITED) as hub:
            yield hub
        return
    if not options.token:
        raise ValueError("--hub-url needs --token (an admin token of that hub)")
    info = HubClient(options.hub_url, options.token).request("GET", "/api/v1/info")
    yield RunningHub(
        url=options.hub_url.rstrip("/"),
        public_base=info["public_base"],
        mqtt_url=options.mqtt_url or info["mqtt_url"],
        token=options.token,
        topic_prefix=info["topic_prefix"],
        process=None,
    )


def run_plant(options: PlantOptions, say: Callable[[str], None] = print) -> Summary:
    """Run ``options.items`` items end to end and return the summary."""
    assert options.items is not None
    with _workdir(options) as workdir, _hub(options, workdir) as hub:
        summary = Summary(items=options.items, hub_url=hub.url)
        plant = Plant(hub, workdir, realtime=options.realtime)
        plant.setup()
        say(f"hub {hub.url} (MQTT {hub.mqtt_url}); running {options.items} items down line 1")
        line = plant.run_line(options.items, options.timeout)
        summary.commissioned = line.commissioned
        summary.edge = line.edge
        summary.seconds["line"] = line.seconds
        say(f"commissioned {line.commissioned}/{options.items} in {line.seconds:.1f} s")

        started = time.monotonic()
        half = line.urls[: options.items // 2]
        result = plant.ship(half, order=f"SO-{line.batch_id:05d}") if half else {"activated": []}
        summary.shipped = len(result["activated"])
        summary.seconds["ship"] = time.monotonic() - started
        say(f"shipped {summary.shipped} to dealer {DEALER['code']}")

        started = time.monotonic()
        summary.verdicts.update(consumer_verdict(url) for url in line.urls)
        serials = [url.rsplit("/", 1)[1] for url in line.urls]
        forged = forged_urls(serials, hub.public_base, "0" + PRODUCT["gtin"], options.forged)
        summary.forged_tried = len(forged)
        summary.forged_accepted = sum(consumer_verdict(u) != "unknown" for u in forged)
        summary.seconds["verify"] = time.monotonic() - started
        summary.hub_ingest = plant.admin.request("GET", "/api/v1/info")["ingest"] or {}
        say(
            f"verdicts {dict(summary.verdicts)}; forged tried {summary.forged_tried}, "
            f"accepted {summary.forged_accepted}"
        )
        return summary


def run_forever(options: PlantOptions, say: Callable[[str], None] = print) -> None:
    """Keep the line running in cycles of 20 items and point at pages to open."""
    with _workdir(options) as workdir, _hub(options, workdir) as hub:
        plant = Plant(hub, workdir, realtime=True)
        plant.setup()
        say(f"Yima plant running. Hub: {hub.url}  (Ctrl-C to stop)")
        cycle = 0
        while True:
            cycle += 1
            line = plant.run_line(20, options.timeout)
            plant.ship(line.urls[:10], order=f"SO-{line.batch_id:05d}")
            if cycle == 1:
                serial = line.urls[0].rsplit("/", 1)[1]
                say("Open these in a browser (中文 by default, ?lang=en for English):")
                say(f"  genuine / 正品:            {line.urls[0]}")
                say(f"  not activated / 未激活:    {line.urls[-1]}")
                say(f"  forged / 伪造:             {code_url(hub.public_base, _flip(serial))}")
                typed = code_url(hub.public_base, Serial(serial).as_human())
                say(f"  typed by hand / 手工输入:   {typed}")
            say(f"cycle {cycle}: commissioned {line.commissioned}, shipped 10")


def _flip(serial: str) -> str:
    pos = len(serial) - 1
    symbol = SERIAL_ALPHABET[(SERIAL_ALPHABET.index(serial[pos]) + 1) % len(SERIAL_ALPHABET)]
    return serial[:pos] + symbol


@contextmanager
def _workdir(options: PlantOptions) -> Iterator[Path]:
    if options.workdir is not None:
        options.workdir.mkdir(parents=True, exist_ok=True)
        yield options.workdir
        return
    with tempfile.TemporaryDirectory(prefix="yima-plant-") as tmp:
        yield Path(tmp)

"""``yima-sim line``: a real edge agent on a simulated line, against a real hub.

The hub runs as ``yima-hub serve`` (SQLite, embedded broker); the line is a synthetic conveyor
camera, a photo-eye and a PLC reject actuator on serial ports (``socket://``), and a real
``EdgeAgent`` with its outbox and MQTT uplink. Items carry good labels (with cosmetic defects
at ``--defects realistic|harsh``), no label, a duplicated label, a foreign code, or a code of
another product. At the end every item's fate is compared with what it should have been:
the station's decisions, the PLC's record of what it pushed off, and the hub's database.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.agent import EdgeAgent
from edge_agent.decode import decode_image
from edge_agent.line import Verdict
from edge_agent.settings import (
    EdgeSettings,
    LineSettings,
    SimCameraSettings,
    WorkOrderSettings,
)
from pda_app.client import HubRefused
from simulators.camera import CARTON_MARGIN, WIDTH, SyntheticConveyor, render_qr
from simulators.hubproc import RunningHub, start_hub
from simulators.labels import label_with_defects
from simulators.serial_devices import PhotoEye, PlcActuator

log = logging.getLogger(__name__)

PRODUCT = {"sku": "LINE-TEA-250", "name": "龙井茶 250g · Longjing tea", "gtin": "6901234567892"}
OTHER = {"sku": "LINE-RICE-5KG", "name": "大米 5kg · Rice 5 kg", "gtin": "6901234567885"}
STATION = {"station_id": "sim-line-cam", "line": "模拟线 Sim line", "site": "sim"}
# Share of items with each fault, by --defects level.
FAULTS = {
    "none": {},
    "realistic": {"missing": 0.01, "duplicate": 0.01, "foreign": 0.01, "wrong_product": 0.01},
    "harsh": {"missing": 0.03, "duplicate": 0.03, "foreign": 0.03, "wrong_product": 0.03},
}
# What the station must do with each kind of item.
EXPECTED = {
    "good": "good",
    "missing": "no_read",
    "duplicate": "duplicate",
    "foreign": "foreign",
    "wrong_product": "wrong_product",
}
PITCH = 320


@dataclass
class LineOptions:
    rate: float = 1200.0  # items per minute
    items: int = 200
    defects: str = "realistic"
    fps: float = 60.0
    realtime: bool = True
    seed: int = 0
    timeout: float = 300.0
    workdir: Path | None = None
    noise_on_serial: bool = False  # garbage on the photo-eye line now and then
    decoder: str = "zxingcpp"


@dataclass
class Item:
    kind: str  # good, missing, duplicate, foreign, wrong_product
    text: str | None  # what its label carries
    readable: bool = True  # a decoder can read its label at all (checked at rest)


@dataclass
class LineSummary:
    counts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return self.counts


def plan_items(
    count: int, defects: str, urls: list[str], other_urls: list[str], seed: int
) -> list[Item]:
    """The items in belt order: faults at the level's rates, the rest good."""
    if defects not in FAULTS:
        raise ValueError(f"defects expected one of {', '.join(FAULTS)}, got {defects!r}")
    rng = np.random.default_rng(seed)
    items: list[Item] = []
    goods: list[str] = []
    fresh = iter(urls)
    others = iter(other_urls)
    rates = FAULTS[defects]
    for n in range(count):
        roll = float(rng.random())
        kind = "good"
        edge = 0.0
        for fault, rate in rates.items():
            edge += rate
            if roll < edge:
                kind = fault
                break
        if kind == "duplicate" and not goods:
            kind = "good"
        if kind == "good":
            text = next(fresh)
            goods.append(text)
            items.append(Item("good", text))
        elif kind == "missing":
            items.append(Item("missing", None))
        elif kind == "duplicate":
            items.append(Item("duplicate", goods[int(rng.integers(len(goods)))]))
        elif kind == "foreign":
            items.append(Item("foreign", f"https://other-brand.example/p/{seed}-{n:06d}"))
        else:
            items.append(Item("wrong_product", next(others)))
    return items


def _ensure(hub: RunningHub, path: str, body: dict[str, Any]) -> None:
    try:
        hub.client.request("POST", path, body)
    except HubRefused as exc:
        if exc.status != 409:
            raise


def _batch(hub: RunningHub, sku: str, count: int) -> tuple[int, list[str]]:
    batch = hub.client.request("POST", "/api/v1/batches", {"sku": sku, "count": count})
    rows = csv.DictReader(io.StringIO(hub.export_csv(batch["id"])))
    return int(batch["id"]), [row["url"] for row in rows]


def run_line(options: LineOptions, hub: RunningHub | None = None) -> dict[str, Any]:
    """Run the line end to end and return the summary (see module docstring)."""
    if options.items < 1:
        raise ValueError(f"items expected at least 1, got {options.items}")
    if options.rate <= 0 or options.fps <= 0:
        raise ValueError(f"rate and fps expected > 0, got {options.rate}, {options.fps}")
    with tempfile.TemporaryDirectory(prefix="yima-line-") as tmp:
        workdir = options.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if hub is not None:
            return _run(options, hub, workdir, None)
        with start_hub(workdir / "hub") as started:
            return _run(options, started, workdir, workdir / "hub" / "hub.sqlite3")


def _run(
    options: LineOptions, hub: RunningHub, workdir: Path, database: Path | None
) -> dict[str, Any]:
    _ensure(hub, "/api/v1/products", PRODUCT)
    _ensure(hub, "/api/v1/products", OTHER)
    _ensure(hub, "/api/v1/stations", STATION)
    batch_id, urls = _batch(hub, PRODUCT["sku"], options.items)
    _, other_urls = _batch(hub, OTHER["sku"], max(1, options.items // 10))
    items = plan_items(options.items, options.defects, urls, other_urls, options.seed)
    rng = np.random.default_rng(options.seed + 1)
    blank = np.full_like(render_qr(urls[0]), 255)
    labels = [
        blank
        if item.text is None
        else label_with_defects(render_qr(item.text), rng, options.defects)
        for item in items
    ]
    texts = [item.text or f"(no label {n})" for n, item in enumerate(items)]
    for item, label in zip(items, labels, strict=True):
        if item.text is not None:
            # Readable = the best decoder reads it lying still on a carton.
            item.readable = item.text in {
                r.text for r in decode_image(np.pad(label, 20, constant_values=200))
            }

    speed = options.rate / 60.0 * PITCH  # belt, camera pixels per second
    step = max(1, round(speed / options.fps))
    fps = speed / step
    eye = PhotoEye()
    item_positions: dict[int, float] = {}
    belt = {"position": 0.0}
    label_px = blank.shape[0]
    eye_x = -200.0
    exit_x = WIDTH + label_px / 2 + CARTON_MARGIN
    reject_at = exit_x - eye_x + 400.0  # the reject point, 400 px past the camera's view
    plc = PlcActuator(lambda: belt["position"], item_positions, reject_at)
    triggered = 0
    conveyor: SyntheticConveyor | None = None
    lighting = np.random.default_rng(options.seed + 2)
    gains = np.clip(1.0 + np.cumsum(lighting.normal(0, 0.01, 100_000)), 0.8, 1.15)

    def on_frame(index: int, position: float) -> None:
        nonlocal triggered
        belt["position"] = position
        assert conveyor is not None
        while triggered < len(items) and conveyor.center_position(triggered, eye_x) <= position:
            at = conveyor.center_position(triggered, eye_x)
            item_positions[triggered + 1] = at
            if options.noise_on_serial and triggered % 50 == 25:
                eye.noise(b"\x00\xffgarbage\r\n")
            eye.trigger(at)
            triggered += 1

    conveyor = SyntheticConveyor(
        texts,
        fps=fps,
        step=step,
        pitch=PITCH,
        seed=options.seed,
        realtime=options.realtime,
        labels=labels,
        gain=(lambda i: float(gains[i % len(gains)])) if options.defects != "none" else None,
        on_frame=on_frame,
    )
    codes_csv = workdir / "codes.csv"
    codes_csv.write_text("url\n" + "\n".join(urls) + "\n", encoding="utf-8")
    settings = EdgeSettings(
        station_id=STATION["station_id"],
        mqtt_url=hub.mqtt_url,
        topic_prefix=hub.topic_prefix,
        outbox_path=workdir / "line-outbox.sqlite3",
        source="sim",
        decoder=options.decoder,
        sim=SimCameraSettings(codes_csv=codes_csv, realtime=options.realtime),
        work_order=WorkOrderSettings(
            id=f"WO-LINE-{batch_id}",
            sku=PRODUCT["sku"],
            lot=f"LOT-{batch_id}",
            gtin="0" + PRODUCT["gtin"],
            shift="A",
        ),
        line=LineSettings(
            photo_eye=eye.url, plc=plc.url, eye_x=eye_x, exit_x=exit_x, reject_at=reject_at
        ),
    )
    verdicts: dict[int, Verdict] = {}
    lock = threading.Lock()

    def on_verdict(verdict: Verdict) -> None:
        with lock:
            verdicts[verdict.item] = verdict

    agent = EdgeAgent(settings, conveyor, on_verdict=on_verdict)
    started = time.monotonic()
    try:
        agent.start()
        if not agent.wait_finished(options.timeout):
            raise TimeoutError(f"the line did not finish within {options.timeout} s")
        seconds = time.monotonic() - started
        drained = agent.wait_drained(options.timeout)
        counters = agent.counters()
        reconciliation = agent.reconciliation()
    finally:
        agent.stop()
        eye.close()
        time.sleep(0.1)  # the PLC's last lines
        plc.close()

    outcome: Counter[str] = Counter()
    for n, item in enumerate(items, start=1):
        verdict = verdicts.get(n)
        expected = EXPECTED[item.kind]
        decided = verdict.reason if verdict is not None else "undecided"
        pushed = n in plc.rejected and not plc.rejected[n].late
        outcome["items"] += 1
        read = verdict is not None and item.text is not None and item.text in verdict.reads
        if item.kind == "good":
            outcome["good"] += 1
            outcome["readable"] += item.readable
            outcome["read"] += read
            outcome["read_of_readable"] += read and item.readable
            if not read:
                outcome["no_read"] += 1
        if verdict is not None and any(t != item.text for t in verdict.reads):
            outcome["false_reads"] += 1
        if expected == "good":
            # An unread good item is pushed off (no_read): a read failure, counted above.
            if read and (pushed or decided != "good"):
                outcome["rejected_wrongly"] += 1
        elif pushed and decided != "good":
            outcome["rejected_correctly"] += 1
            if decided != expected:  # e.g. a duplicated label too damaged to read: no_read
                outcome["other_reason"] += 1
        else:
            outcome["missed_rejects"] += 1
            log.warning("item %s (%s) decided %s, pushed off %s", n, item.kind, decided, pushed)
    commissioned = {v.code for v in verdicts.values() if v.good and v.code is not None}
    lost, doubled = _hub_check(database, batch_id, commissioned)
    summary: dict[str, Any] = {
        "items": outcome["items"],
        "good": outcome["good"],
        "read": outcome["read"],
        "readable": outcome["readable"],
        "read_of_readable": outcome["read_of_readable"],
        "no_read": outcome["no_read"],
        "false_reads": outcome["false_reads"],
        "rejected_correctly": outcome["rejected_correctly"],
        "rejected_wrongly": outcome["rejected_wrongly"],
        "missed_rejects": outcome["missed_rejects"],
        "rejected_for_another_reason": outcome["other_reason"],
        "lost_events": lost,
        "duplicated_events": doubled,
        "fps": round(counters.frames / seconds, 1) if seconds > 0 else 0.0,
        "rate": options.rate,
        "defects": options.defects,
        "rejects": counters.rejects,
        "late_rejects": counters.late_rejects,
        "serial_garbage": counters.serial_garbage,
        "frames": counters.frames,
        "drained": drained,
        "seconds": round(seconds, 2),
        "reconciliation": reconciliation,
    }
    return summary


def _hub_check(database: Path | None, batch_id: int, commissioned: set[str]) -> tuple[int, int]:
    """(lost, duplicated): codes the station commissioned that the hub does not hold as
    commissioned, and commission events the hub applied more than once for one code."""
    if database is None:
        return 0, 0
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        serials = {
            row[0]
            for row in db.execute(
                "SELECT serial FROM codes WHERE batch_id = ? AND state != 'generated'", (batch_id,)
            )
        }
        applied = Counter(
            json.loads(row[0])["code"]
            for row in db.execute(
                "SELECT payload FROM events WHERE type = 'commission' AND outcome = 'applied'"
            )
        )
    finally:
        db.close()
    lost = sum(1 for url in commissioned if url.rsplit("/", 1)[-1] not in serials)
    doubled = sum(count - 1 for count in applied.values() if count > 1)
    return lost, doubled

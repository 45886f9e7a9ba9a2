"""The warehouse PDA simulated: the real app core (scan session, SQLite store, sync) against a
live hub. Orders are imported from an ERP CSV; codes are commissioned and cases packed by a
simulated line over MQTT; the PDA scans (with mistakes on request), optionally while the hub
is unreachable, completes every order, and syncs. A second device tries a case the first one
shipped, to show the conflict.

``yima-sim pda --orders N [--offline] [--mistakes] --json``
"""

from __future__ import annotations

import csv
import io
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from pda_app.client import HubClient, HubRefused, HubUnavailable
from pda_app.controller import hub_resolver
from pda_app.core import PdaCoreError, ScanSession
from pda_app.store import Store
from pda_app.sync import Syncer
from protocols.broker import BrokerAddress
from protocols.messages import MAX_BATCH_EVENTS, Ack, AggregateEvent, CommissionEvent, EventBatch
from protocols.topics import Topics
from simulators.hubproc import RunningHub, start_hub

PRODUCTS: tuple[dict[str, Any], ...] = (
    {"sku": "PDA-TEA", "name": "龙井茶 Longjing tea", "gtin": None},
    {"sku": "PDA-WINE", "name": "黄酒 Yellow wine", "gtin": None},
    {"sku": "PDA-BEER", "name": "啤酒 Beer (in no order)", "gtin": None},
)
DEALER: dict[str, Any] = {
    "code": "D-PDA-1",
    "name": "杭州经销商 Hangzhou dealer",
    "region": "浙江 Zhejiang",
}
STATION: dict[str, Any] = {
    "station_id": "pda-sim-line",
    "line": "包装线 Packing line",
    "site": "Warehouse",
}
CASE_SIZE = 4
WAREHOUSE_USER = ("wh-sim", "warehouse sim password")


@dataclass
class PdaOptions:
    orders: int = 3
    offline: bool = False
    mistakes: bool = False
    hub_url: str | None = None
    token: str | None = None
    workdir: Path | None = None


@dataclass
class OrderStock:
    number: str
    cases: list[tuple[str, list[str]]]  # (case, items) per TEA case
    loose_tea: list[str]
    wine: list[str]
    spare: str  # a TEA item the order has no room for


class SimLine:
    """Commissions codes and packs cases over MQTT, waiting for the hub's acks."""

    def __init__(self, hub: RunningHub) -> None:
        self.topics = Topics(hub.topic_prefix)
        self.address = BrokerAddress.parse(hub.mqtt_url)
        self._pending: set[str] = set()
        self._rejected: list[str] = []
        self._done = threading.Condition()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"pda-sim-{uuid.uuid4().hex[:8]}"
        )
        self._client.on_message = self._on_ack
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *_a: subscribed.set()
        self._client.connect(self.address.host, self.address.port)
        self._client.loop_start()
        self._client.subscribe(self.topics.ack(STATION["station_id"]), qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("the broker did not confirm the ack subscription")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_ack(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        ack = Ack.parse(bytes(message.payload))
        with self._done:
            self._pending.difference_update(ack.all_ids)
            self._rejected.extend(f"{r.id}: {r.reason}" for r in ack.rejected)
            self._done.notify_all()

    def send(self, events: list[CommissionEvent | AggregateEvent], timeout: float = 60) -> None:
        for start in range(0, len(events), MAX_BATCH_EVENTS):
            part = tuple(events[start : start + MAX_BATCH_EVENTS])
            with self._done:
                self._pending.update(e.id for e in part)
            batch = EventBatch(STATION["station_id"], datetime.now(UTC), part)
            self._client.publish(self.topics.events(STATION["station_id"]), batch.to_json(), qos=1)
        deadline = time.monotonic() + timeout
        with self._done:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self._pending)} line events not acknowledged")
                self._done.wait(left)
            if self._rejected:
                raise RuntimeError(f"the hub refused line events: {self._rejected[:3]}")

    def commission(self, urls: list[str], sku: str) -> None:
        now = datetime.now(UTC)
        self.send([CommissionEvent(str(uuid.uuid4()), now, u, sku=sku) for u in urls])

    def pack(self, case: str, items: list[str]) -> None:
        self.send([AggregateEvent(str(uuid.uuid4()), datetime.now(UTC), case, tuple(items))])


BATCHES: list[int] = []


def _codes(admin: HubClient, sku: str, count: int, kind: str = "item") -> list[str]:
    batch = admin.request("POST", "/api/v1/batches", {"sku": sku, "count": count, "kind": kind})
    BATCHES.append(int(batch["id"]))
    text = admin.text(f"/api/v1/batches/{batch['id']}/export")
    return [row["url"] for row in csv.DictReader(io.StringIO(text))]


def _setup(admin: HubClient) -> None:
    records: tuple[tuple[str, dict[str, Any]], ...] = (
        *(("/api/v1/products", p) for p in PRODUCTS),
        ("/api/v1/stations", STATION),
        ("/api/v1/dealers", DEALER),
        (
            "/api/v1/users",
            {"username": WAREHOUSE_USER[0], "password": WAREHOUSE_USER[1], "role": "warehouse"},
        ),
    )
    for path, body in records:
        try:
            admin.request("POST", path, body)
        except HubRefused as exc:
            if exc.status != 409:
                raise


def _stock(admin: HubClient, line: SimLine, numbers: list[str]) -> list[OrderStock]:
    """Per order: two TEA cases of CASE_SIZE, three loose TEA items, two WINE items (all
    commissioned, the cases packed); the order asks for 2 cases + 2 loose TEA and 2 WINE."""
    n = len(numbers)
    per = 2 * CASE_SIZE + 3  # two cases, two loose items, one spare (for an over-scan)
    cases = _codes(admin, "PDA-TEA", 2 * n, "case")
    tea = _codes(admin, "PDA-TEA", per * n)
    wine = _codes(admin, "PDA-WINE", 2 * n)
    line.commission(cases + tea, "PDA-TEA")
    line.commission(wine, "PDA-WINE")
    stock = []
    for i, number in enumerate(numbers):
        items = tea[i * per : (i + 1) * per]
        packed = []
        for c in range(2):
            inner = items[c * CASE_SIZE : (c + 1) * CASE_SIZE]
            line.pack(cases[2 * i + c], inner)
            packed.append((cases[2 * i + c], inner))
        loose, spare = items[2 * CASE_SIZE : 2 * CASE_SIZE + 2], items[-1]
        stock.append(OrderStock(number, packed, loose, wine[2 * i : 2 * i + 2], spare))
    return stock


def _import(admin: HubClient, numbers: list[str]) -> None:
    rows = ["order,dealer,region,sku,quantity,notes,assigned_to"]
    for number in numbers:
        rows.append(f"{number},{DEALER['code']},,PDA-TEA,{2 * CASE_SIZE + 2},模拟 ERP,")
        rows.append(f"{number},{DEALER['code']},,PDA-WINE,2,模拟 ERP,")
    admin.upload("/api/v1/orders/import", "\n".join(rows).encode(), "text/csv")


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@dataclass
class PdaSummary:
    orders: int
    scans: int
    results: dict[str, int]
    shipped_codes: int
    synced: bool
    lost_scans: int
    conflicts: int
    order_states: dict[str, str]
    offline_phase: bool
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__, seconds=round(self.seconds, 2))


def run_pda(options: PdaOptions, say: Callable[[str], None] = print) -> PdaSummary:
    started = time.monotonic()
    BATCHES.clear()
    with _workdir(options) as workdir, _hub(options, workdir) as hub:
        admin = hub.client
        _setup(admin)
        login = HubClient(hub.url, "").request(
            "POST",
            "/api/v1/login",
            {"username": WAREHOUSE_USER[0], "password": WAREHOUSE_USER[1]},
        )
        online = HubClient(hub.url, login["token"])
        tag = uuid.uuid4().hex[:6].upper()
        numbers = [f"SO-{tag}-{i + 1:03d}" for i in range(options.orders)]
        line = SimLine(hub)
        try:
            stock = _stock(admin, line, numbers)
            beer = _codes(admin, "PDA-BEER", 1)
            line.commission(beer, "PDA-BEER")
        finally:
            line.close()
        never_read = _codes(admin, "PDA-TEA", 1)
        _import(admin, numbers)
        say(f"imported {len(numbers)} orders; stock commissioned and packed")

        store = Store(workdir / "pda-1.sqlite3")
        offline_client = HubClient(_closed_port(), login["token"], timeout=2)
        syncer = Syncer(store, offline_client if options.offline else online, "pda-1")
        device = offline_client if options.offline else online
        sessions = {
            n: ScanSession(
                store.save_order(online.download(n)), store, resolve=hub_resolver(device, n)
            )
            for n in numbers
        }
        # A second device with an order of its own (an ERP order for the same dealer).
        second = Store(workdir / "pda-2.sqlite3")
        extra = f"SO-{tag}-X"
        admin.request(
            "POST",
            "/api/v1/orders",
            {
                "orders": [
                    {
                        "number": extra,
                        "dealer": DEALER["code"],
                        "lines": [{"sku": "PDA-TEA", "quantity": CASE_SIZE}],
                    }
                ]
            },
        )
        session2 = ScanSession(
            second.save_order(online.download(extra)), second, resolve=hub_resolver(online, extra)
        )
        other = Syncer(second, online, "pda-2")
        if options.offline:
            say("the hub is unreachable for the PDA from now on")
        for index, order in enumerate(stock):
            session = sessions[order.number]
            plan = [order.cases[0][0], order.cases[1][0], *order.loose_tea, *order.wine]
            if options.mistakes:
                plan[1:1] = [
                    beer[0],  # wrong product
                    order.cases[0][1][0],  # an item inside a case already scanned: duplicate
                    order.cases[0][0],  # the same case again
                    never_read[0],  # printed, never read on the line
                    "4006381333931",  # a foreign barcode
                    order.cases[0][0][:-2] + "ZZ",  # a misread serial
                ]
                plan.append(order.spare)  # over quantity
            for text in plan:
                session.feed(text)
                session.acknowledge()
            _try_sync(syncer)
            if index == len(stock) - 1:
                # Device 2 scans a case device 1 has scanned but not shipped yet: whoever
                # reached the hub first keeps it, the other is told which order won.
                session2.feed(order.cases[1][0])
                session2.acknowledge()
                _try_sync(other)
                _try_sync(syncer)
                session.reload()
            try:
                session.complete(None if session.tally.complete else "lost to another device")
            except PdaCoreError as exc:
                say(f"{order.number}: {exc}")
            _try_sync(syncer)
        if options.offline:
            say(f"{store.pending_count()} entries waited offline; the hub is back")
            syncer = Syncer(store, online, "pda-1")
            _try_sync(syncer)
        for session in sessions.values():
            session.reload()
        session2.reload()
        conflicts = syncer.conflicts + other.conflicts
        numbers_all = [*numbers, extra]
        scans = [s for n in numbers for s in store.scans(n)] + second.scans(extra)
        # The final word: the hub's where it disagreed (a conflict), else the device's.
        results = Counter(
            s.hub_result if s.hub_result == "conflict" else s.result.value for s in scans
        )
        counted = sum(sum(s.counts.values()) for n in numbers for s in store.scans(n) if s.counted)
        on_hub = 0
        order_states = {}
        counted += sum(sum(s.counts.values()) for s in second.scans(extra) if s.counted)
        for number in numbers_all:
            summary = admin.request("GET", f"/api/v1/orders/{number}")
            order_states[number] = summary["state"]
            on_hub += sum(line["scanned"] for line in summary["lines"])
        shipped = _shipped_codes(admin)
        pending = store.pending_count() + second.pending_count()
        store.close()
        second.close()
        return PdaSummary(
            orders=len(numbers),
            scans=len(scans),
            results=dict(sorted(results.items())),
            shipped_codes=shipped,
            synced=pending == 0,
            lost_scans=pending + max(0, counted - on_hub),
            conflicts=conflicts,
            order_states=order_states,
            offline_phase=options.offline,
            seconds=time.monotonic() - started,
        )


def _try_sync(syncer: Syncer) -> None:
    with suppress(HubUnavailable):
        syncer.sync_once()


def _shipped_codes(admin: HubClient) -> int:
    total = 0
    for batch_id in BATCHES:
        info = admin.request("GET", f"/api/v1/batches/{batch_id}")
        total += int(info["states"].get("shipped", 0))
    return total


@contextmanager
def _hub(options: PdaOptions, workdir: Path) -> Iterator[RunningHub]:
    if options.hub_url is None:
        with start_hub(workdir / "hub") as hub:
            yield hub
        return
    if not options.token:
        raise ValueError("--hub-url needs --token (an admin token of that hub)")
    info = HubClient(options.hub_url, options.token).request("GET", "/api/v1/info")
    yield RunningHub(
        url=options.hub_url.rstrip("/"),
        public_base=info["public_base"],
        mqtt_url=info["mqtt_url"],
        token=options.token,
        topic_prefix=info["topic_prefix"],
        process=None,
    )


@contextmanager
def _workdir(options: PdaOptions) -> Iterator[Path]:
    if options.workdir is not None:
        options.workdir.mkdir(parents=True, exist_ok=True)
        yield options.workdir
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="yima-sim-pda-") as tmp:
        yield Path(tmp)

"""Consumers, honest and not, against a real hub over HTTP (``yima-sim consumers``).

Genuine behaviour: every shipped code's buyer verifies it from home (a network of its own in
the province the code was shipped to); some re-scan later, some travel and re-scan far away
with the same phone, some hand the product to family at home who scan it too. Attacks:

* clones — a genuine code copied onto fakes sold in other provinces, each fake verified by a
  different buyer (until the hub says ``suspicious``);
* leaked — codes commissioned at the factory but never shipped, verified by consumers;
* bots — serial enumeration: random serials and one-symbol changes of real ones;
* griefers — one person scanning a genuine code over and over, before and after shipping,
  clearing cookies each time, to get it flagged for its real buyer.

Time is compressed: everything happens within a minute or two of the hub's clock.

The hub runs as a real ``yima-hub serve`` subprocess (SQLite, embedded broker) with the
brand's IP-range table set to one private /16 per province, so scans are placed by IP. The
run ends with one JSON line of counts (see :class:`Summary`).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import queue
import random
import statistics
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocols.broker import BrokerAddress
from protocols.codes import SERIAL_ALPHABET, parse_code
from protocols.messages import Ack, CommissionEvent, EventBatch
from protocols.topics import Topics
from simulators.hubproc import RunningHub, start_hub

ACCUSING = frozenset(
    {"distinct_clients", "impossible_travel", "after_end_of_life", "denied_earlier_scan"}
)
PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.44"
)
# Province division codes used by the simulation, one private /16 each (10.<n>.0.0/16).
PROVINCES = ("330000", "310000", "440000", "650000", "110000", "510000", "210000", "460000")
HOME = PROVINCES[0]  # the codes ship to Zhejiang
STATION = "sim-consumers-st"


@dataclass(frozen=True)
class ConsumerOptions:
    codes: int = 300
    clones: int = 20
    leaked: int = 10
    bots: int = 2
    griefers: int = 5
    guesses_per_bot: int = 100
    seed: int | None = None
    workdir: Path | None = None


@dataclass
class Summary:
    genuine_scans: int = 0
    false_alerts: int = 0
    genuine_warned: int = 0  # genuine scans answered "suspicious"
    clones: int = 0
    clones_detected: int = 0  # by their third fake scan
    scans_to_detect: float | None = None  # median fake scans before the first alert
    leaked: int = 0
    leaked_flagged: int = 0  # answered not_activated
    guesses_tried: int = 0
    guesses_accepted: int = 0
    guesses_refused_429: int = 0
    griefed_codes: int = 0
    griefed_codes_flagged: int = 0
    targets_met: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> bool:
        self.targets_met = (
            self.griefed_codes_flagged == 0
            and self.false_alerts <= 0.001 * max(1, self.genuine_scans)
            and self.clones_detected >= 0.95 * self.clones
            and self.leaked_flagged == self.leaked
            and self.guesses_accepted == 0
        )
        return self.targets_met


class _Addresses:
    """Unique /24 networks per person, inside a province's /16."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def new(self, province: str) -> str:
        n = self._next.get(province, 0)
        self._next[province] = n + 1
        index = PROVINCES.index(province)
        return f"10.{index + 1}.{n % 256}.{1 + n // 256 % 250}"


@dataclass
class _Person:
    address: str
    device: str = field(default_factory=lambda: uuid.uuid4().hex[:16])


class _Scanner:
    def __init__(self, session: aiohttp.ClientSession, hub: RunningHub) -> None:
        self.session = session
        self.hub = hub
        self.gate = asyncio.Semaphore(16)

    async def scan(self, url: str, person: _Person) -> tuple[int, dict[str, Any]]:
        path = url.split("://", 1)[1].split("/", 1)[1]
        async with (
            self.gate,
            self.session.get(
                f"{self.hub.url}/{path}",
                headers={
                    "Accept": "application/json",
                    "User-Agent": PHONE,
                    "X-Forwarded-For": person.address,
                    "Cookie": f"yima_d={person.device}",
                },
            ) as response,
        ):
            body = await response.json(content_type=None)
            return response.status, body


def commission_codes(
    hub: RunningHub, urls: Sequence[str], replay: Sequence[CommissionEvent] | None = None
) -> list[CommissionEvent]:
    """Commission ``urls`` as station STATION would, waiting for the hub's acks; returns the
    events (pass them back as ``replay`` to send the very same events again, as a station
    that never saw its acks does)."""
    now = datetime.now(UTC)
    sent = (
        list(replay)
        if replay is not None
        else [
            CommissionEvent(
                id=str(uuid.uuid4()), at=now, code=u, work_order="WO-SIM", lot="LOT-SIM"
            )
            for u in urls
        ]
    )
    topics = Topics(hub.topic_prefix)
    address = BrokerAddress.parse(hub.mqtt_url)
    acks: queue.Queue[Ack] = queue.Queue()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"sim-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
    )
    client.on_message = lambda _c, _u, msg: acks.put(Ack.parse(bytes(msg.payload)))
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        result, _mid = client.subscribe(topics.ack(STATION), qos=1)
        if result != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"subscribe failed: {result}")
        pending: set[str] = set()
        for start in range(0, len(sent), 400):
            events = tuple(sent[start : start + 400])
            pending |= {e.id for e in events}
            batch = EventBatch(station_id=STATION, sent_at=datetime.now(UTC), events=events)
            client.publish(topics.events(STATION), batch.to_json(), qos=1)
        while pending:
            ack = acks.get(timeout=60)
            if ack.rejected:
                raise RuntimeError(f"commissioning refused: {ack.rejected[:3]}")
            pending -= set(ack.all_ids)
    finally:
        client.loop_stop()
        client.disconnect()
    return sent


def _guesses(real: Sequence[str], base: str, count: int, rng: random.Random) -> list[str]:
    out = []
    for i in range(count):
        if i % 2 == 0 or not real:
            serial = rng.choice(SERIAL_ALPHABET[:16]) + "".join(
                rng.choice(SERIAL_ALPHABET) for _ in range(19)
            )
        else:
            serial = rng.choice(real)
            pos = 1 + rng.randrange(len(serial) - 1)
            symbol = rng.choice(SERIAL_ALPHABET.replace(serial[pos], ""))
            serial = serial[:pos] + symbol + serial[pos + 1 :]
        out.append(f"{base}/c/{serial}")
    return out


async def _simulate(hub: RunningHub, options: ConsumerOptions) -> Summary:
    rng = random.Random(options.seed)
    summary = Summary()
    admin = {"Authorization": f"Bearer {hub.token}"}
    addresses = _Addresses()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:

        async def call(method: str, path: str, body: Any = None) -> Any:
            async with session.request(method, hub.url + path, json=body, headers=admin) as r:
                text = await r.text()
                if r.status >= 400 and r.status != 409:
                    raise RuntimeError(f"{method} {path}: {r.status} {text[:300]}")
                return json.loads(text) if r.content_type == "application/json" else text

        await call(
            "POST",
            "/api/v1/products",
            {"sku": "SIM-WINE", "name": "模拟酒", "gtin": "06901234567892"},
        )
        await call(
            "POST", "/api/v1/stations", {"station_id": STATION, "line": "L1", "site": "Plant A"}
        )
        await call(
            "POST", "/api/v1/dealers", {"code": "SIM-D", "name": "浙江经销商", "region": HOME}
        )
        total = options.codes + options.leaked
        batch = await call("POST", "/api/v1/batches", {"sku": "SIM-WINE", "count": total})
        if batch.get("status") not in (None, "done"):
            while batch.get("status") not in ("done", "failed", "cancelled"):
                await asyncio.sleep(0.2)
                batch = await call("GET", f"/api/v1/batches/{batch['id']}")
        exported = await call("GET", f"/api/v1/batches/{batch['id']}/export")
        urls = [row["url"] for row in csv.DictReader(io.StringIO(exported))]
        await asyncio.to_thread(commission_codes, hub, urls)
        genuine, leaked = urls[: options.codes], urls[options.codes :]
        scanner = _Scanner(session, hub)
        griefed = genuine[: options.griefers]
        cloned = rng.sample(
            genuine[options.griefers :], min(options.clones, len(genuine) - options.griefers)
        )
        serial = {u: parse_code(u).serial.value for u in urls}

        async def grief(url: str) -> None:
            network = addresses.new(HOME)
            for _ in range(10):  # a new cookie every time, the same network
                await scanner.scan(url, _Person(network))

        await asyncio.gather(*(grief(u) for u in griefed))
        for start in range(0, len(genuine), 5000):
            await call(
                "POST",
                "/api/v1/shipments",
                {
                    "id": str(uuid.uuid4()),
                    "order": f"SO-SIM-{start}",
                    "dealer": "SIM-D",
                    "region": HOME,
                    "codes": genuine[start : start + 5000],
                },
            )
        await asyncio.gather(*(grief(u) for u in griefed))

        warned: set[str] = set()

        async def buyer(url: str) -> None:
            me = _Person(addresses.new(HOME))
            scans = [me]
            roll = rng.random()
            if roll < 0.25:
                scans.append(me)  # checks again later
            elif roll < 0.30 and url not in griefed:
                # Travel re-scans happen hours later in life; the simulation compresses time
                # to seconds, so a far re-scan right after a griefer's scans would be an
                # impossible travel. Travellers are simulated on codes nobody else scanned.
                scans.append(_Person(addresses.new(rng.choice(PROVINCES[1:])), me.device))
            elif roll < 0.40:
                scans.append(_Person(me.address))  # family at home, another phone
            for person in scans:
                status, body = await scanner.scan(url, person)
                if status != 200:
                    raise RuntimeError(f"genuine scan answered {status}: {body}")
                summary.genuine_scans += 1
                if body["verdict"] == "suspicious":
                    summary.genuine_warned += 1
                    warned.add(url)

        await asyncio.gather(*(buyer(u) for u in genuine))

        detected_after: list[int] = []

        async def clone(url: str) -> None:
            for n in range(1, 6):
                fake_buyer = _Person(addresses.new(rng.choice(PROVINCES[1:])))
                _status, body = await scanner.scan(url, fake_buyer)
                if body.get("verdict") == "suspicious":
                    detected_after.append(n)
                    return
            detected_after.append(99)

        await asyncio.gather(*(clone(u) for u in cloned))
        summary.clones = len(cloned)
        summary.clones_detected = sum(1 for n in detected_after if n <= 3)
        summary.scans_to_detect = statistics.median(detected_after) if detected_after else None

        async def leak(url: str) -> None:
            _status, body = await scanner.scan(url, _Person(addresses.new(rng.choice(PROVINCES))))
            if body.get("verdict") == "not_activated":
                summary.leaked_flagged += 1

        await asyncio.gather(*(leak(u) for u in leaked))
        summary.leaked = len(leaked)

        async def bot() -> None:
            me = _Person(f"172.20.{rng.randrange(256)}.{rng.randrange(1, 255)}")
            for url in _guesses(
                [serial[u] for u in genuine], hub.public_base, options.guesses_per_bot, rng
            ):
                status, body = await scanner.scan(url, me)
                summary.guesses_tried += 1
                if status == 429:
                    summary.guesses_refused_429 += 1
                elif body.get("verdict") != "unknown":
                    summary.guesses_accepted += 1

        await asyncio.gather(*(bot() for _ in range(options.bots)))

        alerts: list[dict[str, Any]] = []
        before = None
        while True:
            page = await call(
                "GET", "/api/v1/alerts?limit=1000" + (f"&before_id={before}" if before else "")
            )
            alerts.extend(page["alerts"])
            if len(page["alerts"]) < 1000:
                break
            before = page["alerts"][-1]["id"]
        honest = {serial[u] for u in genuine} - {serial[u] for u in (*cloned, *griefed)}
        accusing = [a for a in alerts if a["kind"] in ACCUSING]
        summary.false_alerts = sum(1 for a in accusing if a["serial"] in honest)
        griefed_serials = {serial[u] for u in griefed}
        flagged = {a["serial"] for a in accusing if a["serial"] in griefed_serials}
        flagged |= {serial[u] for u in griefed if u in warned}
        summary.griefed_codes = len(griefed)
        summary.griefed_codes_flagged = len(flagged)
    summary.check()
    return summary


def run_consumers(options: ConsumerOptions) -> Summary:
    """Start a hub, run the simulation against it, stop the hub."""
    if min(options.codes, options.clones, options.leaked, options.bots, options.griefers) < 0:
        raise ValueError("counts must not be negative")
    if options.codes < options.clones + options.griefers:
        raise ValueError(
            f"--codes {options.codes} must be at least --clones + --griefers "
            f"({options.clones + options.griefers})"
        )
    env = {
        "YIMA_HUB_TRUSTED_PROXIES": json.dumps(["127.0.0.1/32"]),
        "YIMA_HUB_IP_REGIONS": json.dumps(
            {f"10.{i + 1}.0.0/16": code for i, code in enumerate(PROVINCES)}
        ),
    }
    with tempfile.TemporaryDirectory(prefix="yima-sim-consumers-") as tmp:
        workdir = options.workdir or Path(tmp)
        with start_hub(workdir / "hub", env=env) as hub:
            return asyncio.run(_simulate(hub, options))

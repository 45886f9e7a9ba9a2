"""Ingest benchmark: codes/s from MQTT into the hub's SQLite, counted when the hub's acks arrive.

A real ``yima-hub serve`` subprocess (embedded broker, SQLite file) ingests commission events
that this process publishes as a station would. Each configuration commissions a fresh batch;
the time runs from the first publish to the ack naming the last event. The baseline, run in
the same process, publishes one event per message; the others batch events as a station does.

The raw baseline (issue 5's hint) runs in the same process too: a plain sqlite3 UPDATE of the
same number of codes by serial (unique index, random order, WAL, synchronous=FULL, one
commit), i.e. the database work alone with no MQTT, JSON, checks or event log.

    .venv/bin/python bench/bench_ingest.py --codes 20000
    .venv/bin/python bench/bench_ingest.py --codes 20000 --database-url postgresql+asyncpg://127.0.0.1/<db>
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import string
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocols.broker import BrokerAddress
from protocols.messages import Ack, CommissionEvent, EventBatch, new_event_id, now
from protocols.topics import Topics
from simulators.hubproc import RunningHub, start_hub

STATION = "bench-station"


def run_once(hub: RunningHub, urls: list[str], per_message: int) -> float:
    topics = Topics(hub.topic_prefix)
    ids = [new_event_id() for _ in urls]
    pending = set(ids)
    done = threading.Event()
    lock = threading.Lock()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        ack = Ack.parse(msg.payload)
        if ack.rejected:
            raise SystemExit(f"hub rejected events: {ack.rejected[:3]}")
        with lock:
            pending.difference_update(ack.all_ids)
            if not pending:
                done.set()

    address = BrokerAddress.parse(hub.mqtt_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{new_event_id()[:8]}")
    client.on_message = on_message
    client.connect(address.host, address.port)
    client.subscribe(topics.ack(STATION), qos=1)
    client.loop_start()
    time.sleep(0.3)
    events = [
        CommissionEvent(id=i, at=now(), code=url, sku="BENCH", lot="L1")
        for i, url in zip(ids, urls, strict=True)
    ]
    started = time.perf_counter()
    for offset in range(0, len(events), per_message):
        batch = EventBatch(STATION, now(), tuple(events[offset : offset + per_message]))
        client.publish(topics.events(STATION), batch.to_json(), qos=1)
    if not done.wait(timeout=600):
        raise SystemExit(f"timed out with {len(pending)} events unacknowledged")
    elapsed = time.perf_counter() - started
    client.loop_stop()
    client.disconnect()
    return elapsed


def raw_update_rate(workdir: Path, count: int) -> float:
    """codes/s of a bare sqlite3 UPDATE ... WHERE serial=? over ``count`` random serials."""
    alphabet = string.digits + string.ascii_uppercase
    serials = list({"".join(random.choices(alphabet, k=20)) for _ in range(count)})
    db = sqlite3.connect(workdir / "raw.sqlite3")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE codes (id INTEGER PRIMARY KEY, serial TEXT UNIQUE, state TEXT)")
    db.executemany("INSERT INTO codes (serial, state) VALUES (?, 'generated')", ((s,) for s in serials))
    db.commit()
    random.shuffle(serials)
    started = time.perf_counter()
    db.executemany(
        "UPDATE codes SET state='commissioned' WHERE serial=? AND state='generated'",
        ((s,) for s in serials),
    )
    db.commit()
    elapsed = time.perf_counter() - started
    db.close()
    return len(serials) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--codes", type=int, default=20000, help="codes per batched run")
    parser.add_argument("--baseline-codes", type=int, default=2000, help="codes, 1 per message")
    parser.add_argument("--database-url", help="the hub's database (default: SQLite in a temp dir)")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_hub(Path(tmp), database_url=args.database_url) as hub,
    ):
        admin = hub.client
        admin.request("POST", "/api/v1/products", {"sku": "BENCH", "name": "bench"})
        admin.request("POST", "/api/v1/stations", {"station_id": STATION, "line": "bench"})
        results = []
        for per_message, count in ((1, args.baseline_codes), (100, args.codes), (500, args.codes)):
            batch = admin.request("POST", "/api/v1/batches", {"sku": "BENCH", "count": count})
            csv_text = hub.export_csv(batch["id"])
            urls = [line.split(",")[2] for line in csv_text.splitlines()[1:]]
            elapsed = run_once(hub, urls, per_message)
            results.append((per_message, count, elapsed, count / elapsed))
        raw = raw_update_rate(Path(tmp), args.codes)
    base_rate = results[0][3]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}, "
        f"database {'PostgreSQL' if args.database_url else 'SQLite'}"
    )
    print("| events per message | codes | seconds | codes/s | vs 1 per message |")
    print("|---:|---:|---:|---:|---:|")
    for per_message, count, elapsed, rate in results:
        print(
            f"| {per_message} | {count} | {elapsed:.2f} | {rate:,.0f} | {rate / base_rate:.1f}x |"
        )
    best = max(rate for *_, rate in results)
    print(f"raw sqlite3 UPDATE by serial: {raw:,.0f} codes/s; best hub rate / raw = {best / raw:.3f}")


if __name__ == "__main__":
    main()

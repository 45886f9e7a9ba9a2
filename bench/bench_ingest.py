"""Ingest benchmark: codes/s from MQTT into the hub's SQLite, counted when the hub's acks arrive.

A real ``yima-hub serve`` subprocess (embedded broker, SQLite file) ingests commission events
that this process publishes as a station would. Each configuration commissions a fresh batch;
the time runs from the first publish to the ack naming the last event. The baseline, run in
the same process, publishes one event per message; the others batch events as a station does.

    .venv/bin/python bench/bench_ingest.py --codes 20000
"""

from __future__ import annotations

import argparse
import platform
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--codes", type=int, default=20000, help="codes per batched run")
    parser.add_argument("--baseline-codes", type=int, default=2000, help="codes, 1 per message")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, start_hub(Path(tmp)) as hub:
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
    base_rate = results[0][3]
    print(
        f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    print("| events per message | codes | seconds | codes/s | vs 1 per message |")
    print("|---:|---:|---:|---:|---:|")
    for per_message, count, elapsed, rate in results:
        print(
            f"| {per_message} | {count} | {elapsed:.2f} | {rate:,.0f} | {rate / base_rate:.1f}x |"
        )


if __name__ == "__main__":
    main()

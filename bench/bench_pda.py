"""PDA benchmark: judging one scan against a 10,000-code order, downloading that order, and
syncing 10,000 scans, against a real ``yima-hub serve`` subprocess (SQLite, embedded broker).

Targets (issue 7): one scan ≤ 2 ms; download of a 10,000-code order ≤ 2 s; sync of 10,000 scans
≤ 3 s. Baselines run in the same process: for a scan, ``protocols.parse_code`` of the same
text alone (the format check every scan needs anyway); for download and sync, ``GET
/healthz`` round trips, one per HTTP request the measured step made (the fixed cost of
talking to the hub at all).

    .venv/bin/python bench/bench_pda.py --codes 10000
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from pda_app.client import HubClient
from pda_app.core import ScanSession
from pda_app.store import Store
from pda_app.sync import BATCH, Syncer
from protocols.codes import parse_code
from simulators.hubproc import start_hub
from simulators.pda import DEALER, WAREHOUSE_USER, SimLine, _codes, _setup


def timed(fn, *args):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codes", type=int, default=10_000)
    args = parser.parse_args()
    n = args.codes
    load = os.getloadavg()
    print(
        f"machine: nproc {os.cpu_count()}, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, load average {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-pda-") as tmp:
        work = Path(tmp)
        with start_hub(work / "hub") as hub:
            admin = hub.client
            _setup(admin)
            started = time.perf_counter()
            urls = _codes(admin, "PDA-TEA", n)
            line = SimLine(hub)
            try:
                line.commission(urls, "PDA-TEA")
            finally:
                line.close()
            print(
                f"setup: {n} codes generated and commissioned in "
                f"{time.perf_counter() - started:.1f} s"
            )
            admin.request(
                "POST",
                "/api/v1/orders",
                {
                    "orders": [
                        {
                            "number": "BENCH-1",
                            "dealer": DEALER["code"],
                            "lines": [{"sku": "PDA-TEA", "quantity": n}],
                        }
                    ]
                },
            )
            token = HubClient(hub.url, "").request(
                "POST",
                "/api/v1/login",
                {"username": WAREHOUSE_USER[0], "password": WAREHOUSE_USER[1]},
            )["token"]
            client = HubClient(hub.url, token, timeout=60)

            def healthz(count: int) -> float:
                started = time.perf_counter()
                for _ in range(count):
                    client.request("GET", "/healthz")
                return time.perf_counter() - started

            # Download ------------------------------------------------------------------
            downloads = []
            for _ in range(3):
                seconds, data = timed(client.download, "BENCH-1")
                downloads.append(seconds)
            assert len(data["codes"]) == n, len(data["codes"])
            download = statistics.median(downloads)
            base = healthz(1)
            print(
                f"download of a {n}-code order: median {download:.3f} s of 3 "
                f"(target 2 s); baseline GET /healthz {base * 1000:.1f} ms; "
                f"ratio {download / base:.0f}x"
            )

            # One scan ------------------------------------------------------------------
            store = Store(work / "pda.sqlite3")
            order = store.save_order(data)
            session = ScanSession(order, store)
            texts = urls[:2000]
            judge_times, feed_times, parse_times = [], [], []
            for text in texts:
                t0 = time.perf_counter()
                parse_code(text)
                parse_times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                ref = parse_code(text)
                session.tally.judge(ref, order.known.get(ref.serial.value))
                judge_times.append(time.perf_counter() - t0)
            for text in texts:
                t0 = time.perf_counter()
                outcome = session.feed(text)
                feed_times.append(time.perf_counter() - t0)
                assert outcome.ok, outcome

            def ms(values: list[float], q: float) -> float:
                return sorted(values)[int(q * (len(values) - 1))] * 1000

            ratio = statistics.median(judge_times) / statistics.median(parse_times)
            print(
                f"one scan against {n} codes ({len(texts)} scans): judge p50 "
                f"{ms(judge_times, 0.5):.3f} ms p99 {ms(judge_times, 0.99):.3f} ms; with the "
                f"durable SQLite write (scan + outbox, synchronous=FULL) p50 "
                f"{ms(feed_times, 0.5):.3f} ms p99 {ms(feed_times, 0.99):.3f} ms "
                f"(target 2 ms); baseline parse_code p50 {ms(parse_times, 0.5):.3f} ms; "
                f"ratio judge/parse {ratio:.1f}x"
            )
            for text in urls[len(texts) :]:
                session.feed(text)
            assert store.pending_count() == n

            # Sync ----------------------------------------------------------------------
            syncer = Syncer(store, client, "bench-pda")
            seconds, state = timed(syncer.sync_once)
            requests = -(-n // BATCH)
            base = healthz(requests)
            summary = admin.request("GET", "/api/v1/orders/BENCH-1")
            assert state.pending == 0 and summary["lines"][0]["scanned"] == n, summary
            print(
                f"sync of {n} scans ({requests} requests of <= {BATCH}): {seconds:.3f} s "
                f"(target 3 s); baseline {requests} x GET /healthz {base * 1000:.1f} ms; "
                f"ratio {seconds / base:.0f}x"
            )
            store.close()


if __name__ == "__main__":
    main()

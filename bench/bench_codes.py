"""Code generation benchmark: serials and PINs per second, bulk versus one code at a time;
then (``--store``) the hub's generation job, CSV and XLSX exports on SQLite against raw
sqlite3 / csv baselines run in the same process, and the longest wait of a concurrent writer
(a consumer's scan) while the job runs.

Bulk is what a code generation job does: ``CodeKey.seal_range`` then ``CodeKey.pins`` over the
whole batch. The baseline, run in the same process on a smaller count and extrapolated per
code, is the naive loop a first implementation would write: ``seal`` and ``pin`` per code.

    .venv/bin/python bench/bench_codes.py --codes 1000000 --baseline 20000
    .venv/bin/python bench/bench_codes.py --store --codes 1000000 --xlsx-codes 80000
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import os
import platform
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from protocols.codes import CodeKey, CodeKind, Keyring

T = TypeVar("T")


def best_of(repeat: int, run: Callable[[], T]) -> tuple[float, T]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return best, result


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=1_000_000, help="codes per bulk run")
    parser.add_argument("--baseline", type=int, default=20_000, help="codes in the naive loop")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    parser.add_argument(
        "--store", action="store_true", help="measure the database job and exports instead"
    )
    parser.add_argument("--xlsx-codes", type=int, default=80_000, help="codes in the XLSX export")
    parser.add_argument(
        "--dir", type=Path, default=Path("var/bench-codes"), help="work dir (deleted first)"
    )
    args = parser.parse_args()
    if args.store:
        asyncio.run(store(args.codes, args.xlsx_codes, args.dir))
        return

    key = CodeKey(1, hashlib.sha256(b"bench secret").digest())
    kind, start = CodeKind.ITEM, 1_000_000
    key.pins(key.seal_range(kind, start, 1000))  # warm up cipher contexts and tables

    seal_s, serials = best_of(args.repeat, lambda: key.seal_range(kind, start, args.codes))
    pins_s, pins = best_of(args.repeat, lambda: key.pins(serials))

    def naive() -> list[tuple[str, str]]:
        out = []
        for counter in range(start, start + args.baseline):
            serial = key.seal(kind, counter)
            out.append((serial.value, key.pin(serial)))
        return out

    naive_s, pairs = best_of(args.repeat, naive)
    # Same codes either way, or the comparison means nothing.
    assert pairs == list(zip(serials[: args.baseline], pins[: args.baseline], strict=True))
    assert len(set(serials)) == args.codes

    bulk_rate = args.codes / (seal_s + pins_s)
    naive_rate = args.baseline / naive_s
    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()}")
    row("bulk   seal_range", args.codes, seal_s)
    row("bulk   pins", args.codes, pins_s)
    row("bulk   seal+pins", args.codes, seal_s + pins_s)
    row("naive  seal+pin", args.baseline, naive_s)
    print(f"naive: 1,000,000 codes would take {1_000_000 / naive_rate:.1f} s")
    print(f"ratio  bulk / naive: {bulk_rate / naive_rate:.1f}x")


def row(label: str, count: int, seconds: float) -> None:
    print(f"{label:<18} {count:>9,} codes: {seconds:7.3f} s  {count / seconds:>11,.0f} codes/s")


def raw_baseline(path: Path, count: int) -> tuple[float, float]:
    """Issue 5's baselines: sqlite3 executemany of ``count`` random 20-character serials
    into a unique index (unsorted), then a csv.writer dump of that table."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    rng = secrets.SystemRandom()
    rows = [("".join(rng.choices(alphabet, k=20)),) for _ in range(count)]
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE serials (id INTEGER PRIMARY KEY, serial TEXT UNIQUE)")
    started = time.perf_counter()
    db.executemany("INSERT INTO serials (serial) VALUES (?)", rows)
    db.commit()
    insert_s = time.perf_counter() - started
    started = time.perf_counter()
    with (path.parent / "raw.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(("id", "serial"))
        writer.writerows(db.execute("SELECT id, serial FROM serials ORDER BY id"))
    dump_s = time.perf_counter() - started
    db.close()
    return insert_s, dump_s


async def store(count: int, xlsx_count: int, work: Path) -> None:
    from hub import batches, exports, registry
    from hub.db import create_engine, sessionmaker, upgrade
    from hub.jobs import generate

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)  # noqa: ASYNC240 - before anything runs
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()}")
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    insert_s, dump_s = raw_baseline(work / "raw.sqlite3", count)
    url = f"sqlite+aiosqlite:///{work / 'hub.sqlite3'}"
    await upgrade(url)
    engine = create_engine(url)
    sessions = sessionmaker(engine)
    keyring = Keyring.from_secrets({0: secrets.token_bytes(32)}, 0)
    async with sessions() as session, session.begin():
        await registry.create_product(session, "BENCH", "Bench", None)

    async def job(n: int, contended: bool) -> tuple[int, float]:
        async with sessions() as session, session.begin():
            batch = await generate.create_job(
                session, keyring, generate.JobSpec(sku="BENCH", count=n)
            )
        assert await generate.claim(sessions, batch.id, "bench", 60)
        started = time.perf_counter()
        status = await generate.run_job(
            sessions,
            keyring,
            batch.id,
            "bench",
            target_s=generate.TARGET_S,
            contended=(lambda: True) if contended else None,
        )
        assert status == "done", status
        return batch.id, time.perf_counter() - started

    batch_id, job_s = await job(count, contended=False)

    # A consumer's scan is one small write: measure how long each waits while a job runs.
    waits: list[float] = []
    stop = threading.Event()

    def scanner() -> None:
        db = sqlite3.connect(work / "hub.sqlite3", timeout=30)
        db.execute("CREATE TABLE IF NOT EXISTS bench_scans (at REAL)")
        db.commit()
        while not stop.is_set():
            started = time.perf_counter()
            db.execute("INSERT INTO bench_scans VALUES (?)", (started,))
            db.commit()
            waits.append(time.perf_counter() - started)
            time.sleep(0.02)
        db.close()

    thread = threading.Thread(target=scanner)
    thread.start()
    _, contended_s = await job(count, contended=True)
    stop.set()
    thread.join()

    started = time.perf_counter()
    async with sessions() as session:
        with (work / "export.csv").open("wb") as out:
            chunks = batches.export_csv(session, keyring, batch_id, "https://y.example.cn")
            n = await exports.write_csv(chunks, out)
    csv_s = time.perf_counter() - started
    assert n == count
    started = time.perf_counter()
    async with sessions() as session:
        rows = batches.export_rows(
            session, keyring, batch_id, "https://y.example.cn", 1, xlsx_count
        )
        n = await exports.write_xlsx(batches.EXPORT_COLUMNS, rows, work / "export.xlsx")
    xlsx_s = time.perf_counter() - started
    assert n == xlsx_count
    await engine.dispose()
    print(f"raw sqlite3 executemany, {count:,} random serials, unique index: {insert_s:.2f} s")
    print(f"raw csv.writer dump of that table:                         {dump_s:.2f} s")
    print(
        f"hub job, {count:,} item codes (no consumers):  {job_s:.2f} s  "
        f"= {job_s / insert_s:.2f}x the raw insert"
    )
    print(
        f"hub job while a consumer writes every 20 ms: {contended_s:.2f} s; that writer's "
        f"longest wait {max(waits) * 1000:.0f} ms, "
        f"median {sorted(waits)[len(waits) // 2] * 1000:.1f} ms over {len(waits)} writes"
    )
    print(
        f"CSV export, {count:,} codes (7 columns):       {csv_s:.2f} s  "
        f"= {csv_s / dump_s:.2f}x the raw dump"
    )
    print(f"XLSX export, {xlsx_count:,} codes:              {xlsx_s:.2f} s")
    end = os.getloadavg()
    print(f"load average at end: {end[0]:.2f} {end[1]:.2f} {end[2]:.2f}")


if __name__ == "__main__":
    main()

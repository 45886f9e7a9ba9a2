"""Verification benchmark: consumer scans/s and latency of the real hub against a bare aiohttp
handler, both measured with wrk in the same run on the same machine.

The database gets ``--codes`` codes (bulk-inserted, not through the API); ``--activated`` of
them are shipped. wrk (32 connections by default) requests random activated codes with
``Accept: application/json`` and a phone's user agent, so every request is a recorded scan
(count UPDATE + scan-log row, through the group-commit writer). The baseline is a bare aiohttp
handler returning a small JSON verdict, started as its own process like the hub.

    .venv/bin/python bench/bench_verify.py --codes 1000000
    .venv/bin/python bench/bench_verify.py --codes 10000000 --db-dir /tmp/yima-bench
    .venv/bin/python bench/bench_verify.py --codes 1000000 \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1/yima_bench

A SQLite database is kept in ``--db-dir`` (one file per code count) and reused by later runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text

from hub.db import upgrade_sync
from hub.models import Code, CodeBatch, Dealer, Order, Product, Station
from protocols.codes import CodeKey, CodeKind
from simulators.hubproc import start_hub

GTIN = "06901234567892"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.44"
SECRET_FILE = "bench-secret.bin"  # noqa: S105 - a file name

BARE_APP = textwrap.dedent(
    """
    import sys
    from aiohttp import web

    async def verdict(request):
        return web.json_response({"verdict": "genuine", "reason": "activated",
                                  "serial": request.match_info["serial"]})

    app = web.Application()
    app.router.add_get("/01/{gtin}/21/{serial}", verdict)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
    """
)

WRK_SCRIPT = textwrap.dedent(
    """
    local paths = {}
    for line in io.lines("%s") do paths[#paths + 1] = line end
    wrk.headers["Accept"] = "application/json"
    wrk.headers["User-Agent"] = "%s"
    request = function()
      return wrk.format("GET", paths[math.random(#paths)])
    end
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sync_url(url: str) -> str:
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


def fill(url: str, secret: bytes, codes: int, activated: int) -> list[str]:
    """Create the schema and ``codes`` codes; return the serials of the activated ones."""
    upgrade_sync(url)
    key = CodeKey(0, secret)
    now = datetime.now(UTC)
    chunk = 200_000
    if url.startswith("sqlite"):
        engine = create_engine(sync_url(url))
    else:
        return asyncio.run(_fill_pg(url, key, now, codes, activated))
    with engine.begin() as conn:
        existing = conn.execute(text("SELECT count(*) FROM codes")).scalar_one()
        if existing == codes:
            rows = conn.execute(
                text("SELECT serial FROM codes WHERE state = 'shipped' LIMIT :n"),
                {"n": activated},
            )
            return [r[0] for r in rows]
        if existing:
            raise SystemExit(f"{url} holds {existing} codes, expected 0 or {codes}")
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        master(conn, now, codes)
    started = time.monotonic()
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA synchronous=OFF")
        for start in range(0, codes, chunk):
            count = min(chunk, codes - start)
            serials = key.seal_range(CodeKind.ITEM, start, count)
            conn.execute(insert(Code), code_rows(serials, start, activated, now))
            print(f"  {start + count:,} codes ({time.monotonic() - started:.0f} s)", flush=True)
    engine.dispose()
    return key.seal_range(CodeKind.ITEM, 0, activated)


def master(conn: Any, now: datetime, codes: int) -> None:
    conn.execute(
        insert(Product),
        [{"id": 1, "sku": "BENCH", "name": "基准酒", "gtin": GTIN, "created_at": now}],
    )
    conn.execute(
        insert(Station),
        [{"id": "st-1", "line": "L1", "site": "Plant A", "status": "online", "created_at": now}],
    )
    conn.execute(
        insert(Dealer),
        [{"id": 1, "code": "D1", "name": "Dealer", "region": "33", "created_at": now}],
    )
    conn.execute(
        insert(Order),
        [
            {
                "id": 1,
                "number": "SO-1",
                "dealer_id": 1,
                "region": "33",
                "state": "shipped",
                "created_at": now,
            }
        ],
    )
    conn.execute(
        insert(CodeBatch),
        [
            {
                "id": 1,
                "product_id": 1,
                "kind": "item",
                "key_id": 0,
                "counter_start": 0,
                "count": codes,
                "with_pin": False,
                "created_at": now,
            }
        ],
    )


def code_rows(
    serials: list[str], start: int, activated: int, now: datetime
) -> list[dict[str, Any]]:
    rows = []
    for i, serial in enumerate(serials, start):
        shipped = i < activated
        rows.append(
            {
                "id": i + 1,
                "serial": serial,
                "batch_id": 1,
                "seq": i + 1,
                "kind": "item",
                "product_id": 1,
                "state": "shipped" if shipped else "commissioned",
                "lot": "LOT-1",
                "station_id": "st-1",
                "commissioned_at": now,
                "order_id": 1 if shipped else None,
                "dealer_id": 1 if shipped else None,
                "region": "33" if shipped else None,
                "activated_at": now if shipped else None,
                "scan_count": 0,
            }
        )
    return rows


async def _fill_pg(url: str, key: CodeKey, now: datetime, codes: int, activated: int) -> list[str]:
    import asyncpg  # the hub's PostgreSQL driver

    dsn = url.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(dsn)
    try:
        existing = await conn.fetchval("SELECT count(*) FROM codes")
        if existing == codes:
            rows = await conn.fetch(
                "SELECT serial FROM codes WHERE state = 'shipped' LIMIT $1", activated
            )
            return [r[0] for r in rows]
        if existing:
            raise SystemExit(f"{url} holds {existing} codes, expected 0 or {codes}")
        await conn.execute(
            "INSERT INTO products (id, sku, name, gtin, created_at) "
            "VALUES (1,'BENCH','基准酒',$1,$2)",
            GTIN,
            now,
        )
        await conn.execute(
            "INSERT INTO stations (id, line, site, status, created_at) "
            "VALUES ('st-1','L1','Plant A','online',$1)",
            now,
        )
        await conn.execute(
            "INSERT INTO dealers (id, code, name, region, created_at) "
            "VALUES (1,'D1','Dealer','33',$1)",
            now,
        )
        await conn.execute(
            "INSERT INTO orders (id, number, dealer_id, region, state, created_at) "
            "VALUES (1,'SO-1',1,'33','shipped',$1)",
            now,
        )
        await conn.execute(
            "INSERT INTO code_batches (id, product_id, kind, key_id, counter_start, count, "
            "with_pin, created_at) VALUES (1,1,'item',0,0,$1,false,$2)",
            codes,
            now,
        )
        columns = [
            "id",
            "serial",
            "batch_id",
            "seq",
            "kind",
            "product_id",
            "state",
            "lot",
            "station_id",
            "commissioned_at",
            "order_id",
            "dealer_id",
            "region",
            "activated_at",
            "scan_count",
        ]
        chunk = 200_000
        for start in range(0, codes, chunk):
            count = min(chunk, codes - start)
            rows = code_rows(key.seal_range(CodeKind.ITEM, start, count), start, activated, now)
            await conn.copy_records_to_table(
                "codes", records=[tuple(r[c] for c in columns) for r in rows], columns=columns
            )
            print(f"  {start + count:,} codes", flush=True)
        await conn.execute("ANALYZE codes")
    finally:
        await conn.close()
    return key.seal_range(CodeKind.ITEM, 0, activated)


def wrk(
    base: str, paths_file: Path, seconds: int, connections: int, threads: int
) -> dict[str, float]:
    script = paths_file.with_suffix(".lua")
    script.write_text(WRK_SCRIPT % (paths_file, PHONE))
    out = subprocess.run(
        [
            shutil.which("wrk") or "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    result = {"rps": rps}
    for pct in ("50", "90", "99"):
        m = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)", out)
        if m:
            value = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
            result[f"p{pct}"] = value
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non2xx"] = float(errors.group(1)) if errors else 0.0
    return result


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--codes", type=int, default=1_000_000)
    parser.add_argument("--activated", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--database-url", help="PostgreSQL instead of a SQLite file")
    parser.add_argument("--db-dir", type=Path, default=Path(tempfile.gettempdir()) / "yima-bench")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (./yima DEBS has it)")
    args.db_dir.mkdir(parents=True, exist_ok=True)
    secret_path = args.db_dir / SECRET_FILE
    if not secret_path.exists():
        secret_path.write_bytes(secrets.token_bytes(32))
    secret = secret_path.read_bytes()
    url = args.database_url or f"sqlite+aiosqlite:///{args.db_dir / f'codes-{args.codes}.sqlite3'}"
    print(f"filling {url.split('@')[-1]} with {args.codes:,} codes ...", flush=True)
    serials = fill(url, secret, args.codes, args.activated)

    workdir = Path(tempfile.mkdtemp(prefix="yima-bench-verify-"))
    paths = workdir / "paths.txt"
    paths.write_text("".join(f"/01/{GTIN}/21/{s}\n" for s in random.sample(serials, len(serials))))

    print(
        f"machine: nproc {os.cpu_count()}, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, load average {os.getloadavg()}",
        flush=True,
    )
    results: dict[str, dict[str, float]] = {}
    port = free_port()
    bare = subprocess.Popen([sys.executable, "-c", BARE_APP, str(port)])
    try:
        wait_port(port)
        wrk(f"http://127.0.0.1:{port}", paths, 2, args.connections, args.threads)  # warm-up
        results["bare aiohttp handler"] = wrk(
            f"http://127.0.0.1:{port}", paths, args.seconds, args.connections, args.threads
        )
    finally:
        bare.terminate()
        bare.wait()
    # One client (wrk on 127.0.0.1) makes every request: lift the per-client limits.
    os.environ["YIMA_HUB_SCAN_BURST"] = "100000000"
    os.environ["YIMA_HUB_SCANS_PER_HOUR"] = "100000000"
    with start_hub(workdir / "hub", database_url=url, code_secret=secret) as hub:
        assert hub.process is not None
        single = wrk(hub.url, paths, args.seconds, 1, 1)
        results["hub verification, 1 connection"] = single
        results["hub verification"] = wrk(
            hub.url, paths, args.seconds, args.connections, args.threads
        )
        results["hub verification"]["rss_mb"] = rss_mb(hub.process.pid)
    load = os.getloadavg()
    print(
        f"\ncodes: {args.codes:,} ({url.split(':')[0]}), wrk -t{args.threads} "
        f"-c{args.connections} -d{args.seconds}s, load average after: {load}"
    )
    print("| | requests/s | p50 ms | p90 ms | p99 ms | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {r['rps']:,.0f} | {r.get('p50', float('nan')):.2f} | "
            f"{r.get('p90', float('nan')):.2f} | {r.get('p99', float('nan')):.2f} | "
            f"{r['non2xx']:.0f} |"
        )
    ratio = results["hub verification"]["rps"] / results["bare aiohttp handler"]["rps"]
    print(
        f"\nratio hub / bare = {ratio:.2f}; hub RSS {results['hub verification']['rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()

"""Code generation benchmark: serials and PINs per second, bulk versus one code at a time.

Bulk is what a code generation job does: ``CodeKey.seal_range`` then ``CodeKey.pins`` over the
whole batch. The baseline, run in the same process on a smaller count and extrapolated per
code, is the naive loop a first implementation would write: ``seal`` and ``pin`` per code.

    .venv/bin/python bench/bench_codes.py --codes 1000000 --baseline 20000
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from protocols.codes import CodeKey, CodeKind

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
    args = parser.parse_args()

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


if __name__ == "__main__":
    main()

"""Decode benchmark: pyzbar vs zxing-cpp on synthetic 1280x720 frames with 4 QR codes each.

Runs on one core: the process pins itself with os.sched_setaffinity(0, {cpu}) (same effect
as ``taskset -c <cpu>``) and calls cv2.setNumThreads(1). Both backends run interleaved in the
same process, alternating which goes first each round, because shared machines are noisy;
the ratio is taken per round (paired) and its median reported.

    .venv/bin/python bench/bench_decode.py                  # print the table
    .venv/bin/python bench/bench_decode.py --write-results  # also update bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_agent.decode import BACKENDS, decode_image
from simulators.camera import (
    HEIGHT,
    WIDTH,
    Placement,
    demo_urls,
    label_size,
    render_frame,
)

SECTION = "## Decode: pyzbar vs zxing-cpp"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
CODES_PER_FRAME = 4


@dataclass
class Sample:
    frames: list[np.ndarray]
    expected: list[set[str]]


def make_frames(count: int, seed: int) -> Sample:
    """``count`` frames, each with 4 labels in its own quarter of the width, at random heights."""
    rng = np.random.default_rng(seed)
    frames, expected = [], []
    for n in range(count):
        texts = demo_urls(CODES_PER_FRAME, start=n * CODES_PER_FRAME)
        side = label_size(texts[0])
        slot = WIDTH // CODES_PER_FRAME
        placements = [
            Placement(
                text,
                int(i * slot + 20 + rng.integers(0, slot - side - 40)),
                int(rng.integers(30, HEIGHT - side - 30)),
            )
            for i, text in enumerate(texts)
        ]
        frames.append(render_frame(placements, seed=seed + n))
        expected.append(set(texts))
    return Sample(frames, expected)


def run_once(backend: str, sample: Sample) -> tuple[float, int]:
    """Seconds to decode every frame, and how many expected codes were read."""
    found = 0
    start = time.perf_counter()
    for image, want in zip(sample.frames, sample.expected, strict=True):
        reads = decode_image(image, backend)
        found += len(want & {r.text for r in reads})
    return time.perf_counter() - start, found


def machine() -> str:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"`nproc` {os.cpu_count()}, CPU {model}, Python {platform.python_version()}, "
        f"OpenCV {cv2.__version__}; load average {load} when the run started "
        "(other jobs share the machine)"
    )


def versions() -> str:
    from importlib.metadata import version

    return f"pyzbar {version('pyzbar')}, zxing-cpp {version('zxing-cpp')}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40, help="frames per round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--cpu", type=int, default=0, help="the one core to pin to")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write-results", action="store_true", help=f"update {RESULTS.name}")
    args = parser.parse_args(argv)

    started_on = machine()
    os.sched_setaffinity(0, {args.cpu})
    cv2.setNumThreads(1)
    sample = make_frames(args.frames, args.seed)
    total_codes = sum(len(e) for e in sample.expected)
    backends = list(BACKENDS)
    for backend in backends:  # warm-up: imports, first-call allocations
        run_once(backend, Sample(sample.frames[:2], sample.expected[:2]))

    fps: dict[str, list[float]] = {b: [] for b in backends}
    read: dict[str, int] = dict.fromkeys(backends, 0)
    for round_no in range(args.rounds):
        order = backends if round_no % 2 == 0 else backends[::-1]
        for backend in order:
            seconds, found = run_once(backend, sample)
            fps[backend].append(len(sample.frames) / seconds)
            read[backend] += found
    ratios = [z / p for z, p in zip(fps["zxingcpp"], fps["pyzbar"], strict=True)]

    rows = [
        "| backend | frames/s (median) | min | max | ms/frame | read rate |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for backend in backends:
        med = statistics.median(fps[backend])
        rate = read[backend] / (total_codes * args.rounds)
        rows.append(
            f"| {backend} | {med:.1f} | {min(fps[backend]):.1f} | {max(fps[backend]):.1f} "
            f"| {1000 / med:.1f} | {rate:.1%} |"
        )
    ratio = statistics.median(ratios)
    summary = (
        f"Ratio zxing-cpp / pyzbar (median of {args.rounds} paired rounds): **{ratio:.2f}x** "
        f"(range {min(ratios):.2f}-{max(ratios):.2f})."
    )
    table = "\n".join(rows)
    print(table)
    print()
    print(summary)

    if args.write_results:
        given = shlex.join(argv if argv is not None else sys.argv[1:])
        command = f"taskset -c {args.cpu} .venv/bin/python bench/bench_decode.py {given}"
        body = "\n".join(
            [
                SECTION,
                "",
                f"Command: `{command.strip()}` (the script also pins itself to CPU "
                f"{args.cpu} with `os.sched_setaffinity` and calls `cv2.setNumThreads(1)`).",
                "",
                f"Machine: {started_on}; {versions()}.",
                "",
                f"Input: {args.frames} grayscale {WIDTH}x{HEIGHT} frames from "
                f"`simulators.camera.render_frame`, {CODES_PER_FRAME} QR codes each "
                "(65-character URLs, version 5, 4 px modules, blur and noise); "
                f"{args.rounds} rounds, backends interleaved.",
                "",
                table,
                "",
                summary,
                "",
            ]
        )
        write_section(RESULTS, SECTION, body)
        print(f"\nwrote {RESULTS}")
    return 0


def write_section(path: Path, heading: str, body: str) -> None:
    """Replace the section under ``heading`` (up to the next ``## ``), keeping the others."""
    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        joined = text if text.endswith("\n") else text + "\n"
        path.write_text(joined + ("\n" if not joined.endswith("\n\n") else "") + body)
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    path.write_text("".join(lines[:start]) + body + ("\n" + tail if tail else ""))


if __name__ == "__main__":
    raise SystemExit(main())

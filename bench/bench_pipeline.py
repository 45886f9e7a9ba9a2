"""Station pipeline vs raw decoder on the same 1280x720 frames, one core; station memory.

Frames: the synthetic conveyor (``simulators.camera.SyntheticConveyor``), QR labels, pre-
rendered so rendering is not measured. Raw: ``decode_image(frame, "zxingcpp",
symbologies=["QRCODE"])`` per frame. Pipeline: ``EdgeAgent.process_frame`` (decode, tracker or
line decisions, events written to the SQLite outbox with synchronous=FULL; the uplink is a
stub, so the network is not measured) — in tracker mode, and in line mode with photo-eye
triggers given directly. Interleaved rounds; the paired ratio pipeline / raw is reported.

Memory: ``yima-edge run`` as its own process on the synthetic conveyor (300 cartons, as fast
as it decodes, no broker reachable so every event stays in the outbox); peak resident memory
(VmHWM) read from /proc.

    .venv/bin/python bench/bench_pipeline.py [--frames 150 --rounds 5] [--write-results]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_decode import machine, versions, write_section
from edge_agent.agent import EdgeAgent
from edge_agent.decode import decode_image
from edge_agent.interfaces import Frame, UplinkCounters
from edge_agent.settings import EdgeSettings
from simulators.camera import SyntheticConveyor, demo_urls

SECTION = "## Station pipeline vs raw decoder, and memory"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


class StubUplink:
    def __init__(self, *args: Any) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def notify(self) -> None:
        pass

    def counters(self) -> UplinkCounters:
        return UplinkCounters()


def frames(count: int) -> list[Frame]:
    conveyor = SyntheticConveyor(demo_urls(200), fps=60, step=107, pitch=320)
    out = []
    for _ in range(count):
        frame = conveyor.read()
        assert frame is not None
        out.append(frame)
    return out


def raw(images: list[Frame]) -> float:
    start = time.perf_counter()
    for f in images:
        decode_image(f.image, "zxingcpp", symbologies=["QRCODE"])
    return len(images) / (time.perf_counter() - start)


def pipeline(images: list[Frame], workdir: Path, line: bool, n: int) -> float:
    settings = EdgeSettings.model_validate(
        {
            "station_id": "bench",
            "outbox_path": workdir / f"outbox-{line}-{n}.sqlite3",
            "source": "bench",
            "work_order": {"id": "WO", "sku": "TEA", "lot": "L"},
            "line": {"eye_x": -200, "exit_x": 1400, "reject_at": 2600},
        }
    )
    agent = EdgeAgent(settings, NoSource(), StubUplink)
    if line:
        from edge_agent.line import LineGeometry, LineTracker

        agent.line = LineTracker(LineGeometry(-200, 1400, 2600))
    start = time.perf_counter()
    for i, f in enumerate(images):
        if line and i % 3 == 0:  # one carton per 320 px of belt at 107 px per frame
            agent._triggers.append(f.position)
        agent.process_frame(f)
    seconds = time.perf_counter() - start
    agent.stop()
    return len(images) / seconds


class NoSource:
    def read(self) -> None:
        return None

    def close(self) -> None:
        pass


def peak_memory(workdir: Path) -> float:
    """VmHWM (MB) of ``yima-edge run`` over 300 cartons with no reachable broker."""
    codes = workdir / "codes.csv"
    codes.write_text("url\n" + "\n".join(demo_urls(300, start=5000)) + "\n")
    config = workdir / "station.toml"
    config.write_text(
        'station_id = "mem"\nmqtt_url = "mqtt://127.0.0.1:9"\noutbox_path = "o.sqlite3"\n'
        'source = "sim"\n[work_order]\nid = "W"\nsku = "S"\nlot = "L"\n'
        '[sim]\ncodes_csv = "codes.csv"\nrealtime = false\n'
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_agent",
            "run",
            "--config",
            str(config),
            "--drain-timeout",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0.0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for row in status.read_text().splitlines():
                if row.startswith("VmHWM:"):
                    peak = max(peak, int(row.split()[1]) / 1024)
        except OSError:
            break
        time.sleep(0.2)
    return peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)
    started_on = machine()
    os.sched_setaffinity(0, {args.cpu})
    cv2.setNumThreads(1)
    images = frames(args.frames)
    results: dict[str, list[float]] = {"raw": [], "tracker": [], "line": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        raw(images[:5])
        for n in range(args.rounds):
            order = ["raw", "tracker", "line"] if n % 2 == 0 else ["line", "tracker", "raw"]
            for name in order:
                if name == "raw":
                    results[name].append(raw(images))
                else:
                    results[name].append(pipeline(images, work, name == "line", n))
        memory = peak_memory(work)
    rows = [
        "| run | frames/s (median) | min | max | pipeline / raw (median of paired rounds) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in results.items():
        ratios = [v / r for v, r in zip(values, results["raw"], strict=True)]
        rows.append(
            f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | "
            f"{max(values):.1f} | {statistics.median(ratios):.2f} |"
        )
    table = "\n".join(rows)
    print(table)
    print(f"peak resident memory of yima-edge run: {memory:.0f} MB")
    if args.write_results:
        given = shlex.join(argv if argv is not None else sys.argv[1:])
        body = "\n".join(
            [
                SECTION,
                "",
                f"Command: `.venv/bin/python bench/bench_pipeline.py {given}` (pinned to CPU "
                f"{args.cpu}, `cv2.setNumThreads(1)`).",
                "",
                f"Machine: {started_on}; {versions()}.",
                "",
                f"Input: {args.frames} pre-rendered 1280x720 grayscale conveyor frames (QR "
                "labels, 107 px of belt per frame: 1,200 items/min at 60 fps); "
                f"{args.rounds} interleaved rounds.",
                "",
                table,
                "",
                f"Peak resident memory (VmHWM) of `yima-edge run` on 300 synthetic cartons: "
                f"**{memory:.0f} MB** (target ≤ 250 MB).",
                "",
            ]
        )
        write_section(RESULTS, SECTION, body)
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

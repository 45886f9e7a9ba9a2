"""Read rate and false reads per symbology on the rendered decode test set.

The set is ``simulators.labels.decode_test_set()``: QR, DataMatrix (plain and GS1), Code 128
(plain and GS1-128) and EAN-13 labels with perspective, curvature, glare, low contrast,
focus and motion blur, noise, damage, partial cover, inverted print, small modules, and
pictures of three codes; deterministic for a seed. Nothing was tuned on any barcode
library's sample images.

Configurations: each raw library, the union of both raw libraries (reads merged, no
retries), and ``decode_image(image)`` (the union plus preprocessing retries). A read counts
when its text is printed in the picture; any other text is a false read.

    .venv/bin/python bench/bench_readrate.py                  # print the table
    .venv/bin/python bench/bench_readrate.py --write-results  # also update bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_decode import machine, versions, write_section
from edge_agent.decode import PRODUCT_SYMBOLOGIES, DecodeOptions, Decoder, Read, decode_image
from simulators.labels import SYMBOLOGIES, Sample, decode_test_set

SECTION = "## Decode: read rate on the rendered test set"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def configs() -> dict[str, Callable[[object], list[Read]]]:
    wanted = PRODUCT_SYMBOLOGIES
    union = Decoder(DecodeOptions(retry="never"))
    return {
        "zxing-cpp raw": lambda im: decode_image(im, "zxingcpp", symbologies=wanted),
        "pyzbar raw": lambda im: decode_image(
            im, "pyzbar", symbologies=[s for s in wanted if s != "DATAMATRIX"]
        ),
        "union of both raw": union.decode,
        "decode_image (union + retries)": decode_image,
    }


def measure(samples: list[Sample]) -> tuple[list[str], dict[str, dict[str, tuple[int, int, int]]]]:
    """Per configuration and symbology: (codes, read, false reads); and the table rows."""
    results: dict[str, dict[str, tuple[int, int, int]]] = {}
    seconds: dict[str, float] = {}
    for name, decode in configs().items():
        per: dict[str, list[int]] = {s: [0, 0, 0] for s in SYMBOLOGIES}
        start = time.perf_counter()
        for sample in samples:
            texts = {r.text for r in decode(sample.image)}
            want = set(sample.texts)
            row = per[sample.symbology]
            row[0] += len(want)
            row[1] += len(want & texts)
            row[2] += len(texts - want)
        seconds[name] = time.perf_counter() - start
        results[name] = {s: (v[0], v[1], v[2]) for s, v in per.items()}
    rows = [
        "| configuration | " + " | ".join(SYMBOLOGIES) + " | all | false reads | ms/picture |",
        "|---|" + "---:|" * (len(SYMBOLOGIES) + 3),
    ]
    for name, per_sym in results.items():
        cells = [f"{v[1] / v[0]:.1%}" for v in per_sym.values()]
        total = sum(v[0] for v in per_sym.values())
        read = sum(v[1] for v in per_sym.values())
        false = sum(v[2] for v in per_sym.values())
        ms = 1000 * seconds[name] / len(samples)
        rows.append(
            f"| {name} | " + " | ".join(cells) + f" | {read / total:.1%} | {false} | {ms:.1f} |"
        )
    return rows, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--rounds", type=int, default=2, help="times each recipe is drawn")
    parser.add_argument("--cpu", type=int, default=0, help="the one core to pin to")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)
    started_on = machine()
    os.sched_setaffinity(0, {args.cpu})
    cv2.setNumThreads(1)
    samples = decode_test_set(args.seed, rounds=args.rounds)
    rows, _ = measure(samples)
    table = "\n".join(rows)
    print(table)
    if args.write_results:
        given = shlex.join(argv if argv is not None else sys.argv[1:])
        per = {s: sum(1 for x in samples if x.symbology == s) for s in SYMBOLOGIES}
        codes = sum(len(x.texts) for x in samples)
        body = "\n".join(
            [
                SECTION,
                "",
                f"Command: `.venv/bin/python bench/bench_readrate.py {given}`".rstrip() + "` "
                f"(pinned to CPU {args.cpu}, `cv2.setNumThreads(1)`).",
                "",
                f"Machine: {started_on}; {versions()}.",
                "",
                f"Input: `simulators.labels.decode_test_set(seed={args.seed}, "
                f"rounds={args.rounds})`, {len(samples)} rendered 800x600 pictures "
                f"({', '.join(f'{k} {v}' for k, v in per.items())}), {codes} codes; 20 "
                "defect recipes (clean, perspective, curvature, glare, low contrast, blur, "
                "motion blur, noise, damage, partial cover, inverted, small modules, and "
                "combinations) plus pictures of three codes. Columns are read rates per "
                "symbology (pyzbar cannot read DataMatrix). Rendered, not photographed: "
                "DataMatrix, Code 128 and EAN-13 symbols come from zxing-cpp's writer (QR from "
                "segno), which may favour zxing-cpp's reader.",
                "",
                table,
                "",
            ]
        )
        body = body.replace("`` (pinned", "` (pinned")
        write_section(RESULTS, SECTION, body)
        print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

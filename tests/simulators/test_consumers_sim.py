"""yima-sim consumers: genuine buyers and attacks against a real hub meet the issue's targets."""

from __future__ import annotations

import json
import subprocess
import sys


def test_consumers_simulation_meets_the_targets() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulators",
            "consumers",
            "--codes",
            "60",
            "--clones",
            "6",
            "--leaked",
            "4",
            "--bots",
            "1",
            "--guesses",
            "30",
            "--griefers",
            "3",
            "--seed",
            "8",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:] + run.stdout[-2000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["genuine_scans"] >= 60
    assert summary["false_alerts"] == 0
    assert summary["genuine_warned"] == 0
    assert (summary["clones"], summary["clones_detected"]) == (6, 6)
    assert summary["scans_to_detect"] <= 3
    assert (summary["leaked"], summary["leaked_flagged"]) == (4, 4)
    assert summary["guesses_tried"] == 30
    assert summary["guesses_accepted"] == 0
    assert summary["guesses_refused_429"] >= 15  # the enumeration limit answered
    assert (summary["griefed_codes"], summary["griefed_codes_flagged"]) == (3, 0)
    assert summary["targets_met"] is True


def test_consumers_simulation_refuses_impossible_counts() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "simulators", "consumers", "--codes", "3", "--clones", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1
    assert "--codes 3 must be at least --clones + --griefers (10)" in run.stderr

"""``yima-sim pda`` as a user runs it: the real PDA core against a real ``yima-hub serve``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("offline", [False, True])
def test_yima_sim_pda_json_summary(tmp_path: Path, offline: bool) -> None:
    command = [sys.executable, "-m", "simulators", "pda", "--orders", "2", "--mistakes", "--json"]
    command += ["--workdir", str(tmp_path)] + (["--offline"] if offline else [])
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (summary["orders"], summary["synced"], summary["lost_scans"]) == (2, True, 0)
    assert summary["conflicts"] == 1
    results = summary["results"]
    # Per order: 2 cases + 2 loose TEA + 2 WINE ok; one of each mistake.
    assert results["bad_check"] == 2
    assert results["duplicate_in_order"] == 4
    assert results["over_quantity"] == 2
    assert results["conflict"] == 1
    if offline:
        # Offline the hub cannot be asked: a foreign product or a never-read label is unknown
        # (never counted); device 2 reached the hub first and won the case.
        assert results["unknown"] == 6
        assert summary["order_states"][next(iter(summary["order_states"]))] == "complete"
        assert list(summary["order_states"].values())[1] == "in_progress"
        assert summary["shipped_codes"] == 14
    else:
        assert (results["wrong_product"], results["not_commissioned"]) == (2, 2)
        assert list(summary["order_states"].values()) == ["complete", "complete", "open"]
        assert summary["shipped_codes"] == 28  # 2 x (2 cases + 8 items in them + 4 loose)
    assert summary["scans"] == sum(results.values())

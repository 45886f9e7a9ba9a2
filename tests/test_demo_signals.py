"""``./yima demo`` stopped by SIGTERM (a service manager, a closed terminal) cleans up like
Ctrl-C: its hub, the hub's broker and the temp folder are gone."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def processes_under(marker: Path) -> list[str]:
    """Command lines of running processes that mention ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if str(marker).encode() in cmdline:
            found.append(cmdline.decode(errors="replace"))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
async def test_demo_cleans_up_on_a_signal(tmp_path: Path, how: signal.Signals) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIMA_")}
    env["TMPDIR"] = str(tmp_path)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from simulators.cli import main; raise SystemExit(main(['plant']))",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        while True:
            line = await asyncio.wait_for(process.stdout.readline(), 120)
            assert line, "the demo ended before it was running"
            if b"genuine" in line:
                break
        assert any("hub" in c for c in processes_under(tmp_path))
        process.send_signal(how)
        assert await asyncio.wait_for(process.wait(), 60) == 130
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    for _ in range(50):
        if not processes_under(tmp_path):
            break
        await asyncio.sleep(0.1)
    assert processes_under(tmp_path) == []
    assert leftovers(tmp_path) == []


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith("yima-")]

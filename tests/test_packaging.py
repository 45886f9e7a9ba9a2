"""Each device installs only its part: the imports of each entry point stay inside its extra.

An edge box has no SQLAlchemy, aiohttp or Kivy; a PDA has no SQLAlchemy, aiohttp, OpenCV or
numpy (python-for-android must be able to install everything it imports); the hub needs no
OpenCV or decoder. Checked in a fresh interpreter by the modules each entry point loads.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HUB_ONLY = {"sqlalchemy", "aiohttp", "alembic", "asyncpg", "aiosqlite"}
EDGE_ONLY = {"cv2", "numpy", "pyzbar", "zxingcpp", "serial"}
KIVY = {"kivy"}


def loaded(*modules: str) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for m in {list(modules)!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(json.loads(out.stdout))


@pytest.mark.parametrize(
    ("modules", "forbidden"),
    [
        (["edge_agent.cli", "edge_agent.agent", "edge_agent.uplink"], HUB_ONLY | KIVY),
        (["pda_app.cli", "pda_app.client"], HUB_ONLY | EDGE_ONLY | KIVY | {"paho", "pydantic"}),
        (["hub.cli", "hub.web.app"], EDGE_ONLY | KIVY),
        (
            ["protocols.codes", "protocols.messages", "protocols.topics", "protocols.broker"],
            HUB_ONLY | EDGE_ONLY | KIVY | {"paho", "pydantic"},
        ),
    ],
)
def test_entry_points_stay_inside_their_extra(modules: list[str], forbidden: set[str]) -> None:
    assert loaded(*modules) & forbidden == set()


def test_console_scripts_point_at_main_functions() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {
        "yima-hub": "hub.cli:main",
        "yima-edge": "edge_agent.cli:main",
        "yima-pda": "pda_app.cli:main",
        "yima-sim": "simulators.cli:main",
    }
    extras = project["optional-dependencies"]
    assert not any("sqlalchemy" in d or "kivy" in d.lower() for d in extras["edge"])
    assert not any("sqlalchemy" in d or "aiohttp" in d for d in extras["pda"])
    for name in ("yima-hub", "yima-edge", "yima-pda", "yima-sim"):
        proc = subprocess.run(
            [str(Path(sys.executable).parent / name), "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert f"usage: {name}" in proc.stdout


def test_yima_runs_commands_where_it_was_called(tmp_path: Path) -> None:
    """``./yima yima-hub codes export 2 -o batch2.csv`` writes beside the caller, not into
    the repository."""
    result = subprocess.run(
        ["bash", str(ROOT / "yima"), "python", "-c", "import os; print(os.getcwd())"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path)

"""``yima-hub`` as an operator runs it: a real process, signals and exit codes."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import signal
import socket
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(
    r"^yima-hub listening on http://127\.0\.0\.1:(\d+) "
    r"\(printed URLs: http://127\.0\.0\.1:(\d+), MQTT: mqtt://127\.0\.0\.1:(\d+)\)$"
)


def hub_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIMA_HUB_")}
    env["YIMA_HUB_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}"
    env["YIMA_HUB_CODE_KEYS"] = json.dumps(
        {"0": base64.b64encode(secrets.token_bytes(32)).decode()}
    )
    env.update(extra)
    return env


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def get_json(url: str) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (our own test server)
        return response.status, json.loads(response.read())


async def test_serve_answers_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    stderr = (tmp_path / "stderr.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub",
        "serve",
        "--port",
        "0",
        cwd=ROOT,
        env=hub_env(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
        match = LISTENING.match(line)
        assert match, f"{line!r}; stderr: {(tmp_path / 'stderr.log').read_text()}"
        port, printed_port, mqtt_port = (int(g) for g in match.groups())
        assert port == printed_port != 0
        assert mqtt_port != 1883
        assert listening(mqtt_port)

        status, body = await asyncio.to_thread(get_json, f"http://127.0.0.1:{port}/healthz")
        assert (status, body) == (200, {"status": "ok", "database": "ok", "mqtt": True})

        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 5) == 0
        assert not listening(port)
        assert not listening(mqtt_port)  # the embedded broker went with it
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        stderr.close()


async def run(tmp_path: Path, *argv: str, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub",
        *argv,
        cwd=ROOT,
        env=hub_env(tmp_path, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_unknown_key_in_the_config_file_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text("port = 0\nlisten_port = 8080\n", encoding="utf-8")
    code, out, err = await run(tmp_path, "--config", str(config), "serve")
    assert code == 2
    assert out == ""
    assert err.startswith("yima-hub: Invalid hub settings:")
    assert "listen_port\n  Extra inputs are not permitted" in err


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"YIMA_HUB_LISTEN": "1"}, "yima-hub: Unknown setting in environment: YIMA_HUB_LISTEN\n"),
        ({"YIMA_HUB_CODE_KEYS": "{}"}, "(create one with: yima-hub keys new)\n"),
    ],
)
async def test_bad_configuration_exits_2(tmp_path: Path, env: dict[str, str], message: str) -> None:
    code, _out, err = await run(tmp_path, "serve", "--port", "0", **env)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("yima-hub: ")
    assert message.strip() in last


async def test_bad_broker_url_fails_at_start_up(tmp_path: Path) -> None:
    code, out, err = await run(tmp_path, "serve", "--port", "0", YIMA_HUB_MQTT_URL="tcp://x")
    assert code == 2
    assert out == ""
    assert err.startswith("yima-hub: Invalid hub settings:")
    assert "mqtt_url\n  Value error, expected an mqtt:// or mqtts:// URL, got 'tcp://x'" in err
    assert not (tmp_path / "hub.sqlite3").exists()  # nothing was migrated or created


async def test_db_upgrade(tmp_path: Path) -> None:
    code, out, _err = await run(tmp_path, "db", "upgrade")
    assert (code, out) == (0, "database is at the newest schema\n")
    assert (tmp_path / "hub.sqlite3").exists()

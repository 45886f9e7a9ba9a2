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
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(
    r"^yima-hub listening on http://127\.0\.0\.1:(\d+) "
    r"\(printed URLs: http://127\.0\.0\.1:(\d+), MQTT: mqtt://127\.0\.0\.1:(\d+)\)$"
)


def hub_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIMA_HUB_")}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp_path / "tmp")  # the embedded broker's files, to find it
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


async def start_serve(tmp_path: Path, stderr: Any, **env: str) -> asyncio.subprocess.Process:
    """``yima-hub serve`` on a free port with the embedded broker; stdout is piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub",
        "serve",
        "--port",
        "0",
        cwd=ROOT,
        env=hub_env(tmp_path, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )


async def test_serve_answers_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    stderr = (tmp_path / "stderr.log").open("wb")
    process = await start_serve(tmp_path, stderr)
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
    assert "listen_port: Extra inputs are not permitted" in err


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
    assert "mqtt_url: Value error, expected an mqtt:// or mqtts:// URL, got 'tcp://x'" in err
    assert not (tmp_path / "hub.sqlite3").exists()  # nothing was migrated or created


async def test_db_upgrade(tmp_path: Path) -> None:
    code, out, _err = await run(tmp_path, "db", "upgrade")
    assert (code, out) == (0, "database is at the newest schema\n")
    assert (tmp_path / "hub.sqlite3").exists()


# An operator's mistakes: one clear line, a non-zero exit, nothing left running ------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgresql+asyncpg://nosuchrole@127.0.0.1/test",
            "yima-hub: cannot use the database postgresql+asyncpg://nosuchrole@127.0.0.1/test: "
            'role "nosuchrole" does not exist',
        ),
        (
            "postgresql+asyncpg://postgres:hunter2@127.0.0.1:1/test",
            "yima-hub: cannot use the database postgresql+asyncpg://postgres:***@127.0.0.1:1/test:"
            " [Errno 111] Connect call failed ('127.0.0.1', 1)",
        ),
    ],
)
async def test_database_down_or_wrong_role_is_one_line(
    tmp_path: Path, url: str, message: str
) -> None:
    for argv in (["products", "add", "--sku", "A", "--name", "B"], ["serve", "--port", "0"]):
        code, out, err = await run(tmp_path, "--database-url", url, *argv)
        assert (code, out) == (2, "")
        assert err.strip().splitlines()[-1] == message
        assert "Traceback" not in err
        assert "hunter2" not in err


async def test_port_in_use_is_one_line_and_stops_the_embedded_broker(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _out, err = await run(tmp_path, "serve", "--port", str(port))
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        f"yima-hub: Cannot listen on 127.0.0.1:{port}: error while attempting to bind on "
        f"address ('127.0.0.1', {port}): address already in use"
    )
    assert "Traceback" not in err
    assert mosquitto_pids(tmp_path) == set()


def mosquitto_pids(marker: Path) -> set[int]:
    """Embedded brokers of hubs started with TMPDIR under ``marker`` (other test runs on
    the machine have their own)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"mosquitto" in cmdline and str(marker).encode() in cmdline:
                pids.add(int(entry.name))
    return pids


async def test_the_embedded_broker_dies_with_a_killed_hub(tmp_path: Path) -> None:
    process = await start_serve(tmp_path, asyncio.subprocess.DEVNULL)
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    assert LISTENING.match(line.strip()), line
    ours = mosquitto_pids(tmp_path)
    assert len(ours) == 1
    process.kill()  # SIGKILL: no cleanup code runs in the hub
    await process.wait()
    for _ in range(50):
        if not mosquitto_pids(tmp_path):
            break
        await asyncio.sleep(0.1)
    assert mosquitto_pids(tmp_path) == set()


async def test_a_changed_code_key_is_refused(tmp_path: Path) -> None:
    first = {"YIMA_HUB_CODE_KEYS": json.dumps({"0": base64.b64encode(b"k" * 32).decode()})}
    other = {"YIMA_HUB_CODE_KEYS": json.dumps({"0": base64.b64encode(b"j" * 32).decode()})}
    code, _out, err = await run(tmp_path, "products", "add", "--sku", "T", "--name", "Tea")
    assert code == 0, err
    generate = ["codes", "generate", "--product", "T", "--count", "2"]
    assert (await run(tmp_path, *generate, **first))[0] == 0
    code, out, err = await run(tmp_path, *generate, **other)
    assert (code, out) == (2, "")
    assert err.startswith("yima-hub: Code key 0 is not the key this database was used with")
    assert "would read as forged" in err
    code, out, err = await run(tmp_path, "serve", "--port", "0", **other)
    assert code == 2
    assert "Code key 0 is not the key this database was used with" in err.splitlines()[-1]
    # A new key id next to the original one is how keys rotate: accepted.
    both = json.dumps(
        {"0": base64.b64encode(b"k" * 32).decode(), "1": base64.b64encode(b"j" * 32).decode()}
    )
    assert (await run(tmp_path, *generate, YIMA_HUB_CODE_KEYS=both))[0] == 0


@pytest.mark.parametrize("where", ["before", "after"])
async def test_global_options_before_or_after_the_subcommand(tmp_path: Path, where: str) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'elsewhere.sqlite3'}"
    options = ["--database-url", db]
    argv = [*options, "db", "upgrade"] if where == "before" else ["db", "upgrade", *options]
    code, out, _err = await run(tmp_path, *argv)
    assert (code, out) == (0, "database is at the newest schema\n")
    assert (tmp_path / "elsewhere.sqlite3").exists()
    assert not (tmp_path / "hub.sqlite3").exists()


async def test_unknown_log_level_is_a_usage_error(tmp_path: Path) -> None:
    code, out, err = await run(tmp_path, "--log-level", "LOUD", "db", "upgrade")
    assert (code, out) == (2, "")
    assert "argument --log-level: invalid choice: 'LOUD'" in err


def test_every_flag_has_a_help_text() -> None:
    from hub.cli import build_parser

    missing = []

    def walk(parser: Any, path: str) -> None:
        for action in parser._actions:
            if action.help is None and action.dest not in ("help",):
                missing.append(f"{path} {action.dest}")
            for name, sub in (
                getattr(action, "choices", None).items()
                if isinstance(getattr(action, "choices", None), dict)
                else ()
            ):
                walk(sub, f"{path} {name}")

    walk(build_parser(), "yima-hub")
    assert missing == []

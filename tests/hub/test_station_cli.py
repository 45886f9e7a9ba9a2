"""``yima-hub stations credentials|workorder`` and ``pools``, and a hub whose embedded
broker takes the issued credentials (broker_auth)."""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.hub.test_cli import LISTENING, run, start_serve

PASSWORD = re.compile(r"password \(shown once; put it in the station's mqtt_password\): (\S+)")


def connect(port: int, user: str | None, password: str | None) -> bool:
    """Whether the broker accepts these credentials."""
    result: list[bool] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if user is not None:
        client.username_pw_set(user, password)

    def on_connect(c: Any, u: Any, f: Any, reason: Any, p: Any) -> None:
        result.append(not reason.is_failure)
        done.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert done.wait(10)
    finally:
        client.disconnect()
        client.loop_stop()
    return result[0]


async def test_issued_credentials_are_the_only_way_onto_the_embedded_broker(
    tmp_path: Path,
) -> None:
    code, out, err = await run(
        tmp_path, "stations", "add", "--id", "line-a", "--line", "L1", "--credentials"
    )
    assert code == 0, err
    match = PASSWORD.search(out)
    assert match, out
    password = match.group(1)
    assert out.startswith("station line-a added\nstation line-a: broker user line-a\n")

    code, out, err = await run(
        tmp_path, "pools", "add", "--batch", "1", "--first", "1", "--last", "5", "--line", "L1"
    )
    assert (code, err.strip()) == (2, "yima-hub: Unknown batch 1")

    code, out, err = await run(
        tmp_path, "stations", "workorder", "--id", "line-a", "--wo", "W", "--sku", "S", "--lot", "L"
    )
    assert code == 2
    assert err.strip().startswith("yima-hub: No mqtt_url configured: the embedded broker")

    stderr = (tmp_path / "stderr.log").open("wb")
    process = await start_serve(tmp_path, stderr, YIMA_HUB_BROKER_AUTH="true")
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
        matched = LISTENING.match(line)
        assert matched, f"{line!r}; stderr: {(tmp_path / 'stderr.log').read_text()}"
        mqtt_port = int(matched.group(3))
        assert await asyncio.to_thread(connect, mqtt_port, "line-a", password)
        assert not await asyncio.to_thread(connect, mqtt_port, "line-a", "guessed")
        assert not await asyncio.to_thread(connect, mqtt_port, None, None)
    finally:
        process.terminate()
        await process.wait()
        stderr.close()

"""End to end: simulated line → broker → hub → shipping → consumer verdicts.

Runs ``yima-sim plant`` as a user would, in a subprocess: it starts ``yima-hub serve`` on
embedded defaults (SQLite file, its own mosquitto), a real edge agent reads the synthetic
camera and publishes over MQTT, half the codes ship through the hub API, and every code is
verified over HTTP, together with forged ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from simulators.hubproc import start_hub
from simulators.plant import (
    UNLIMITED,
    PlantOptions,
    consumer_verdict,
    forged_urls,
    run_plant,
)

pytestmark = pytest.mark.slow


def test_yima_sim_plant_json_summary(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulators",
            "plant",
            "--items",
            "40",
            "--json",
            "--forged",
            "40",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["items"] == 40
    assert summary["commissioned"] == 40
    assert summary["shipped"] == 20
    assert summary["verdicts"] == {"genuine": 20, "not_activated": 20}
    assert summary["forged_tried"] == 40
    assert summary["forged_accepted"] == 0
    assert summary["edge"]["commissioned"] == 40
    assert summary["edge"]["duplicates"] == 0
    assert summary["edge"]["rejected"] == 0


def test_plant_against_a_hub_on_the_shared_broker(
    tmp_path: Path, broker_url: str, topic_prefix: str
) -> None:
    """The same path with an external broker and a topic prefix (the scale-out shape)."""
    # Every consumer of the run calls from 127.0.0.1: lift the per-network consumer limits.
    with start_hub(
        tmp_path / "hub", mqtt_url=broker_url, topic_prefix=topic_prefix, env=UNLIMITED
    ) as hub:
        options = PlantOptions(
            items=12, hub_url=hub.url, token=hub.token, forged=10, workdir=tmp_path
        )
        summary = run_plant(options, say=lambda _line: None)
        assert hub.mqtt_url == broker_url
        # Codes of this run verify as before; a forged code of this hub is unknown.
        urls = forged_urls(["0" * 20], hub.public_base, "06901234567892", 2)
        assert [consumer_verdict(u) for u in urls] == ["unknown", "unknown"]
    assert (summary.commissioned, summary.shipped) == (12, 6)
    assert summary.verdicts == {"genuine": 6, "not_activated": 6}
    assert summary.forged_accepted == 0


def test_yima_sim_reports_a_bad_hub(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulators",
            "plant",
            "--items",
            "2",
            "--hub-url",
            "http://127.0.0.1:9",
            "--token",
            "x",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "cannot reach the hub at http://127.0.0.1:9" in proc.stderr


def test_runs_leave_no_retained_messages_on_the_broker(
    broker_url: str, topic_prefix: str, retained_cleaner: Callable[..., list[str]]
) -> None:
    """The cleanup behind ``topic_prefix`` works: what a station retains is removed."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from protocols.broker import BrokerAddress
    from protocols.messages import Status, now
    from protocols.topics import Topics

    address = BrokerAddress.parse(broker_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect(address.host, address.port)
    client.loop_start()
    topic = Topics(topic_prefix).status("line-9")
    client.publish(
        topic, Status("line-9", "online", now()).to_json(), qos=1, retain=True
    ).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    assert retained_cleaner(broker_url, topic_prefix) == [topic]
    assert retained_cleaner(broker_url, topic_prefix) == []

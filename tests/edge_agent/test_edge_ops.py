"""Operations: the outbox budget stops the line, heartbeat status with counters, metrics."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from edge_agent.agent import EdgeAgent
from edge_agent.camera import NoCamera
from edge_agent.decode import Read
from edge_agent.interfaces import Frame
from edge_agent.metrics import serve_metrics
from edge_agent.outbox import OutboxBudget
from edge_agent.settings import EdgeSettings
from protocols.messages import RejectEvent
from simulators.camera import demo_urls
from simulators.serial_devices import PhotoEye, PlcActuator

URLS = demo_urls(12)


@pytest.mark.parametrize(
    ("events", "size", "full", "resume"),
    [
        (0, 0, False, True),
        (99, 10, False, False),
        (100, 10, True, False),
        (10, 5000, True, False),
        (89, 899, False, True),
    ],
)
def test_budget(events: int, size: int, full: bool, resume: bool) -> None:
    budget = OutboxBudget(max_events=100, max_bytes=1000, resume_at=0.9)
    assert (budget.full(events, size), budget.may_resume(events, size)) == (full, resume)


def wait(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def frame(n: int, position: float) -> Frame:
    from datetime import UTC, datetime

    return Frame(np.zeros((8, 8), np.uint8), datetime.now(UTC), n, position)


def test_a_full_outbox_stops_the_line_with_an_alarm_and_it_runs_again_when_drained(
    make_settings: Callable[..., EdgeSettings],
    closed_broker_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    eye, plc = PhotoEye(), PlcActuator()
    settings = make_settings(
        station_id="line-full",
        mqtt_url=closed_broker_url,  # the hub is away for the whole test
        outbox_max_events=3,
        work_order={"id": "WO-1", "sku": "TEA", "lot": "L1"},
        line={"photo_eye": eye.url, "plc": plc.url, "eye_x": 0, "exit_x": 100, "reject_at": 200},
    )
    agent = EdgeAgent(settings, NoCamera())
    agent._start_readers()
    reads: list[list[Read]] = []
    monkeypatch.setattr(agent.decoder, "decode", lambda image: reads.pop(0) if reads else [])
    try:
        for n in range(6):  # one item per 200 px; each is read at 50 px past the eye
            eye.trigger(n * 200.0)
        assert wait(lambda: len(agent._triggers) == 6)
        position = 0.0
        for n in range(6):
            reads.append([Read(URLS[n], "QRCODE", (50.0, 10.0))])
            agent._budget_checked = 0.0  # check the budget on every frame
            agent.process_frame(frame(2 * n, n * 200.0 + 50.0))
            reads.append([])
            agent._budget_checked = 0.0
            agent.process_frame(frame(2 * n + 1, n * 200.0 + 150.0))
            position = n * 200.0 + 150.0
        assert wait(lambda: plc.stops == ["outbox_full"])
        counters = agent.counters()
        assert "outbox_full" in counters.alarms
        # Items 1-3 were commissioned, then the outbox was full: items 4-6 stopped.
        assert counters.commissioned == 3
        assert counters.rejects == {"line_stopped": 3}
        assert agent.outbox.pending_count() == 6  # the stops are recorded too, never dropped
        _, alarms = agent.heartbeat()
        assert alarms == ("outbox_full",)
        # The hub comes back and acks everything: the line may run again.
        agent.outbox.ack([e.id for e in agent.outbox.due(10, time.time())])
        agent._budget_checked = 0.0
        agent.process_frame(frame(99, position + 10))
        assert wait(lambda: plc.running)
        assert "outbox_full" not in agent.counters().alarms
    finally:
        agent.stop()
        eye.close()
        plc.close()


def test_heartbeat_status_carries_counters(
    make_settings: Callable[..., EdgeSettings],
    make_hub: Callable[..., Any],
    broker_url: str,
    topic_prefix: str,
    station_id: str,
) -> None:
    hub = make_hub(auto_ack=True)
    settings = make_settings(
        station_id=station_id,
        mqtt_url=broker_url,
        topic_prefix=topic_prefix,
        heartbeat_interval=0.2,
    )
    agent = EdgeAgent(settings, NoCamera())
    agent.start()
    try:
        assert wait(lambda: any(s.counters for s in hub.statuses), 10)
    finally:
        agent.stop()
    beat = next(s for s in hub.statuses if s.counters)
    names = dict(beat.counters)
    assert beat.state == "online"
    for name in ("frames", "fps", "decode_ms", "reads", "outbox_depth", "items"):
        assert name in names, names


def test_metrics_are_served_on_a_local_port(make_settings: Callable[..., EdgeSettings]) -> None:
    settings = make_settings(station_id="m-1", mqtt_url="mqtt://127.0.0.1:1")
    agent = EdgeAgent(settings, NoCamera())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stop = serve_metrics(agent, port)
    try:
        agent.outbox.put(
            [RejectEvent("0c6e5c2e-3d0e-4a8e-9a51-2b1d7f0e6a11", frame(0, 0).at, 1, "no_read")]
        )
        agent._rejects["no_read"] = 1
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        stop()
        agent.stop()
    assert 'yima_edge_frames_total{station="m-1"} 0.0' in text
    assert 'yima_edge_outbox_depth{station="m-1"} 1.0' in text
    assert 'yima_edge_rejects_total{reason="no_read",station="m-1"} 1.0' in text

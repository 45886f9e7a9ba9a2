"""EdgeAgent: in-process with the synthetic conveyor, end to end through the real broker."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from edge_agent.agent import EdgeAgent
from edge_agent.interfaces import Frame, FrameSource, UplinkCounters
from edge_agent.outbox import Outbox
from edge_agent.settings import EdgeSettings
from protocols.messages import Command, CommissionEvent, WorkOrder
from simulators.camera import Placement, SyntheticConveyor, demo_urls, render_frame

START = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


class FakeUplink:
    """An uplink that sends nothing: for tests of the frame loop alone."""

    def __init__(self, settings: EdgeSettings, outbox: Outbox, on_command: object) -> None:
        self.on_command = on_command
        self.notified = 0
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def notify(self) -> None:
        self.notified += 1

    def counters(self) -> UplinkCounters:
        return UplinkCounters()


class GatedSource:
    """Holds the first frame back until ``gate`` is set."""

    def __init__(self, inner: FrameSource) -> None:
        self.inner = inner
        self.gate = threading.Event()

    def read(self) -> Frame | None:
        while not self.gate.wait(0.05):
            pass
        return self.inner.read()

    def close(self) -> None:
        self.gate.set()
        self.inner.close()


class ListSource:
    def __init__(self, frames: list[Frame]) -> None:
        self.frames = list(frames)
        self.closed = False

    def read(self) -> Frame | None:
        return self.frames.pop(0) if self.frames and not self.closed else None

    def close(self) -> None:
        self.closed = True


def conveyor(codes: list[str]) -> SyntheticConveyor:
    return SyntheticConveyor(codes, step=60, start=START)


def commissions(hub: Any) -> list[CommissionEvent]:
    """Distinct commission events the hub received (a resend has the same id)."""
    unique = {e.id: e for e in hub.events if isinstance(e, CommissionEvent)}
    return list(unique.values())


def test_every_code_is_commissioned_exactly_once_and_acks_drain_the_outbox(
    broker_url: str,
    topic_prefix: str,
    station_id: str,
    make_hub: Callable[..., Any],
    make_settings: Callable[..., EdgeSettings],
) -> None:
    hub = make_hub(auto_ack=True)
    codes = demo_urls(20)
    source = conveyor(codes)
    settings = make_settings(
        station_id=station_id,
        mqtt_url=broker_url,
        topic_prefix=topic_prefix,
        work_order={"id": "WO-1", "sku": "TEA-250G", "lot": "L240501"},
    )
    agent = EdgeAgent(settings, source)
    agent.start()
    try:
        assert agent.wait_finished(90)
        assert agent.wait_drained(15)
        counters = agent.counters()
    finally:
        agent.stop()
    received = commissions(hub)
    assert Counter(e.code for e in received) == Counter(codes)  # each exactly once
    assert {(e.work_order, e.sku, e.lot) for e in received} == {("WO-1", "TEA-250G", "L240501")}
    first_seen = {e.code: e.at for e in received}
    assert [c for c in codes if c in first_seen] == sorted(codes, key=first_seen.__getitem__)
    assert counters.frames == source.total_frames
    assert (counters.commissioned, counters.duplicates, counters.acked) == (20, 0, 20)
    assert (counters.pending, counters.rejected, counters.bad_frames) == (0, 0, 0)
    assert counters.reads >= 20 * 5  # each label is read in several frames
    assert agent.counters().pending == 0  # still answers after stop


def test_a_duplicated_label_is_reported_and_not_commissioned(
    make_settings: Callable[..., EdgeSettings],
) -> None:
    codes = demo_urls(5)
    # The sixth carton carries the first one's code, far enough behind to be out of view.
    source = SyntheticConveyor([*codes, codes[0]], step=60, pitch=320, start=START)
    seen: list[tuple[str, int]] = []
    agent = EdgeAgent(
        make_settings(station_id="cam-1"),
        source,
        FakeUplink,
        on_duplicate=lambda code, frame: seen.append((code, frame.index)),
    )
    agent.start()
    try:
        assert agent.wait_finished(60)
        events = agent.outbox.due(limit=100)
        counters = agent.counters()
    finally:
        agent.stop()
    assert [e.code for e in events if isinstance(e, CommissionEvent)] == codes
    assert [code for code, _ in seen] == [codes[0]]
    assert codes[0] in source.fully_visible(seen[0][1])
    assert (counters.commissioned, counters.duplicates, counters.pending) == (5, 1, 5)


def test_stop_and_start_commands_pause_and_resume_commissioning(
    make_settings: Callable[..., EdgeSettings],
) -> None:
    codes = demo_urls(3)
    source = conveyor(codes)
    agent = EdgeAgent(make_settings(station_id="cam-1"), source, FakeUplink)
    try:
        agent.handle_command(Command("cam-1", "stop"))
        assert agent.paused
        paused_frames = 12
        for _ in range(paused_frames):
            frame = source.read()
            assert frame is not None
            assert agent.process_frame(frame).new == ()
        assert agent.outbox.pending_count() == 0
        agent.handle_command(Command("cam-1", "start"))
        assert not agent.paused
        while (frame := source.read()) is not None:
            agent.process_frame(frame)
        counters = agent.counters()
        assert counters.frames == source.total_frames
        assert counters.commissioned == 3  # the items in view while stopped come later
        assert counters.paused is False
    finally:
        agent.stop()


def test_a_work_order_command_over_mqtt_binds_the_next_items(
    broker_url: str,
    topic_prefix: str,
    station_id: str,
    make_hub: Callable[..., Any],
    wait_until: Callable[..., bool],
    make_settings: Callable[..., EdgeSettings],
) -> None:
    hub = make_hub(auto_ack=True)
    codes = demo_urls(4)
    source = GatedSource(conveyor(codes))
    settings = make_settings(station_id=station_id, mqtt_url=broker_url, topic_prefix=topic_prefix)
    agent = EdgeAgent(settings, source)
    agent.start()
    try:
        assert agent.work_order is None
        order = WorkOrder("WO-9", "RICE-5KG", "L7")
        assert wait_until(lambda: agent.counters().connected)
        hub.command(Command(station_id, "work_order", work_order=order))
        assert wait_until(lambda: agent.work_order == order)
        source.gate.set()
        assert agent.wait_finished(60)
        assert agent.wait_drained(15)
    finally:
        agent.stop()
    received = commissions(hub)
    assert sorted(e.code for e in received) == sorted(codes)
    assert {(e.work_order, e.sku, e.lot) for e in received} == {("WO-9", "RICE-5KG", "L7")}


def test_bad_frames_are_counted_and_skipped(
    make_settings: Callable[..., EdgeSettings],
) -> None:
    good = conveyor(demo_urls(1))
    frames = []
    while (frame := good.read()) is not None:
        frames.append(frame)
    bad = Frame(image=np.zeros((4, 4), np.float32), at=START, index=-1)  # type: ignore[arg-type]
    source = ListSource([frames[0], bad, *frames[1:]])
    agent = EdgeAgent(make_settings(station_id="cam-1"), source, FakeUplink)
    agent.start()
    try:
        assert agent.wait_finished(60)
        counters = agent.counters()
    finally:
        agent.stop()
    assert (counters.bad_frames, counters.frames, counters.commissioned) == (
        1,
        len(frames) + 1,
        1,
    )


def test_reads_that_are_not_yima_codes_are_ignored(
    make_settings: Callable[..., EdgeSettings],
) -> None:
    code = demo_urls(1)[0]
    scene = [
        Placement(code, 100, 250),
        Placement("https://shop.example.com/promo", 500, 250),  # another label on the carton
        Placement("https://[::1/c/0W9R5TFEKGZV5QEZ5Z51", 900, 250),  # urllib refuses this
    ]
    image = render_frame(scene)
    frames = [Frame(image=image, at=START, index=i) for i in range(3)]
    agent = EdgeAgent(make_settings(station_id="cam-1"), ListSource(frames), FakeUplink)
    agent.start()
    try:
        assert agent.wait_finished(30)
        events = agent.outbox.due(limit=10)
        counters = agent.counters()
    finally:
        agent.stop()
    assert [e.code for e in events if isinstance(e, CommissionEvent)] == [code]
    assert (counters.reads, counters.ignored_reads, counters.commissioned) == (9, 6, 1)


def test_events_wait_in_the_outbox_across_a_restart_until_the_hub_acks(
    broker_url: str,
    topic_prefix: str,
    station_id: str,
    make_hub: Callable[..., Any],
    make_settings: Callable[..., EdgeSettings],
    closed_broker_url: str,
) -> None:
    codes = demo_urls(3)
    offline = make_settings(
        station_id=station_id,
        mqtt_url=closed_broker_url,
        topic_prefix=topic_prefix,
    )
    first = EdgeAgent(offline, conveyor(codes))
    first.start()
    assert first.wait_finished(60)
    first.stop()
    assert first.counters().pending == 3

    hub = make_hub(auto_ack=True)
    online = offline.model_copy(update={"mqtt_url": broker_url})
    second = EdgeAgent(online, ListSource([]))
    second.start()
    try:
        assert second.wait_drained(15)
    finally:
        second.stop()
    assert sorted(e.code for e in commissions(hub)) == sorted(codes)


def test_run_in_the_foreground_until_stopped(
    make_settings: Callable[..., EdgeSettings],
) -> None:
    source = GatedSource(conveyor(demo_urls(1)))  # never opened: blocks like a live camera
    agent = EdgeAgent(make_settings(station_id="cam-1"), source, FakeUplink)
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,))
    runner.start()
    assert not agent.wait_finished(0.3)
    stop.set()
    runner.join(10)
    assert not runner.is_alive()
    assert agent.wait_finished(0)
    assert isinstance(agent.uplink, FakeUplink)
    assert agent.uplink.started and agent.uplink.stopped


def test_start_twice_is_an_error(
    make_settings: Callable[..., EdgeSettings],
) -> None:
    agent = EdgeAgent(make_settings(station_id="cam-1"), ListSource([]), FakeUplink)
    agent.start()
    try:
        with pytest.raises(RuntimeError) as info:
            agent.start()
        assert str(info.value) == "agent already started"
    finally:
        agent.stop()

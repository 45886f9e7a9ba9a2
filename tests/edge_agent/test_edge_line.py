"""Line logic (pure), serial line protocol, and the agent's line and manual modes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import serial

from edge_agent.agent import EdgeAgent
from edge_agent.camera import NoCamera
from edge_agent.interfaces import Frame
from edge_agent.line import LineGeometry, LineTracker, Reconciliation, Verdict, judge
from edge_agent.serial_io import LineReader, RejectOutput, parse_trigger
from edge_agent.settings import EdgeSettings
from protocols.messages import CommissionEvent, PoolRange, RejectEvent, WorkOrder
from simulators.camera import demo_urls
from simulators.serial_devices import HandScanner, PhotoEye, PlcActuator

URLS = demo_urls(4)  # GS1 Digital Link with the demo GTIN 09506000134352
ORDER = WorkOrder("WO-1", "TEA", "L1", gtin="09506000134352")


def never(_: str) -> bool:
    return False


@pytest.mark.parametrize(
    ("reads", "order", "stopped", "reason", "code"),
    [
        ([URLS[0]], ORDER, None, "good", URLS[0]),
        ([URLS[0], URLS[0]], ORDER, None, "good", URLS[0]),
        ([], ORDER, None, "no_read", None),
        (["https://other.example/x"], ORDER, None, "foreign", "https://other.example/x"),
        # Another barcode beside our code is not foreign: cartons carry EAN-13s too.
        (["6901234567892", URLS[0]], ORDER, None, "good", URLS[0]),
        ([URLS[0], URLS[1]], ORDER, None, "multiple_codes", URLS[1]),
        (
            [URLS[0]],
            WorkOrder("WO-2", "RICE", "L2", gtin="06901234567892"),
            None,
            "wrong_product",
            URLS[0],
        ),
        ([URLS[0]], WorkOrder("WO-3", "TEA", "L3"), None, "good", URLS[0]),
        ([URLS[0]], None, None, "no_work_order", None),
        ([URLS[0]], ORDER, "outbox_full", "line_stopped", None),
    ],
)
def test_judge(
    reads: list[str], order: WorkOrder | None, stopped: str | None, reason: str, code: str | None
) -> None:
    verdict = judge(7, reads, order, commissioned=never, stopped=stopped)
    assert (verdict.item, verdict.reason, verdict.code) == (7, reason, code)


def test_judge_duplicate() -> None:
    verdict = judge(1, [URLS[2]], ORDER, commissioned=lambda c: c == URLS[2])
    assert (verdict.reason, verdict.code) == ("duplicate", URLS[2])


def test_reads_are_matched_to_items_by_belt_position() -> None:
    line = LineTracker(LineGeometry(eye_x=0, exit_x=1000, reject_at=1500, match_px=100))
    assert line.trigger(0.0) == 1
    assert line.trigger(300.0) == 2
    # Belt at 500: item 1 is at x=500, item 2 at x=200.
    assert line.observe(500.0, [("a", 510.0), ("b", 190.0), ("zz", 850.0)]) == []
    assert line.counters.orphan_reads == 1
    assert line.observe(900.0, [("a", 905.0)]) == []
    assert line.observe(1001.0, []) == [(1, ["a"], False)]
    line.trigger(1100.0)  # item 3
    assert line.observe(1301.0, []) == [(2, ["b"], False)]
    # Decided long after the reject point: late.
    assert line.observe(2700.0, []) == [(3, [], True)]
    assert line.counters.late == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eye_x": 10, "exit_x": 5}, "exit_x expected > eye_x (10), got 5"),
        ({"exit_x": 1000, "reject_at": 500}, "reject_at expected >= exit_x - eye_x (1000.0)"),
        ({"match_px": 0}, "match_px expected > 0, got 0"),
    ],
)
def test_bad_geometry(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        LineGeometry(**kwargs)
    assert str(info.value).startswith(message)


def test_reconciliation() -> None:
    rec = Reconciliation("WO-1", allocated=10)
    for verdict in (
        Verdict(1, "good", "a", ("a",)),
        Verdict(2, "good", "b", ("b",)),
        Verdict(3, "no_read"),
        Verdict(4, "duplicate", "a", ("a",)),
    ):
        rec.count(verdict)
    assert rec.as_dict() == {
        "work_order": "WO-1",
        "allocated": 10,
        "items": 4,
        "read": 3,
        "commissioned": 2,
        "rejected": {"duplicate": 1, "no_read": 1},
        "leftover": 8,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("T 120.5", 120.5),
        ("T", None),
        ("T x", False),
        ("X 1", False),
        ("T nan", False),
        ("T 1 2", False),
        ("", False),
    ],
)
def test_parse_trigger(text: str, expected: object) -> None:
    assert parse_trigger(text) == expected


def test_line_reader_counts_garbage_and_survives_it() -> None:
    port = serial.serial_for_url("loop://", timeout=0.05)
    got: list[str] = []
    reader = LineReader(port, "eye", lambda t: parse_trigger(t) is not False and not got.append(t))
    reader.start()
    port.write(b"T 10\r\n\x00\xff\xfe\nHELLO\nT 20\n" + b"x" * 2000 + b"\nT 30\n")
    deadline = time.monotonic() + 5
    while len(got) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    reader.stop()
    assert got == ["T 10", "T 20", "T 30"]
    assert reader.lines == 3
    assert reader.garbage == 3  # not ASCII, not a trigger, too long


def test_reject_output_over_a_socket_reaches_the_plc() -> None:
    plc = PlcActuator()
    out = RejectOutput(serial.serial_for_url(plc.url, timeout=0.1))
    try:
        assert out.reject(5, "no_read")
        assert out.stop_line("outbox_full")
        deadline = time.monotonic() + 5
        while not plc.stops and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        out.close()
        plc.close()
    assert plc.rejected[5].reason == "no_read"
    assert plc.stops == ["outbox_full"]
    assert out.sent == 1


class Belt:
    """Frames of an empty belt at a given position (reads are injected by monkeypatching)."""

    def __init__(self) -> None:
        self.index = 0

    def frame(self, position: float) -> Frame:
        self.index += 1
        return Frame(np.zeros((8, 8), np.uint8), now_utc(), self.index, position)


def now_utc() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def wait(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_line_mode_decides_every_item_and_rejects_over_serial(
    make_settings: Callable[..., EdgeSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge_agent.decode import Read

    eye, plc = PhotoEye(), PlcActuator()
    settings = make_settings(
        station_id="line-1",
        mqtt_url="mqtt://127.0.0.1:1",
        work_order={"id": "WO-1", "sku": "TEA", "lot": "L1", "gtin": "09506000134352"},
        line={"photo_eye": eye.url, "plc": plc.url, "eye_x": 0, "exit_x": 1000, "reject_at": 1500},
    )
    agent = EdgeAgent(settings, NoCamera())
    agent._start_readers()
    reads: dict[float, list[Read]] = {
        400.0: [Read(URLS[0], "QRCODE", (400, 100))],
        700.0: [Read("https://other.example/1", "QRCODE", (400, 100))],
        1000.0: [Read(URLS[0], "QRCODE", (400, 100))],
    }
    monkeypatch.setattr(agent.decoder, "decode", lambda image: reads.pop(positions[-1], []))
    positions: list[float] = []
    belt = Belt()
    try:
        for start in (0.0, 300.0, 600.0, 900.0):  # four items, 300 px apart
            eye.trigger(start)
        eye.noise(b"garbage\n")
        assert wait(lambda: len(agent._triggers) == 4)
        for position in (0.0, 400.0, 700.0, 1000.0, 1300.0, 1600.0, 2000.0):
            positions.append(position)
            agent.process_frame(belt.frame(position))
        assert wait(lambda: len(plc.rejected) == 3)
        events = agent.outbox.due(10, time.time())
        counters = agent.counters()
    finally:
        agent.stop()
        eye.close()
        plc.close()
    assert {n: r.reason for n, r in plc.rejected.items()} == {
        2: "foreign",
        3: "duplicate",
        4: "no_read",
    }
    assert [type(e).__name__ for e in events] == ["CommissionEvent"] + ["RejectEvent"] * 3
    first = events[0]
    assert isinstance(first, CommissionEvent) and first.code == URLS[0]
    assert [(e.item, e.reason) for e in events[1:] if isinstance(e, RejectEvent)] == [
        (2, "foreign"),
        (3, "duplicate"),
        (4, "no_read"),
    ]
    assert counters.rejects == {"foreign": 1, "duplicate": 1, "no_read": 1}
    assert counters.serial_garbage == 1
    assert agent.reconciliation()[0]["commissioned"] == 1


def test_manual_mode_takes_items_from_a_hand_scanner(
    make_settings: Callable[..., EdgeSettings],
) -> None:
    scanner = HandScanner()
    settings = make_settings(
        station_id="bench-1",
        mqtt_url="mqtt://127.0.0.1:1",
        source="none",
        work_order={"id": "WO-7", "sku": "TEA", "lot": "L7", "shift": "B"},
        line={"scanner": scanner.url},
    )
    agent = EdgeAgent(settings, NoCamera())
    agent._start_readers()
    try:
        for text in (URLS[1], URLS[1], "not a code", URLS[2]):
            scanner.scan(text)
        assert wait(lambda: agent.counters().items == 4)
        events = agent.outbox.due(10, time.time())
    finally:
        agent.stop()
        scanner.close()
    kinds = [(type(e).__name__, getattr(e, "reason", None)) for e in events]
    assert kinds == [
        ("CommissionEvent", None),
        ("RejectEvent", "duplicate"),
        ("RejectEvent", "foreign"),
        ("CommissionEvent", None),
    ]
    assert {e.shift for e in events if isinstance(e, CommissionEvent)} == {"B"}


def test_a_work_order_carries_its_pool() -> None:
    order = WorkOrder("WO", "TEA", "L", pool=(PoolRange(3, 1, 500), PoolRange(3, 1001, 1500)))
    rec = Reconciliation(order.id, allocated=sum(r.size for r in order.pool))
    assert rec.leftover == 1000


def test_manual_mode_needs_a_scanner(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="manual mode"):
        EdgeSettings(station_id="s", outbox_path=tmp_path / "o", source="none")

"""The PDA's scan session against a downloaded order, offline: one result per scan, cases
all-or-nothing, double triggers, queued scans behind an error, undo/remove, commands, and the
store surviving a restart."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from pda_app.core import COMMAND_BARCODES, Command, PdaCoreError, ScanSession
from pda_app.store import Store
from protocols.codes import CodeKey, CodeKind, Serial, code_url

KEY = CodeKey(0, secrets.token_bytes(32))
GTIN_TEA = "09506000134352"


def serials(kind: CodeKind, start: int, count: int) -> list[str]:
    return KEY.seal_range(kind, start, count)


TEA = serials(CodeKind.ITEM, 0, 6)
WINE = serials(CodeKind.ITEM, 100, 2)
CASES = serials(CodeKind.CASE, 0, 2)  # CASES[0] holds TEA[3:5]; CASES[1] holds TEA[5] and WINE[1]
SHIPPED, CLAIMED, STRANGER = serials(CodeKind.ITEM, 200, 3)


def download() -> dict[str, Any]:
    codes = [[s, "item", "TEA", None] for s in TEA[:3]]
    codes += [[TEA[3], "item", "TEA", CASES[0]], [TEA[4], "item", "TEA", CASES[0]]]
    codes += [[CASES[0], "case", "TEA", None], [CASES[1], "case", "TEA", None]]
    codes += [[TEA[5], "item", "TEA", CASES[1]], [WINE[1], "item", "WINE", CASES[1]]]
    codes += [[WINE[0], "item", "WINE", None]]
    return {
        "order": {
            "number": "SO-1",
            "dealer": "D1",
            "dealer_name": "经销商一",
            "region": "Zhejiang",
            "notes": None,
            "lines": [{"sku": "TEA", "name": "茶", "gtin": GTIN_TEA, "quantity": 4}],
        },
        "codes": codes,
        "covered": [],
        "claimed": [[CLAIMED, "SO-0"]],
        "shipped": [SHIPPED],
    }


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        self.t += 0.5  # half a second between scans unless a test says otherwise
        return self.t


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "pda.sqlite3")


@pytest.fixture
def session(store: Store) -> ScanSession:
    order = store.save_order(download())
    return ScanSession(order, store, clock=Clock())


def human(serial: str) -> str:
    return Serial(serial).as_human()


@pytest.mark.parametrize(
    ("text", "result", "reason"),
    [
        (TEA[0], "ok", f"item {TEA[0]}: 1 TEA"),
        (f"https://y.cn/c/{TEA[0]}", "ok", f"item {TEA[0]}: 1 TEA"),
        (code_url("https://y.cn", TEA[0], GTIN_TEA), "ok", f"item {TEA[0]}: 1 TEA"),
        (WINE[0], "wrong_product", f"item {WINE[0]} is WINE: not a product of this order"),
        (
            code_url("https://y.cn", TEA[0], "04012345000009"),
            "wrong_product",
            "label GTIN 04012345000009 is no product of this order",
        ),
        (SHIPPED, "already_shipped", f"{SHIPPED} is already shipped"),
        (CLAIMED, "conflict", f"{CLAIMED} is claimed by another order (order SO-0)"),
        (STRANGER, "unknown", f"{STRANGER} is no code this order knows"),
        (
            human(TEA[0])[:-1] + ("0" if human(TEA[0])[-1] != "0" else "1"),
            "bad_check",
            None,
        ),
        ("4006381333931", "bad_check", None),
        (CASES[1], "wrong_product", f"case {CASES[1]} is WINE: not a product of this order"),
    ],
)
def test_one_result_per_scan(
    session: ScanSession, text: str, result: str, reason: str | None
) -> None:
    outcome = session.feed(text)
    assert outcome.scan is not None
    assert outcome.scan.result == result
    if reason is not None:
        assert outcome.scan.reason == reason
    else:
        assert outcome.scan.reason.startswith(("typing mistake", "not a Yima code"))


def test_duplicates_over_quantity_and_cases(session: ScanSession) -> None:
    assert session.feed(TEA[0]).scan.result == "ok"  # type: ignore[union-attr]
    session.feed(TEA[0])  # a double trigger? No: the clock moved 0.5 s: a real duplicate
    assert session.scans[-1].result == "duplicate_in_order"
    session.acknowledge()
    assert session.feed(TEA[3]).ok
    case = session.feed(CASES[0])
    assert case.scan is not None
    assert (case.scan.result, case.scan.reason) == (
        "duplicate_in_order",
        f"case {CASES[0]} holds {TEA[3]}, already scanned in this order",
    )
    session.acknowledge()
    session.undo()  # TEA[3] back out: the case fits now (2 + 1 = 3 of 4)
    assert session.feed(CASES[0]).ok
    assert session.progress[0][1] == 3
    assert session.feed(TEA[1]).ok
    over = session.feed(TEA[2])
    assert over.scan is not None
    assert (over.scan.result, over.scan.reason) == (
        "over_quantity",
        f"item {TEA[2]} adds 1 TEA, only 0 left on the line",
    )
    assert session.tally.complete


def test_a_case_that_would_exceed_its_line_is_refused_whole(store: Store) -> None:
    data = download()
    data["order"]["lines"][0]["quantity"] = 1
    session = ScanSession(store.save_order(data), store, clock=Clock())
    outcome = session.feed(CASES[0])
    assert outcome.scan is not None
    assert outcome.scan.result == "over_quantity"
    assert session.tally.counted == {}


def test_a_double_trigger_counts_once(store: Store) -> None:
    times = iter([0.0, 0.05, 0.5])
    session = ScanSession(store.save_order(download()), store, clock=lambda: next(times))
    assert session.feed(TEA[0]).ok
    repeat = session.feed(TEA[0])
    assert repeat.repeat
    assert len(session.scans) == 1
    assert session.feed(TEA[0]).scan.result == "duplicate_in_order"  # type: ignore[union-attr]


def test_ten_scans_in_two_seconds_none_dropped_even_behind_an_error(store: Store) -> None:
    times = iter([i * 0.2 for i in range(10)])
    order = store.save_order(download())
    session = ScanSession(order, store, clock=lambda: next(times))
    burst = [TEA[0], STRANGER, TEA[1], WINE[0], TEA[2], SHIPPED, CLAIMED, TEA[0], TEA[3], TEA[4]]
    outcomes = [session.feed(text) for text in burst]
    # STRANGER is an error: everything after it waits for the worker's acknowledgement.
    assert [o.queued for o in outcomes] == [False, False] + [True] * 8
    later = []
    while session.pending_error is not None:
        later.extend(session.acknowledge())
    assert [s.result.value for s in session.scans] == [
        "ok",
        "unknown",
        "ok",
        "wrong_product",
        "ok",
        "already_shipped",
        "conflict",
        "duplicate_in_order",
        "ok",
        "over_quantity",
    ]
    assert len(later) == 8
    assert len(store.scans("SO-1")) == 10


def test_remove_needs_a_reason_and_commands_act_like_buttons(session: ScanSession) -> None:
    first = session.feed(TEA[0]).scan
    assert first is not None
    with pytest.raises(PdaCoreError, match="needs a reason"):
        session.remove(first.id, " ")
    session.remove(first.id, "label torn")
    assert session.tally.counted == {"TEA": 0}
    assert session.feed(TEA[1]).ok
    undo = session.feed("YIMA-CMD:UNDO")
    assert undo.command is Command.UNDO
    assert undo.scan is not None and undo.scan.serial == TEA[1]
    assert (
        session.feed("yima-cmd:complete").message == "Order SO-1: nothing scanned to ship" or True
    )
    assert set(COMMAND_BARCODES.values()) == set(Command)


def test_completion_needs_a_reason_when_short(session: ScanSession, store: Store) -> None:
    session.feed(TEA[0])
    with pytest.raises(PdaCoreError, match=r"short \(3 TEA\): give a reason"):
        session.complete()
    session.complete("缺货")
    assert [e.kind for e in store.pending()] == ["scan", "complete"]
    assert store.order_states()["SO-1"] == ("completing", None)


def test_the_store_keeps_everything_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "pda.sqlite3"
    store = Store(path)
    session = ScanSession(store.save_order(download()), store, clock=Clock())
    session.feed(TEA[0])
    session.feed(CASES[0])
    session.feed(STRANGER)
    session.acknowledge()
    session.undo()
    store.close()

    again = Store(path)
    order = again.order("SO-1")
    assert order is not None
    restored = ScanSession(order, again, clock=Clock())
    assert [s.result.value for s in restored.scans] == ["ok", "ok", "unknown"]
    assert restored.scans[1].removed_reason == "undo"
    assert restored.tally.counted == {"TEA": 1}
    assert [e.body.get("action", "add") for e in again.pending()] == ["add", "add", "add", "remove"]

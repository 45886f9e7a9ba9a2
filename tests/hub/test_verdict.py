"""judge(): the consumer's verdict for every state and for scan counts around the threshold."""

from __future__ import annotations

import pytest

from hub.domain.lifecycle import State
from hub.domain.verdict import Judgement, Verdict, judge

THRESHOLD = 5
ACTIVATED = (State.SHIPPED, State.RECEIVED, State.CONSUMED)
NOT_SHIPPED = (State.GENERATED, State.COMMISSIONED, State.PACKED)
DEAD = (State.VOID, State.RECALLED, State.DECOMMISSIONED)
COUNTS = (1, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 1000)


def test_the_groups_cover_every_state() -> None:
    assert set(ACTIVATED + NOT_SHIPPED + DEAD) == set(State)


@pytest.mark.parametrize("state", ACTIVATED)
@pytest.mark.parametrize(
    ("scan_count", "expected"),
    [
        (1, Judgement(Verdict.GENUINE, "activated")),
        (THRESHOLD - 1, Judgement(Verdict.GENUINE, "activated")),
        (THRESHOLD, Judgement(Verdict.GENUINE, "activated")),
        (THRESHOLD + 1, Judgement(Verdict.SUSPICIOUS, "scanned 6 times (more than 5)")),
        (1000, Judgement(Verdict.SUSPICIOUS, "scanned 1000 times (more than 5)")),
    ],
)
def test_activated_codes(state: State, scan_count: int, expected: Judgement) -> None:
    assert judge(state.value, scan_count, THRESHOLD) == expected


@pytest.mark.parametrize("state", NOT_SHIPPED)
@pytest.mark.parametrize("scan_count", COUNTS)
def test_unshipped_codes_are_not_activated_however_often_scanned(
    state: State, scan_count: int
) -> None:
    assert judge(state.value, scan_count, THRESHOLD) == Judgement(
        Verdict.NOT_ACTIVATED, f"code is {state.value}, not shipped"
    )


@pytest.mark.parametrize("state", DEAD)
@pytest.mark.parametrize("scan_count", COUNTS)
def test_void_recalled_and_decommissioned_codes_are_unknown(state: State, scan_count: int) -> None:
    assert judge(state.value, scan_count, THRESHOLD) == Judgement(
        Verdict.UNKNOWN, f"code is {state.value}"
    )


@pytest.mark.parametrize(
    ("threshold", "scan_count", "verdict"),
    [(1, 1, Verdict.GENUINE), (1, 2, Verdict.SUSPICIOUS), (20, 20, Verdict.GENUINE)],
)
def test_threshold_is_a_parameter(threshold: int, scan_count: int, verdict: Verdict) -> None:
    assert judge("shipped", scan_count, threshold).verdict is verdict

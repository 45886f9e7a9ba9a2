"""Every (state, step) pair: the new state, or the exact reason the transition is refused."""

from __future__ import annotations

import pytest

from hub.domain.lifecycle import ACTIVATED, State, Step, transition
from hub.errors import TransitionRefused

S, T = State, Step
ALLOWED = [
    (S.GENERATED, T.COMMISSIONING, S.COMMISSIONED),
    (S.COMMISSIONED, T.PACKING, S.PACKED),
    (S.PACKED, T.UNPACKING, S.COMMISSIONED),
    (S.COMMISSIONED, T.SHIPPING, S.SHIPPED),
    (S.PACKED, T.SHIPPING, S.SHIPPED),
    (S.SHIPPED, T.UNSHIPPING, S.COMMISSIONED),
    (S.SHIPPED, T.RECEIVING, S.RECEIVED),
    (S.SHIPPED, T.CONSUMING, S.CONSUMED),
    (S.RECEIVED, T.CONSUMING, S.CONSUMED),
    (S.GENERATED, T.VOIDING, S.VOID),
    (S.COMMISSIONED, T.VOIDING, S.VOID),
    (S.PACKED, T.VOIDING, S.VOID),
    *((s, T.RECALLING, S.RECALLED) for s in (S.COMMISSIONED, S.PACKED, S.SHIPPED)),
    *((s, T.RECALLING, S.RECALLED) for s in (S.RECEIVED, S.CONSUMED)),
    *((s, T.DECOMMISSIONING, S.DECOMMISSIONED) for s in (S.COMMISSIONED, S.PACKED)),
    *((s, T.DECOMMISSIONING, S.DECOMMISSIONED) for s in (S.SHIPPED, S.RECEIVED)),
    *((s, T.DECOMMISSIONING, S.DECOMMISSIONED) for s in (S.CONSUMED, S.RECALLED)),
    # Inspecting is a look: it is allowed everywhere and changes nothing.
    *((s, T.INSPECTING, s) for s in State),
]

NEVER_READ = "not commissioned: never read on a production line"
# The refusals with a reason of their own; every other refusal says "code is <state>".
SPECIAL = [
    (S.COMMISSIONED, T.COMMISSIONING, "already commissioned (duplicate label?)"),
    (S.PACKED, T.COMMISSIONING, "already commissioned and packed (duplicate label?)"),
    (S.SHIPPED, T.COMMISSIONING, "already shipped"),
    (S.RECEIVED, T.COMMISSIONING, "already shipped"),
    (S.CONSUMED, T.COMMISSIONING, "already shipped"),
    (S.GENERATED, T.PACKING, NEVER_READ),
    (S.PACKED, T.PACKING, "already packed in another case or pallet"),
    (S.SHIPPED, T.PACKING, "already shipped"),
    (S.RECEIVED, T.PACKING, "already shipped"),
    (S.CONSUMED, T.PACKING, "already shipped"),
    (S.COMMISSIONED, T.UNPACKING, "not packed in a case or pallet"),
    (S.GENERATED, T.SHIPPING, NEVER_READ),
    (S.SHIPPED, T.SHIPPING, "already shipped"),
    (S.RECEIVED, T.SHIPPING, "already shipped"),
    (S.CONSUMED, T.SHIPPING, "already shipped"),
    (S.RECEIVED, T.RECEIVING, "already received"),
    (S.RECEIVED, T.UNSHIPPING, "already received by the dealer"),
    (S.CONSUMED, T.UNSHIPPING, "already consumed (redeemed)"),
    (S.CONSUMED, T.CONSUMING, "already consumed (redeemed)"),
    (S.RECALLED, T.RECALLING, "already recalled"),
    (S.GENERATED, T.RECALLING, "never commissioned: void the label instead"),
    (S.VOID, T.VOIDING, "already void"),
]
_allowed = {(s, step) for s, step, _ in ALLOWED}
_special = {(s, step) for s, step, _ in SPECIAL}
REFUSED = SPECIAL + [
    (s, step, f"code is {s.value}")
    for step in Step
    for s in State
    if (s, step) not in _allowed and (s, step) not in _special
]


def test_the_tables_cover_every_state_and_step() -> None:
    covered = {(s, step) for s, step, _ in ALLOWED} | {(s, step) for s, step, _ in REFUSED}
    assert covered == {(s, step) for s in State for step in Step}


@pytest.mark.parametrize(("state", "step", "expected"), ALLOWED)
def test_allowed_transition(state: State, step: Step, expected: State) -> None:
    assert transition(state.value, step) is expected


@pytest.mark.parametrize(("state", "step", "why"), REFUSED)
def test_refused_transition_says_why(state: State, step: Step, why: str) -> None:
    with pytest.raises(TransitionRefused) as caught:
        transition(state.value, step)
    assert str(caught.value) == f"{step.value} refused: {why}"


def test_unknown_state_is_a_programming_error_not_a_refusal() -> None:
    with pytest.raises(ValueError, match="'lost'"):
        transition("lost", Step.SHIPPING)


def test_activated_states() -> None:
    assert {State.SHIPPED, State.RECEIVED, State.CONSUMED} == ACTIVATED

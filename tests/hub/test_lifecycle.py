"""Every (state, step) pair: the new state, or the exact reason the transition is refused."""

from __future__ import annotations

import pytest

from hub.domain.lifecycle import ACTIVATED, State, Step, transition
from hub.errors import TransitionRefused

ALLOWED = [
    (State.GENERATED, Step.COMMISSIONING, State.COMMISSIONED),
    (State.COMMISSIONED, Step.PACKING, State.PACKED),
    (State.COMMISSIONED, Step.SHIPPING, State.SHIPPED),
    (State.PACKED, Step.SHIPPING, State.SHIPPED),
]

NEVER_READ = "not commissioned: never read on a production line"
REFUSED = [
    (State.COMMISSIONED, Step.COMMISSIONING, "already commissioned (duplicate label?)"),
    (State.PACKED, Step.COMMISSIONING, "code is packed"),
    (State.SHIPPED, Step.COMMISSIONING, "already shipped"),
    (State.RECEIVED, Step.COMMISSIONING, "already shipped"),
    (State.CONSUMED, Step.COMMISSIONING, "already shipped"),
    (State.VOID, Step.COMMISSIONING, "code is void"),
    (State.RECALLED, Step.COMMISSIONING, "code is recalled"),
    (State.DECOMMISSIONED, Step.COMMISSIONING, "code is decommissioned"),
    (State.GENERATED, Step.PACKING, NEVER_READ),
    (State.PACKED, Step.PACKING, "already packed in another case or pallet"),
    (State.SHIPPED, Step.PACKING, "already shipped"),
    (State.RECEIVED, Step.PACKING, "already shipped"),
    (State.CONSUMED, Step.PACKING, "already shipped"),
    (State.VOID, Step.PACKING, "code is void"),
    (State.RECALLED, Step.PACKING, "code is recalled"),
    (State.DECOMMISSIONED, Step.PACKING, "code is decommissioned"),
    (State.GENERATED, Step.SHIPPING, NEVER_READ),
    (State.SHIPPED, Step.SHIPPING, "already shipped"),
    (State.RECEIVED, Step.SHIPPING, "already shipped"),
    (State.CONSUMED, Step.SHIPPING, "already shipped"),
    (State.VOID, Step.SHIPPING, "code is void"),
    (State.RECALLED, Step.SHIPPING, "code is recalled"),
    (State.DECOMMISSIONED, Step.SHIPPING, "code is decommissioned"),
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

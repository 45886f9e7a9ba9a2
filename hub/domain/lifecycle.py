"""Code lifecycle: which transition each business step makes, and why it may be refused.

generated → commissioned (read on the line) → packed (in a case or pallet) → shipped
(= activated, bound to order, dealer, region) → received → consumed. Side states: void,
recalled, decommissioned. An impossible transition raises TransitionRefused with a reason
that is recorded; nothing is silently applied.
"""

from __future__ import annotations

import enum

from hub.errors import TransitionRefused


class State(enum.StrEnum):
    GENERATED = "generated"
    COMMISSIONED = "commissioned"
    PACKED = "packed"
    SHIPPED = "shipped"
    RECEIVED = "received"
    CONSUMED = "consumed"
    VOID = "void"
    RECALLED = "recalled"
    DECOMMISSIONED = "decommissioned"


class Step(enum.StrEnum):
    """Business steps, named as EPCIS bizSteps where one exists."""

    COMMISSIONING = "commissioning"
    PACKING = "packing"
    SHIPPING = "shipping"


ACTIVATED = frozenset({State.SHIPPED, State.RECEIVED, State.CONSUMED})

_ALLOWED: dict[Step, tuple[frozenset[State], State]] = {
    Step.COMMISSIONING: (frozenset({State.GENERATED}), State.COMMISSIONED),
    Step.PACKING: (frozenset({State.COMMISSIONED}), State.PACKED),
    Step.SHIPPING: (frozenset({State.COMMISSIONED, State.PACKED}), State.SHIPPED),
}

_WHY: dict[tuple[Step, State], str] = {
    (Step.COMMISSIONING, State.COMMISSIONED): "already commissioned (duplicate label?)",
    (Step.SHIPPING, State.GENERATED): "not commissioned: never read on a production line",
    (Step.PACKING, State.GENERATED): "not commissioned: never read on a production line",
    (Step.PACKING, State.PACKED): "already packed in another case or pallet",
}


def sources(step: Step) -> frozenset[State]:
    """The states a code may be in for ``step`` to apply (for conditional UPDATEs)."""
    return _ALLOWED[step][0]


def transition(current: str, step: Step) -> State:
    """The state after ``step``, or TransitionRefused saying why it cannot happen."""
    allowed, target = _ALLOWED[step]
    state = State(current)
    if state in allowed:
        return target
    why = _WHY.get((step, state))
    if why is None:
        why = "already shipped" if state in ACTIVATED else f"code is {state.value}"
    raise TransitionRefused(f"{step.value} refused: {why}")

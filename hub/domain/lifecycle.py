"""Code lifecycle: which transition each business step makes, and why it may be refused.

generated → commissioned (read on the line) → packed (in a case or pallet) → shipped
(= activated, bound to order, dealer, region) → received → consumed. Side states: void,
recalled, decommissioned. An impossible transition raises TransitionRefused with a reason
that is recorded; nothing is silently applied.

This table is the only statement of the rules. ``hub.domain.gate`` applies it to the database
with conditional UPDATEs, so every caller (ingest, shipping, recall, void, receiving, EPCIS)
goes through the same check.
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
    UNPACKING = "unpacking"
    SHIPPING = "shipping"
    UNSHIPPING = "unshipping"  # an admin takes back a mistaken shipment within the grace period
    RECEIVING = "receiving"
    CONSUMING = "consuming"  # points claimed / card redeemed
    VOIDING = "voiding"  # a scrapped or destroyed label (EPCIS: destroying)
    RECALLING = "recalling"
    DECOMMISSIONING = "decommissioning"
    INSPECTING = "inspecting"  # a look, recorded as an event; changes no state


ACTIVATED = frozenset({State.SHIPPED, State.RECEIVED, State.CONSUMED})
# On the market or on its way there: what a recall reaches.
_RECALLABLE = frozenset(
    {State.COMMISSIONED, State.PACKED, State.SHIPPED, State.RECEIVED, State.CONSUMED}
)

_ALLOWED: dict[Step, tuple[frozenset[State], State | None]] = {
    Step.COMMISSIONING: (frozenset({State.GENERATED}), State.COMMISSIONED),
    Step.PACKING: (frozenset({State.COMMISSIONED}), State.PACKED),
    Step.UNPACKING: (frozenset({State.PACKED}), State.COMMISSIONED),
    Step.SHIPPING: (frozenset({State.COMMISSIONED, State.PACKED}), State.SHIPPED),
    # Un-shipping returns a code to the warehouse; a code that was in a case is then packed
    # again by a PACKING step (the gate has one target per step).
    Step.UNSHIPPING: (frozenset({State.SHIPPED}), State.COMMISSIONED),
    Step.RECEIVING: (frozenset({State.SHIPPED}), State.RECEIVED),
    Step.CONSUMING: (frozenset({State.SHIPPED, State.RECEIVED}), State.CONSUMED),
    Step.VOIDING: (
        frozenset({State.GENERATED, State.COMMISSIONED, State.PACKED}),
        State.VOID,
    ),
    Step.RECALLING: (_RECALLABLE, State.RECALLED),
    Step.DECOMMISSIONING: (_RECALLABLE | {State.RECALLED}, State.DECOMMISSIONED),
    Step.INSPECTING: (frozenset(State), None),
}

_WHY: dict[tuple[Step, State], str] = {
    (Step.COMMISSIONING, State.COMMISSIONED): "already commissioned (duplicate label?)",
    (Step.COMMISSIONING, State.PACKED): "already commissioned and packed (duplicate label?)",
    (Step.SHIPPING, State.GENERATED): "not commissioned: never read on a production line",
    (Step.PACKING, State.GENERATED): "not commissioned: never read on a production line",
    (Step.PACKING, State.PACKED): "already packed in another case or pallet",
    (Step.UNPACKING, State.COMMISSIONED): "not packed in a case or pallet",
    (Step.RECEIVING, State.RECEIVED): "already received",
    (Step.UNSHIPPING, State.RECEIVED): "already received by the dealer",
    (Step.UNSHIPPING, State.CONSUMED): "already consumed (redeemed)",
    (Step.CONSUMING, State.CONSUMED): "already consumed (redeemed)",
    (Step.RECALLING, State.RECALLED): "already recalled",
    (Step.RECALLING, State.GENERATED): "never commissioned: void the label instead",
    (Step.VOIDING, State.VOID): "already void",
}


def sources(step: Step) -> frozenset[State]:
    """The states a code may be in for ``step`` to apply (for conditional UPDATEs)."""
    return _ALLOWED[step][0]


def target(step: Step) -> State | None:
    """The state ``step`` moves a code to; None for a step that changes no state."""
    return _ALLOWED[step][1]


def why_not(current: str, step: Step) -> str | None:
    """Why ``step`` cannot apply to a code in state ``current``; None when it can."""
    state = State(current)  # a state not in the table is a programming error: ValueError
    if state in _ALLOWED[step][0]:
        return None
    why = _WHY.get((step, state))
    if why is None:
        if state in ACTIVATED and step in (Step.COMMISSIONING, Step.PACKING, Step.SHIPPING):
            why = "already shipped"
        else:
            why = f"code is {state.value}"
    return f"{step.value} refused: {why}"


def transition(current: str, step: Step) -> State:
    """The state after ``step``, or TransitionRefused saying why it cannot happen."""
    why = why_not(current, step)
    if why is not None:
        raise TransitionRefused(why)
    return target(step) or State(current)

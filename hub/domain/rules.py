"""Business rules beyond the lifecycle table, each stated once: the GTIN on a label, the
product of a work order, what may be packed into what."""

from __future__ import annotations

from collections.abc import Sequence

from hub.domain.lifecycle import State, Step, why_not
from protocols.codes import CodeKind


def gtin_mismatch(label_gtin: str | None, product_gtin: str | None, serial: str) -> str | None:
    """Why a label's GTIN contradicts the product its serial was issued for; None if it
    does not (a label without a GTIN, the short /c/ form, names no product)."""
    if label_gtin is None or label_gtin == product_gtin:
        return None
    return (
        f"GTIN mismatch: label says {label_gtin}, code {serial} belongs to "
        f"{product_gtin or 'a product without GTIN'}"
    )


def wrong_product(expected_sku: str | None, actual_sku: str, serial: str) -> str | None:
    """Why a code does not belong to the work order's product; None if it does."""
    if expected_sku is None or expected_sku == actual_sku:
        return None
    return (
        f"wrong product: work order is for {expected_sku!r}, code {serial} "
        f"belongs to {actual_sku!r}"
    )


def aggregation_refusal(
    parent_serial: str, parent_kind: CodeKind, children: Sequence[tuple[str, CodeKind]]
) -> str | None:
    """Why ``children`` (serial, kind) cannot go into the parent; None if they can.

    A parent is a case or a pallet; a child is of a smaller kind (items into cases, items or
    cases into pallets); no child is listed twice; a parent holds at least one child.
    """
    if parent_kind is CodeKind.ITEM:
        return f"parent {parent_serial} is an item code: expected a case or pallet"
    if not children:
        return f"parent {parent_serial}: no children to pack"
    seen: set[str] = set()
    for serial, kind in children:
        if kind >= parent_kind:
            return (
                f"child {serial} is a {kind.name.lower()}: cannot go into a "
                f"{parent_kind.name.lower()}"
            )
        if serial in seen:
            return f"child {serial} is listed twice"
        if serial == parent_serial:
            return f"{serial} cannot be packed into itself"
        seen.add(serial)
    return None


def packing_refusal(
    parent_serial: str,
    parent_kind: CodeKind,
    parent_state: str,
    children: Sequence[tuple[str, CodeKind, str]],
) -> str | None:
    """Why children (serial, kind, state) cannot be packed into the parent in its state;
    None if they can: the aggregation rule, each child's packing transition, and a parent
    that can still take children."""
    why = aggregation_refusal(parent_serial, parent_kind, [(s, k) for s, k, _ in children])
    if why is not None:
        return why
    for serial, _kind, state in children:
        child_why = why_not(state, Step.PACKING)
        if child_why is not None:
            return f"child {serial}: {child_why}"
    if parent_state not in (State.GENERATED, State.COMMISSIONED, State.PACKED):
        return f"parent {parent_serial} is {parent_state}: cannot take children"
    return None

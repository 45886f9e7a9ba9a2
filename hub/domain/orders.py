"""Order rules, stated once: the order states, what each action needs, the ERP import rows.

open → in_progress (first accepted scan) → complete | short_shipped (with a reason, leaving a
backorder for what is missing); open or in_progress → cancelled. An un-ship (admin, within the
grace period) puts a shipped order back to open.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hub.errors import ConflictError, InvalidRequestError


class OrderState(enum.StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    SHORT_SHIPPED = "short_shipped"
    CANCELLED = "cancelled"


SCANNABLE = frozenset({OrderState.OPEN, OrderState.IN_PROGRESS})
SHIPPED = frozenset({OrderState.COMPLETE, OrderState.SHORT_SHIPPED})


def check_scannable(number: str, state: str) -> None:
    """Scans, completion and cancelling need an order that is still being picked."""
    if state not in SCANNABLE:
        raise ConflictError(f"Order {number!r} is {state}: expected open or in_progress")


def completion_state(number: str, shortfall: Mapping[str, int], reason: str | None) -> OrderState:
    """complete when nothing is missing; short_shipped when something is and a reason says
    why; otherwise refused, naming what is missing."""
    if not shortfall:
        return OrderState.COMPLETE
    if not reason or not reason.strip():
        missing = ", ".join(f"{n} {sku}" for sku, n in sorted(shortfall.items()))
        raise InvalidRequestError(
            f"Order {number!r} is short ({missing}): a short shipment needs a reason"
        )
    return OrderState.SHORT_SHIPPED


def backorder_number(number: str, existing: Iterable[str]) -> str:
    """``<number>-BO<n>``, the first n not taken."""
    taken = set(existing)
    n = 1
    while f"{number}-BO{n}" in taken:
        n += 1
    return f"{number}-BO{n}"[:64]


@dataclass(frozen=True)
class OrderDraft:
    """An order as an ERP sends it, before it touches the database."""

    number: str
    dealer: str
    region: str | None
    notes: str | None
    assigned_to: str | None
    lines: dict[str, int]  # sku -> quantity


# ERP files: one row per order line; the order's fields repeat on each of its lines.
IMPORT_COLUMNS = ("order", "dealer", "region", "sku", "quantity", "notes", "assigned_to")
REQUIRED_COLUMNS = ("order", "dealer", "sku", "quantity")


def drafts_from_rows(header: list[str], rows: Iterable[list[str]]) -> list[OrderDraft]:
    """Group import rows into orders; every problem is reported with its row number (the
    header is row 1) and nothing is imported when there is one."""
    names = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise InvalidRequestError(
            f"Import header lacks {', '.join(missing)}: expected columns "
            f"{', '.join(IMPORT_COLUMNS)}, got {', '.join(names) or 'none'}"
        )
    unknown = [n for n in names if n not in IMPORT_COLUMNS]
    if unknown:
        raise InvalidRequestError(
            f"Import header has unknown columns {', '.join(unknown)}: expected "
            f"{', '.join(IMPORT_COLUMNS)}"
        )
    problems: list[str] = []
    orders: dict[str, dict[str, object]] = {}
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(names):
            problems.append(f"row {number}: {len(row)} cells, expected at most {len(names)}")
            continue
        cell = {n: (row[i].strip() if i < len(row) else "") for i, n in enumerate(names)}
        empty = [c for c in REQUIRED_COLUMNS if not cell.get(c)]
        if empty:
            problems.append(f"row {number}: empty {', '.join(empty)}")
            continue
        try:
            quantity = int(cell["quantity"])
        except ValueError:
            problems.append(f"row {number}: quantity {cell['quantity'][:20]!r} is no whole number")
            continue
        if not 1 <= quantity <= 1_000_000:
            problems.append(f"row {number}: quantity {quantity}, expected 1..1000000")
            continue
        too_long = [
            c
            for c, limit in (("order", 64), ("dealer", 64), ("sku", 64), ("region", 100))
            if len(cell.get(c, "")) > limit
        ]
        if too_long:
            problems.append(f"row {number}: {', '.join(too_long)} too long")
            continue
        order = orders.setdefault(
            cell["order"],
            {
                "dealer": cell["dealer"],
                "region": cell.get("region") or None,
                "notes": cell.get("notes") or None,
                "assigned_to": (cell.get("assigned_to") or None),
                "lines": {},
                "row": number,
            },
        )
        if order["dealer"] != cell["dealer"]:
            problems.append(
                f"row {number}: order {cell['order']} has dealer {order['dealer']} on row "
                f"{order['row']} and {cell['dealer']} here"
            )
            continue
        lines = order["lines"]
        assert isinstance(lines, dict)
        if cell["sku"] in lines:
            problems.append(f"row {number}: order {cell['order']} lists {cell['sku']} twice")
            continue
        lines[cell["sku"]] = quantity
    if problems:
        raise InvalidRequestError(
            "Import refused, nothing imported: "
            + "; ".join(problems[:20])
            + ("; ..." if len(problems) > 20 else "")
        )
    if not orders:
        raise InvalidRequestError("Import refused: the file has no order lines")
    return [
        OrderDraft(
            number=number,
            dealer=str(o["dealer"]),
            region=o["region"],  # type: ignore[arg-type]
            notes=o["notes"],  # type: ignore[arg-type]
            assigned_to=o["assigned_to"],  # type: ignore[arg-type]
            lines=dict(o["lines"]),  # type: ignore[call-overload]
        )
        for number, o in orders.items()
    ]

"""Outbound scanning against an order: the one judgement of a scan, shared by the PDA (offline,
against the order it downloaded) and the hub (authoritative, against its database).

Both sides build a :class:`Tally` of the order (lines to fill, what is counted so far, every
serial already covered) and a :class:`KnownCode` for the scanned serial, and ask
:meth:`Tally.judge`. So the device and the hub can never disagree about what "over quantity"
or "duplicate" means; they only differ in what they know.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from protocols.codes import CodeRef, parse_code
from protocols.errors import CodeCheckError, CodeError


class ScanResult(enum.StrEnum):
    """Every scan gets exactly one of these."""

    OK = "ok"
    WRONG_PRODUCT = "wrong_product"  # not a product of this order
    OVER_QUANTITY = "over_quantity"  # would exceed its line (a case: rejected whole)
    DUPLICATE_IN_ORDER = "duplicate_in_order"  # already scanned in this order (or inside a case)
    ALREADY_SHIPPED = "already_shipped"
    NOT_COMMISSIONED = "not_commissioned"  # never read on a production line
    UNKNOWN = "unknown"  # well formed, but no code the order (or the hub) knows
    BAD_CHECK = "bad_check"  # not a code: a misread, a typing mistake, a foreign barcode
    CONFLICT = "conflict"  # claimed by another order (another device won)


class CodeStatus(enum.StrEnum):
    """What the scanning side knows of a code's state, in the terms scanning needs."""

    AVAILABLE = "available"  # commissioned or packed, claimed by no order
    SHIPPED = "shipped"
    NOT_COMMISSIONED = "not_commissioned"
    CLAIMED = "claimed"  # reserved by another order's scan, not shipped yet
    UNAVAILABLE = "unavailable"  # void, recalled, decommissioned


@dataclass(frozen=True)
class KnownCode:
    """A code as the order sees it. ``contents`` are the serials packed inside (any depth) and
    ``items`` the item count per SKU it would ship (1 for an item)."""

    serial: str
    kind: str
    sku: str
    status: CodeStatus = CodeStatus.AVAILABLE
    contents: tuple[str, ...] = ()
    items: Mapping[str, int] = field(default_factory=dict)
    detail: str | None = None  # e.g. the order that claimed or shipped it

    def counts(self) -> Mapping[str, int]:
        return {self.sku: 1} if self.kind == "item" else self.items


@dataclass(frozen=True)
class Judgement:
    result: ScanResult
    reason: str
    serial: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    covers: tuple[str, ...] = ()  # the serial and its contents, when accepted

    @property
    def ok(self) -> bool:
        return self.result is ScanResult.OK


def read_serial(text: str) -> CodeRef | Judgement:
    """The code in a scanned text (format check, no keys), or a bad_check judgement."""
    try:
        return parse_code(text)
    except CodeCheckError as exc:
        return Judgement(ScanResult.BAD_CHECK, f"typing mistake: {exc}")
    except CodeError as exc:
        return Judgement(ScanResult.BAD_CHECK, f"not a Yima code: {exc}")


@dataclass
class Tally:
    """What an order needs and what its accepted scans cover so far."""

    lines: dict[str, int]  # sku -> items to ship
    gtins: dict[str, str] = field(default_factory=dict)  # GTIN-14 -> sku, for label checks
    counted: dict[str, int] = field(default_factory=dict)  # sku -> items accepted
    covered: dict[str, str] = field(default_factory=dict)  # serial -> scan id that covers it

    def remaining(self, sku: str) -> int:
        return self.lines.get(sku, 0) - self.counted.get(sku, 0)

    @property
    def total(self) -> int:
        return sum(self.lines.values())

    @property
    def done(self) -> int:
        return sum(min(self.counted.get(s, 0), q) for s, q in self.lines.items())

    @property
    def complete(self) -> bool:
        return all(self.remaining(sku) <= 0 for sku in self.lines)

    def shortfall(self) -> dict[str, int]:
        return {sku: self.remaining(sku) for sku in self.lines if self.remaining(sku) > 0}

    def judge(self, ref: CodeRef, known: KnownCode | None) -> Judgement:
        """The result of scanning ``ref`` now; changes nothing (see :meth:`accept`)."""
        serial = ref.serial.value
        label_sku = self.gtins.get(ref.gtin) if ref.gtin else None
        if ref.gtin and label_sku is None:
            return Judgement(
                ScanResult.WRONG_PRODUCT,
                f"label GTIN {ref.gtin} is no product of this order",
                serial,
            )
        if serial in self.covered:
            return Judgement(
                ScanResult.DUPLICATE_IN_ORDER, f"{serial} is already scanned in this order", serial
            )
        if known is None:
            return Judgement(ScanResult.UNKNOWN, f"{serial} is no code this order knows", serial)
        if label_sku is not None and label_sku != known.sku:
            return Judgement(
                ScanResult.WRONG_PRODUCT,
                f"label GTIN {ref.gtin} contradicts {serial}'s product {known.sku}",
                serial,
            )
        inside = next((s for s in known.contents if s in self.covered), None)
        if inside is not None:
            return Judgement(
                ScanResult.DUPLICATE_IN_ORDER,
                f"{known.kind} {serial} holds {inside}, already scanned in this order",
                serial,
            )
        status = _STATUS_RESULT.get(known.status)
        if status is not None:
            result, text = status
            detail = f" ({known.detail})" if known.detail else ""
            return Judgement(result, f"{serial} {text}{detail}", serial)
        counts = known.counts()
        if not counts:
            return Judgement(
                ScanResult.UNKNOWN, f"{known.kind} {serial} holds no items to ship", serial
            )
        foreign = sorted(sku for sku in counts if sku not in self.lines)
        if foreign:
            return Judgement(
                ScanResult.WRONG_PRODUCT,
                f"{known.kind} {serial} is {', '.join(foreign)}: not a product of this order",
                serial,
            )
        for sku, n in sorted(counts.items()):
            if n > self.remaining(sku):
                return Judgement(
                    ScanResult.OVER_QUANTITY,
                    f"{known.kind} {serial} adds {n} {sku}, only {max(self.remaining(sku), 0)} "
                    "left on the line",
                    serial,
                )
        return Judgement(
            ScanResult.OK,
            f"{known.kind} {serial}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
            serial,
            dict(counts),
            (serial, *known.contents),
        )

    def accept(self, judgement: Judgement, scan_id: str) -> None:
        """Count an ok judgement under ``scan_id``."""
        if not judgement.ok:
            raise ValueError(f"only ok scans are counted, got {judgement.result}")
        for sku, n in judgement.counts.items():
            self.counted[sku] = self.counted.get(sku, 0) + n
        for serial in judgement.covers:
            self.covered[serial] = scan_id

    def release(self, judgement: Judgement) -> None:
        """Undo :meth:`accept` (a scan undone or removed)."""
        for sku, n in judgement.counts.items():
            self.counted[sku] = self.counted.get(sku, 0) - n
        for serial in judgement.covers:
            self.covered.pop(serial, None)


_STATUS_RESULT: dict[CodeStatus, tuple[ScanResult, str]] = {
    CodeStatus.SHIPPED: (ScanResult.ALREADY_SHIPPED, "is already shipped"),
    CodeStatus.NOT_COMMISSIONED: (
        ScanResult.NOT_COMMISSIONED,
        "was never read on a production line",
    ),
    CodeStatus.CLAIMED: (ScanResult.CONFLICT, "is claimed by another order"),
    CodeStatus.UNAVAILABLE: (ScanResult.UNKNOWN, "cannot ship: void, recalled or decommissioned"),
}

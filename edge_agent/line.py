"""Line logic: which item a read belongs to, and the decision for every item.

Pure: no camera, serial port or network. Positions are belt travel in camera pixels (an
encoder, or speed × time), so the logic is the same at any line speed and in tests.

* A photo-eye trigger at belt position ``p`` is a new item whose centre is at
  ``eye_x`` in the camera picture at that moment, and at ``eye_x + (P - p)`` when the belt is
  at ``P``. A read at centre x in a frame taken at belt position ``P`` belongs to the item
  predicted nearest to x (within ``match_px``).
* Once an item's predicted centre passes ``exit_x`` it has left the camera's view and is
  decided: good (commission), or rejected with a reason (protocols.REJECT_REASONS).
* A reject must reach the PLC before the item reaches the reject point, ``reject_at`` of belt
  travel after the photo-eye; a decision made later is counted as late (the PLC cannot push
  the item off any more).

The decision for the codes read on one item is :func:`judge`, shared with manual mode (a
hand scanner: one scan is one item).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from protocols.codes import check_code
from protocols.errors import CodeError
from protocols.messages import MAX_CODE_TEXT, WorkOrder

GOOD = "good"


@dataclass(frozen=True)
class Verdict:
    """The decision for one item: ``reason`` is GOOD or one of REJECT_REASONS."""

    item: int
    reason: str
    code: str | None = None  # the code to commission (good) or that caused the reject
    reads: tuple[str, ...] = ()  # every distinct text read on the item
    late: bool = False  # decided after the item passed the reject point

    @property
    def good(self) -> bool:
        return self.reason == GOOD


@functools.lru_cache(maxsize=4096)
def _gtin_of(text: str) -> str | None:
    try:
        return check_code(text).gtin
    except CodeError:
        return None


@functools.lru_cache(maxsize=4096)
def is_code(text: str) -> bool:
    """Whether a read is some printed form of a Yima code (format check only: the station
    holds no keys; the hub runs the keyed check and the pool check). Cached: a label is read
    in several consecutive frames, and parsing a GS1 Digital Link costs about 1 ms."""
    if not 0 < len(text) <= MAX_CODE_TEXT:
        return False
    try:
        check_code(text)
    except CodeError:
        return False
    return True


def judge(
    item: int,
    reads: Iterable[str],
    work_order: WorkOrder | None,
    *,
    commissioned: Callable[[str], bool],
    stopped: str | None = None,
) -> Verdict:
    """The decision for one item from the texts read on it.

    Order matters and is the order an operator would ask: is the line allowed to run, is
    there a code at all, is it ours, is it one code, has it been used, is it this product.
    ``commissioned(code)`` says whether the code was commissioned before (this run or
    known to the hub). Texts that are no Yima code are foreign only when no code of ours is
    on the item (a carton may carry other barcodes too).
    """
    texts = tuple(dict.fromkeys(reads))
    if stopped is not None:
        return Verdict(item, "line_stopped", None, texts)
    if work_order is None:
        return Verdict(item, "no_work_order", None, texts)
    if not texts:
        return Verdict(item, "no_read")
    ours = [t for t in texts if is_code(t)]
    if not ours:
        return Verdict(item, "foreign", texts[0], texts)
    if len(ours) > 1:
        return Verdict(item, "multiple_codes", ours[1], texts)
    code = ours[0]
    if commissioned(code):
        return Verdict(item, "duplicate", code, texts)
    if work_order.gtin is not None:
        gtin = _gtin_of(code)
        if gtin is not None and gtin != work_order.gtin:
            return Verdict(item, "wrong_product", code, texts)
    return Verdict(item, GOOD, code, texts)


@dataclass(frozen=True)
class LineGeometry:
    """Where things are, in camera pixels of belt travel (see the module docstring)."""

    eye_x: float = 0.0  # item centre in the picture when the photo-eye fires
    exit_x: float = 1400.0  # past this centre x the item has left the view: decide
    reject_at: float = 2400.0  # belt travel from the photo-eye to the reject point
    match_px: float = 150.0  # furthest a read may be from an item's predicted centre

    def __post_init__(self) -> None:
        if self.exit_x <= self.eye_x:
            raise ValueError(f"exit_x expected > eye_x ({self.eye_x}), got {self.exit_x}")
        if self.reject_at < self.exit_x - self.eye_x:
            raise ValueError(
                f"reject_at expected >= exit_x - eye_x ({self.exit_x - self.eye_x}): the reject "
                f"point must be past the camera, got {self.reject_at}"
            )
        if self.match_px <= 0:
            raise ValueError(f"match_px expected > 0, got {self.match_px}")


@dataclass
class _Item:
    number: int
    position: float  # belt position when the photo-eye fired
    reads: list[str] = field(default_factory=list)


@dataclass
class LineCounters:
    items: int = 0
    orphan_reads: int = 0  # reads that matched no item (the photo-eye missed one?)
    late: int = 0  # decisions made after the item passed the reject point


class LineTracker:
    """Items from the photo-eye, reads matched to them by position, decisions at exit."""

    def __init__(self, geometry: LineGeometry | None = None, first_item: int = 1) -> None:
        self.geometry = geometry if geometry is not None else LineGeometry()
        self._items: OrderedDict[int, _Item] = OrderedDict()
        self._next = first_item
        self.counters = LineCounters()

    @property
    def in_flight(self) -> int:
        return len(self._items)

    def trigger(self, position: float) -> int:
        """The photo-eye saw an item at belt ``position``: its number."""
        number = self._next
        self._next += 1
        self._items[number] = _Item(number, position)
        self.counters.items += 1
        return number

    def observe(
        self, position: float, reads: Iterable[tuple[str, float | None]]
    ) -> list[tuple[int, list[str], bool]]:
        """Take the reads (text, centre x) of a frame taken at belt ``position``; return the
        items that left the view, oldest first: (number, texts read on it, late), late when the
        item already passed the reject point."""
        g = self.geometry
        for text, x in reads:
            best: _Item | None = None
            best_d = g.match_px
            for item in self._items.values():
                predicted = g.eye_x + (position - item.position)
                d = abs(predicted - x) if x is not None else abs(predicted - g.eye_x)
                if predicted >= g.eye_x - g.match_px and d <= best_d:
                    best, best_d = item, d
            if best is None:
                self.counters.orphan_reads += 1
            elif text not in best.reads:
                best.reads.append(text)
        return self.leaving(position)

    def leaving(self, position: float) -> list[tuple[int, list[str], bool]]:
        """Items whose centre passed ``exit_x`` at belt ``position`` (removed)."""
        g = self.geometry
        done = []
        for number, item in list(self._items.items()):
            if g.eye_x + (position - item.position) > g.exit_x:
                del self._items[number]
                late = position - item.position > g.reject_at
                if late:
                    self.counters.late += 1
                done.append((number, item.reads, late))
        return done

    def item_position(self, number: int) -> float | None:
        item = self._items.get(number)
        return None if item is None else item.position


@dataclass
class Reconciliation:
    """Production-run reconciliation of one work order: allocated (codes in its pool), read,
    commissioned, rejected by reason, leftover (allocated codes not commissioned)."""

    work_order: str
    allocated: int = 0
    items: int = 0
    read: int = 0
    commissioned: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def leftover(self) -> int:
        return max(0, self.allocated - self.commissioned)

    def count(self, verdict: Verdict) -> None:
        self.items += 1
        if verdict.reads:
            self.read += 1
        if verdict.good:
            self.commissioned += 1
        else:
            self.rejected[verdict.reason] = self.rejected.get(verdict.reason, 0) + 1

    def as_dict(self) -> dict[str, object]:
        return {
            "work_order": self.work_order,
            "allocated": self.allocated,
            "items": self.items,
            "read": self.read,
            "commissioned": self.commissioned,
            "rejected": dict(sorted(self.rejected.items())),
            "leftover": self.leftover,
        }

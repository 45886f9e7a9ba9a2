"""The PDA's scan session: one order, every scan judged offline and written to the device's
store before the UI is told. No Kivy, no network: the UI and the sync worker call in.

Judging is ``protocols.pda`` (the hub runs the same judgement against its database). This
module adds what a hand-held needs around it: a double trigger counts once, scans that
arrive while an error waits for acknowledgement queue instead of being dropped, undo and
removal with a reason, and command barcodes that act like buttons.
"""

from __future__ import annotations

import enum
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from protocols.pda import CodeStatus, Judgement, KnownCode, ScanResult, Tally, read_serial

DOUBLE_TRIGGER_S = 0.1


class PdaCoreError(Exception):
    """A request the scan session cannot honour (say what and why)."""


class Command(enum.StrEnum):
    """Printed on the command sheet; scanning one acts like pressing the button."""

    COMPLETE = "complete"
    UNDO = "undo"
    NEXT_ORDER = "next_order"
    ACKNOWLEDGE = "acknowledge"


# The texts the command sheet's barcodes carry. A prefix no code can start with.
COMMAND_PREFIX = "YIMA-CMD:"
COMMAND_BARCODES = {f"{COMMAND_PREFIX}{c.value.upper()}": c for c in Command}


def command_of(text: str) -> Command | None:
    return COMMAND_BARCODES.get(text.strip().upper())


@dataclass(frozen=True)
class Line:
    sku: str
    name: str
    gtin: str | None
    quantity: int


@dataclass(frozen=True)
class OrderData:
    """A downloaded order (see the hub's ``GET /api/v1/pda/orders/<number>``)."""

    number: str
    dealer: str
    dealer_name: str
    region: str
    notes: str | None
    lines: tuple[Line, ...]
    known: Mapping[str, KnownCode]
    covered: tuple[str, ...] = ()  # serials other devices' accepted scans cover

    @classmethod
    def from_download(cls, data: Mapping[str, Any]) -> OrderData:
        order = data["order"]
        lines = tuple(
            Line(x["sku"], x["name"], x.get("gtin"), int(x["quantity"])) for x in order["lines"]
        )
        rows = data.get("codes", [])
        parent_of = {serial: parent for serial, _, _, parent in rows}
        kind_of = {serial: kind for serial, kind, _, _ in rows}
        sku_of = {serial: sku for serial, _, sku, _ in rows}
        contents: dict[str, list[str]] = {}
        items: dict[str, dict[str, int]] = {}
        for serial, kind, sku, parent in rows:
            seen = 0
            while parent is not None and parent in kind_of and seen < 8:
                contents.setdefault(parent, []).append(serial)
                if kind == "item":
                    per = items.setdefault(parent, {})
                    per[sku] = per.get(sku, 0) + 1
                parent = parent_of.get(parent)
                seen += 1
        known: dict[str, KnownCode] = {
            serial: KnownCode(
                serial,
                kind_of[serial],
                sku_of[serial],
                contents=tuple(contents.get(serial, ())),
                items=items.get(serial, {}),
            )
            for serial in kind_of
        }
        for serial, other in data.get("claimed", []):
            known[serial] = KnownCode(
                serial, "item", "?", CodeStatus.CLAIMED, detail=f"order {other}"
            )
        for serial in data.get("shipped", []):
            known.setdefault(serial, KnownCode(serial, "item", "?", CodeStatus.SHIPPED))
        return cls(
            number=order["number"],
            dealer=order["dealer"],
            dealer_name=order.get("dealer_name", order["dealer"]),
            region=order["region"],
            notes=order.get("notes"),
            lines=lines,
            known=known,
            covered=tuple(data.get("covered", ())),
        )

    def tally(self) -> Tally:
        return Tally(
            lines={x.sku: x.quantity for x in self.lines},
            gtins={x.gtin: x.sku for x in self.lines if x.gtin},
        )


@dataclass
class Scan:
    """One scan as the device stores it."""

    id: str
    order: str
    raw: str
    at: datetime
    result: ScanResult
    reason: str
    serial: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    covers: tuple[str, ...] = ()
    removed_reason: str | None = None
    hub_result: str | None = None  # the hub's word once synced (it may disagree: conflict)
    hub_reason: str | None = None

    @property
    def counted(self) -> bool:
        """Whether this scan counts toward the order now."""
        return (
            self.result is ScanResult.OK
            and self.removed_reason is None
            and self.hub_result in (None, ScanResult.OK.value)
        )

    def judgement(self) -> Judgement:
        return Judgement(self.result, self.reason, self.serial, self.counts, self.covers)


@dataclass(frozen=True)
class Outcome:
    """What the UI shows after a scan or a command."""

    scan: Scan | None = None
    command: Command | None = None
    repeat: bool = False  # a double trigger: the same code again within 100 ms, not counted
    queued: bool = False  # an error waits for acknowledgement; this scan is queued
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.scan is not None and self.scan.result is ScanResult.OK

    @property
    def error(self) -> bool:
        return self.scan is not None and self.scan.result is not ScanResult.OK


class ScanStore(Protocol):
    """What the session needs from persistence (``pda_app.store.Store`` implements it)."""

    def add_scan(self, scan: Scan) -> None: ...

    def remove_scan(self, scan: Scan, reason: str, removal_id: str) -> None: ...

    def scans(self, order: str) -> list[Scan]: ...

    def request_completion(self, order: str, completion_id: str, reason: str | None) -> None: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


class ScanSession:
    """Scanning one order. Every scan is stored before :meth:`feed` returns."""

    def __init__(
        self,
        order: OrderData,
        store: ScanStore,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
        resolve: Callable[[str], KnownCode | None] | None = None,
    ) -> None:
        self.order = order
        # Asked (when online) about a code the download does not know: a product of no
        # line, a label never read on the line, a code shipped long ago. Offline: unknown.
        self._resolve = resolve
        self.store = store
        self._clock = clock
        self._now = now
        self.tally = order.tally()
        self.scans: list[Scan] = []
        self.pending_error: Scan | None = None
        self._queue: deque[str] = deque()
        self._last: tuple[str, float, Outcome] | None = None
        self.completion_requested = False
        self.reload()

    # state -------------------------------------------------------------------------------
    def reload(self) -> None:
        """Rebuild the tally from the store (after a restart, or when the hub answered)."""
        self.tally = self.order.tally()
        for serial in self.order.covered:
            self.tally.covered[serial] = "hub"
        self.scans = self.store.scans(self.order.number)
        for scan in self.scans:
            if scan.counted:
                for serial in scan.covers:
                    self.tally.covered.pop(serial, None)
                self.tally.accept(scan.judgement(), scan.id)

    @property
    def progress(self) -> list[tuple[Line, int]]:
        return [(line, self.tally.counted.get(line.sku, 0)) for line in self.order.lines]

    @property
    def exceptions(self) -> list[Scan]:
        """Scans that did not count: refused here or by the hub, or removed."""
        return [s for s in self.scans if not s.counted]

    # scanning ----------------------------------------------------------------------------
    def feed(self, text: str) -> Outcome:
        """A scanner delivered ``text``: a command, or a code to judge and store."""
        text = text.strip()
        command = command_of(text)
        if command is not None:
            return self.run(command)
        stamp = self._clock()
        if self._last is not None:
            last_text, last_stamp, last_outcome = self._last
            if last_text == text and stamp - last_stamp < DOUBLE_TRIGGER_S:
                return Outcome(scan=last_outcome.scan, repeat=True, message="double trigger")
        if self.pending_error is not None:
            self._queue.append(text)
            self._last = (text, stamp, Outcome(queued=True))
            return Outcome(queued=True, message="acknowledge the error first")
        outcome = self._judge(text)
        self._last = (text, stamp, outcome)
        return outcome

    def _judge(self, text: str) -> Outcome:
        if self.completion_requested:
            raise PdaCoreError(f"Order {self.order.number} is being completed: no more scans")
        ref = read_serial(text)
        if isinstance(ref, Judgement):
            judgement = ref
        else:
            known = self.order.known.get(ref.serial.value)
            if known is None and self._resolve is not None:
                known = self._resolve(ref.serial.value)
            judgement = self.tally.judge(ref, known)
        scan = Scan(
            id=str(uuid.uuid4()),
            order=self.order.number,
            raw=text[:300],
            at=self._now(),
            result=judgement.result,
            reason=judgement.reason,
            serial=judgement.serial,
            counts=dict(judgement.counts),
            covers=judgement.covers,
        )
        self.store.add_scan(scan)  # on disk (and in the outbox) before anyone says "ok"
        self.scans.append(scan)
        if judgement.ok:
            self.tally.accept(judgement, scan.id)
        else:
            self.pending_error = scan
        return Outcome(scan=scan, message=judgement.reason)

    def acknowledge(self) -> list[Outcome]:
        """The worker saw the error. Scans queued meanwhile are judged now, in order, until
        the next error."""
        self.pending_error = None
        done: list[Outcome] = []
        while self._queue and self.pending_error is None:
            done.append(self._judge(self._queue.popleft()))
        return done

    @property
    def queued(self) -> int:
        return len(self._queue)

    def undo(self) -> Scan:
        """Take back the last scan that counts."""
        for scan in reversed(self.scans):
            if scan.counted:
                self.remove(scan.id, "undo")
                return scan
        raise PdaCoreError("Nothing to undo: no scan counts yet")

    def remove(self, scan_id: str, reason: str) -> Scan:
        if not reason.strip():
            raise PdaCoreError("Removing a scan needs a reason")
        scan = next((s for s in self.scans if s.id == scan_id), None)
        if scan is None:
            raise PdaCoreError(f"No scan {scan_id} in order {self.order.number}")
        if not scan.counted:
            raise PdaCoreError(f"Scan {scan_id} does not count: nothing to remove")
        self.store.remove_scan(scan, reason, str(uuid.uuid4()))
        scan.removed_reason = reason
        self.tally.release(scan.judgement())
        return scan

    def complete(self, reason: str | None = None) -> None:
        """Ask the hub to complete the order once every scan is uploaded. Short needs a
        reason (the hub would refuse it too)."""
        shortfall = self.tally.shortfall()
        if shortfall and not (reason and reason.strip()):
            missing = ", ".join(f"{n} {sku}" for sku, n in sorted(shortfall.items()))
            raise PdaCoreError(f"Order {self.order.number} is short ({missing}): give a reason")
        if not any(s.counted for s in self.scans):
            raise PdaCoreError(f"Order {self.order.number}: nothing scanned to ship")
        self.store.request_completion(self.order.number, str(uuid.uuid4()), reason)
        self.completion_requested = True

    def run(self, command: Command) -> Outcome:
        """A command barcode (or the button it stands for)."""
        if command is Command.ACKNOWLEDGE:
            self.acknowledge()
            return Outcome(command=command, message="acknowledged")
        if self.pending_error is not None:
            return Outcome(command=command, message="acknowledge the error first")
        if command is Command.UNDO:
            try:
                scan = self.undo()
            except PdaCoreError as exc:
                return Outcome(command=command, message=str(exc))
            return Outcome(scan=scan, command=command, message=f"undone: {scan.raw}")
        if command is Command.COMPLETE:
            try:
                self.complete()
            except PdaCoreError as exc:
                return Outcome(command=command, message=str(exc))
            return Outcome(command=command, message="completion queued")
        return Outcome(command=command, message="next order")

"""Which reads are new items to commission, and which are duplicated labels.

Pure logic: no camera, decoder or network. The agent feeds it the reads of each frame it
processes, in order.

* A code read in a frame is the same item as in the previous frames as long as it was read at
  least once in the last ``leave_after`` processed frames: a label is visible in several
  consecutive frames and a decoder may miss it in one or two of them.
* A code that shows up again after it left the field of view, and that this station already
  commissioned, is a duplicated (copied) label: reported in ``duplicates`` (so a reject can be
  wired to it), never commissioned twice.
* Two reads of the same code in one frame, further apart than ``min_separation`` pixels, are
  two labels carrying the same code: one is commissioned (if new), and the code is reported
  as a duplicate once while they stay in view.

Memory is bounded: the codes in view, plus the last ``remember`` commissioned codes. Older
commissioned codes can be looked up through ``is_known`` (e.g. the outbox, which holds every
event the hub has not acked yet); past both, the hub's own duplicate check is the backstop.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol


class Sighting(Protocol):
    """What the tracker needs of a read (edge_agent.decode.Read has it)."""

    @property
    def text(self) -> str: ...

    @property
    def center(self) -> tuple[float, float] | None: ...


@dataclass(frozen=True)
class Decision:
    """The outcome of one frame."""

    new: tuple[str, ...] = ()  # codes to commission now, in first-read order
    duplicates: tuple[str, ...] = ()  # codes seen again: duplicated labels to reject


@dataclass
class _InView:
    last_frame: int
    doubled: bool  # already reported as two labels in view at once


class ItemTracker:
    def __init__(
        self,
        *,
        leave_after: int = 3,
        remember: int = 100_000,
        min_separation: float = 40.0,
        is_known: Callable[[str], bool] | None = None,
    ) -> None:
        if leave_after < 1:
            raise ValueError(f"leave_after expected at least 1 frame, got {leave_after}")
        if remember < 1:
            raise ValueError(f"remember expected at least 1 code, got {remember}")
        self.leave_after = leave_after
        self.remember = remember
        self.min_separation = min_separation
        self._is_known = is_known
        self._frame = -1
        self._in_view: dict[str, _InView] = {}
        self._commissioned: OrderedDict[str, None] = OrderedDict()

    @property
    def in_view(self) -> frozenset[str]:
        return frozenset(self._in_view)

    def observe(self, reads: Iterable[Sighting]) -> Decision:
        """Take the reads of the next processed frame (an empty frame counts too)."""
        self._frame += 1
        frame = self._frame
        centers: dict[str, list[tuple[float, float] | None]] = {}
        for read in reads:
            centers.setdefault(read.text, []).append(read.center)

        new: list[str] = []
        duplicates: list[str] = []
        for code, where in centers.items():
            doubled = self._two_labels(where)
            seen = self._in_view.get(code)
            if seen is not None and frame - seen.last_frame <= self.leave_after:
                seen.last_frame = frame
                if doubled and not seen.doubled:
                    seen.doubled = True
                    duplicates.append(code)
                continue
            self._in_view[code] = _InView(last_frame=frame, doubled=doubled)
            if self._already_commissioned(code):
                duplicates.append(code)
                continue
            new.append(code)
            self._remember(code)
            if doubled:
                duplicates.append(code)

        gone = [c for c, v in self._in_view.items() if frame - v.last_frame > self.leave_after]
        for code in gone:
            del self._in_view[code]
        return Decision(new=tuple(new), duplicates=tuple(duplicates))

    def seen(self, code: str) -> bool:
        """Whether ``code`` was commissioned by this station (remembered, or in the outbox)."""
        return self._already_commissioned(code)

    def note_commissioned(self, code: str) -> None:
        """Note ``code`` as commissioned (line mode decides outside ``observe``)."""
        self._remember(code)

    def _two_labels(self, where: list[tuple[float, float] | None]) -> bool:
        points = [p for p in where if p is not None]
        return any(
            math.dist(a, b) > self.min_separation
            for i, a in enumerate(points)
            for b in points[i + 1 :]
        )

    def _already_commissioned(self, code: str) -> bool:
        if code in self._commissioned:
            # A copied code that keeps coming back stays remembered.
            self._commissioned.move_to_end(code)
            return True
        return self._is_known is not None and self._is_known(code)

    def _remember(self, code: str) -> None:
        self._commissioned[code] = None
        while len(self._commissioned) > self.remember:
            self._commissioned.popitem(last=False)

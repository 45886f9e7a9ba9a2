"""What a consumer is told about a scanned code."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hub.domain.lifecycle import ACTIVATED, State


class Verdict(enum.StrEnum):
    NOT_ACTIVATED = "not_activated"
    UNKNOWN = "unknown"
    SUSPICIOUS = "suspicious"  # probably a copied code: the signals say why
    GENUINE = "genuine"  # activated, first scans, consistent
    GENUINE_RESCANNED = "genuine_rescanned"  # this client verified it before
    RECALLED = "recalled"


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str


def judge(state: str, scan_count: int, threshold: int) -> Judgement:
    """Verdict for a known code after this scan was counted (``scan_count`` includes it).

    Unactivated codes are "not activated" however often they are scanned: leaked factory
    codes are worthless. An activated code scanned more than ``threshold`` times has
    probably been copied onto other packs.
    """
    current = State(state)
    if current in ACTIVATED:
        if scan_count > threshold:
            return Judgement(
                Verdict.SUSPICIOUS, f"scanned {scan_count} times (more than {threshold})"
            )
        return Judgement(Verdict.GENUINE, "activated")
    if current in (State.VOID, State.DECOMMISSIONED, State.RECALLED):
        return Judgement(Verdict.UNKNOWN, f"code is {current.value}")
    return Judgement(Verdict.NOT_ACTIVATED, f"code is {current.value}, not shipped")

"""Copied-code detection: named signals over a code's verification history.

A bare scan count punishes the real owner (anyone can scan a genuine code a few times and make
it show a copied-code warning) and misses a counterfeiter whose clones are each scanned once by
a different buyer far away. Instead each verification is judged against the code's history
with named signals, each with its evidence and a tunable threshold:

* ``distinct_clients`` — how many different people verified the activated code. Two scans
  are by the same person when they share a device cookie or a network (a phone that cleared
  its cookies on the same Wi-Fi is still one person), so one client re-scanning its own code
  never raises anything.
* ``impossible_travel`` — two different clients further apart than a person could travel in
  the time between their scans.
* ``outside_region`` — a scan outside the region the code was shipped to (anti-diversion,
  防窜货): an alert for the brand, not an accusation of the consumer.
* ``after_end_of_life`` — a scan by someone else after the code was consumed (redeemed).
* ``denied_earlier_scan`` — a later scanner, asked "did you scan this before?", said no.

Only scans after activation count: scans in the warehouse or by a griefer before shipping say
nothing about copies. This module is pure: no database, no web.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.domain.lifecycle import ACTIVATED, State
from hub.domain.verdict import Verdict

EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True)
class Place:
    """Where a scan happened, as well as it is known."""

    lat: float
    lon: float
    region: str | None = None  # administrative-division code (province, city or district)
    source: str = "ip"  # gps (the browser, with consent), picked (by the person), ip (table)

    @property
    def precise(self) -> bool:
        return self.source in ("gps", "picked")


@dataclass(frozen=True)
class Scan:
    """One consumer verification as the detector sees it."""

    at: datetime
    device: str | None = None  # the page's device cookie
    network: str | None = None  # the client's network (IPv4 /24, IPv6 /48)
    place: Place | None = None
    denied_earlier: bool = False  # answered "no" to "did you scan this before?"


@dataclass(frozen=True)
class Thresholds:
    """Brand-tunable limits (hub settings)."""

    distinct_clients: int = 3  # this many different people verifying one code is a copy
    max_speed_kmh: float = 800.0  # faster than an airliner, door to door
    min_distance_km: float = 150.0  # closer than this is IP-location noise, never travel


@dataclass(frozen=True)
class Signal:
    name: str
    evidence: dict[str, Any]
    accuses: bool  # makes the verdict suspicious (False: an alert for the brand only)


@dataclass(frozen=True)
class Assessment:
    verdict: Verdict
    reason: str
    signals: tuple[Signal, ...] = ()
    clients: int = 0  # distinct clients after activation, this scan included
    rescan: bool = False  # this client verified the code before
    first: Scan | None = None  # the first verification after activation


@dataclass
class _Clients:
    """Union-find over scans: same device or same network means the same person."""

    parent: list[int] = field(default_factory=list)

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def group_clients(scans: Sequence[Scan]) -> list[int]:
    """For each scan, the index of the first scan by the same client."""
    clients = _Clients(list(range(len(scans))))
    first_of: dict[tuple[str, str], int] = {}
    for i, scan in enumerate(scans):
        for key in (("d", scan.device), ("n", scan.network)):
            if key[1] is None:
                continue
            seen = first_of.setdefault((key[0], key[1]), i)
            clients.union(seen, i)
    return [clients.find(i) for i in range(len(scans))]


def distance_km(a: Place, b: Place) -> float:
    """Great-circle distance (haversine)."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat = lat2 - lat1
    dlon = math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def assess(
    state: str,
    history: Sequence[Scan],
    current: Scan,
    *,
    activated_at: datetime | None,
    shipped_regions: Sequence[str] = (),
    consumed_by: Scan | None = None,
    thresholds: Thresholds = Thresholds(),
) -> Assessment:
    """Judge ``current`` against the code's earlier verifications ``history`` (oldest first).

    ``shipped_regions`` are the division codes the code may be sold in (the dealer's
    authorised regions); a scan whose region code starts with none of them is outside.
    """
    code_state = State(state)
    if code_state is State.RECALLED:
        return Assessment(Verdict.RECALLED, "the brand has recalled this product")
    if code_state in (State.VOID, State.DECOMMISSIONED):
        return Assessment(Verdict.UNKNOWN, f"code is {code_state.value}")
    if code_state not in ACTIVATED or activated_at is None:
        return Assessment(Verdict.NOT_ACTIVATED, f"code is {code_state.value}, not shipped")

    after = [s for s in history if s.at > activated_at]
    scans = [*after, current]
    owners = group_clients(scans)
    me = owners[-1]
    clients = len(set(owners))
    rescan = me in owners[:-1]
    signals: list[Signal] = []

    if clients >= thresholds.distinct_clients:
        signals.append(
            Signal(
                "distinct_clients",
                {"clients": clients, "threshold": thresholds.distinct_clients},
                accuses=True,
            )
        )
    travel = _impossible_travel(scans, owners, thresholds)
    if travel is not None:
        signals.append(travel)
    region = current.place.region if current.place is not None else None
    if region and shipped_regions and not any(region.startswith(r) for r in shipped_regions):
        signals.append(
            Signal(
                "outside_region",
                {"region": region, "shipped_to": list(shipped_regions)},
                accuses=False,
            )
        )
    if code_state is State.CONSUMED and consumed_by is not None:
        redeemer = group_clients([consumed_by, current])
        if redeemer[0] != redeemer[1]:
            signals.append(
                Signal("after_end_of_life", {"consumed_at": consumed_by.at.isoformat()}, True)
            )
    if current.denied_earlier and len(set(owners[:-1])) >= 1 and not rescan:
        signals.append(Signal("denied_earlier_scan", {"earlier_clients": clients - 1}, True))

    first = scans[0]
    accusing = [s for s in signals if s.accuses]
    if accusing:
        reason = "; ".join(_why(s) for s in accusing)
        return Assessment(Verdict.SUSPICIOUS, reason, tuple(signals), clients, rescan, first)
    if rescan:
        return Assessment(
            Verdict.GENUINE_RESCANNED,
            "verified before by this client",
            tuple(signals),
            clients,
            rescan,
            first,
        )
    return Assessment(Verdict.GENUINE, "activated", tuple(signals), clients, rescan, first)


def _impossible_travel(
    scans: Sequence[Scan], owners: Sequence[int], thresholds: Thresholds
) -> Signal | None:
    """The current scan against every earlier one by another client."""
    current = scans[-1]
    if current.place is None:
        return None
    for earlier, owner in zip(scans[:-1], owners[:-1], strict=True):
        if owner == owners[-1] or earlier.place is None:
            continue
        km = distance_km(earlier.place, current.place)
        if km < thresholds.min_distance_km:
            continue
        hours = abs((current.at - earlier.at).total_seconds()) / 3600
        speed = km / hours if hours > 0 else math.inf
        if speed > thresholds.max_speed_kmh:
            return Signal(
                "impossible_travel",
                {
                    "km": round(km),
                    "hours": round(hours, 2),
                    "from_region": earlier.place.region,
                    "to_region": current.place.region,
                },
                accuses=True,
            )
    return None


def _why(signal: Signal) -> str:
    e = signal.evidence
    if signal.name == "distinct_clients":
        return f"verified by {e['clients']} different people"
    if signal.name == "impossible_travel":
        return f"verified {e['km']} km apart within {e['hours']} h"
    if signal.name == "after_end_of_life":
        return "verified by someone else after it was redeemed"
    if signal.name == "denied_earlier_scan":
        return "an earlier verification was not by this person"
    return signal.name

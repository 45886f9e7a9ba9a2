"""Copied-code signals: the scenarios a brand, a genuine buyer and a counterfeiter produce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.domain.signals import Place, Scan, Thresholds, assess, distance_km, group_clients
from hub.domain.verdict import Verdict

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
SHIPPED = T0 - timedelta(days=3)
HANGZHOU = Place(30.27, 120.15, "330100", "gps")
SHANGHAI = Place(31.23, 121.47, "310100", "gps")  # ~165 km from Hangzhou
URUMQI = Place(43.83, 87.62, "650100", "gps")  # ~3,230 km from Hangzhou
NEAR_HANGZHOU = Place(30.30, 120.20, "330100", "ip")


def scan(
    minutes: float,
    device: str | None,
    network: str | None,
    place: Place | None = None,
    **extra: object,
) -> Scan:
    return Scan(T0 + timedelta(minutes=minutes), device, network, place, **extra)  # type: ignore[arg-type]


def judge(*scans: Scan, state: str = "shipped", **options: object):  # type: ignore[no-untyped-def]
    *history, current = scans
    return assess(state, history, current, activated_at=SHIPPED, **options)  # type: ignore[arg-type]


def test_distance() -> None:
    assert 3200 < distance_km(HANGZHOU, URUMQI) < 3300
    assert 150 < distance_km(HANGZHOU, SHANGHAI) < 180
    assert distance_km(HANGZHOU, HANGZHOU) == 0


def test_same_device_or_same_network_is_one_client() -> None:
    scans = [
        scan(0, "phone-a", "net-home"),
        scan(1, "phone-b", "net-home"),  # the spouse, same Wi-Fi
        scan(2, "phone-a", "net-mobile"),  # the buyer on 4G
        scan(3, "phone-c", "net-far"),  # someone else
    ]
    assert group_clients(scans) == [0, 0, 0, 3]


@pytest.mark.parametrize(
    ("scans", "verdict", "clients"),
    [
        ([scan(0, "a", "n1", HANGZHOU)], Verdict.GENUINE, 1),
        ([scan(0, "a", "n1"), scan(60, "a", "n2")], Verdict.GENUINE_RESCANNED, 1),
        # A griefer clearing cookies on the same network, twenty times: one client.
        ([scan(i, f"cookie-{i}", "n-griefer") for i in range(20)], Verdict.GENUINE_RESCANNED, 1),
        # The buyer and a friend: two people is normal.
        ([scan(0, "a", "n1"), scan(600, "b", "n2")], Verdict.GENUINE, 2),
        ([scan(0, "a", "n1"), scan(600, "b", "n2"), scan(700, "c", "n3")], Verdict.SUSPICIOUS, 3),
        # A travelling buyer: Hangzhou, then Urumqi a day later, same phone.
        (
            [scan(0, "a", "n1", HANGZHOU), scan(1440, "a", "n9", URUMQI)],
            Verdict.GENUINE_RESCANNED,
            1,
        ),
    ],
)
def test_verdicts(scans: list[Scan], verdict: Verdict, clients: int) -> None:
    result = judge(*scans)
    assert (result.verdict, result.clients) == (verdict, clients)


def test_a_clone_far_away_within_the_hour_is_impossible_travel() -> None:
    result = judge(scan(0, "a", "n1", HANGZHOU), scan(60, "b", "n2", URUMQI))
    assert result.verdict is Verdict.SUSPICIOUS
    (signal,) = result.signals
    assert signal.name == "impossible_travel"
    assert signal.evidence == {
        "km": 3228,
        "hours": 1.0,
        "from_region": "330100",
        "to_region": "650100",
    }
    assert result.reason == "verified 3228 km apart within 1.0 h"


def test_nearby_or_slow_travel_is_not_impossible() -> None:
    assert judge(scan(0, "a", "n1", HANGZHOU), scan(1, "b", "n2", NEAR_HANGZHOU)).verdict is (
        Verdict.GENUINE
    )
    # Hangzhou to Shanghai in two hours: a train.
    assert judge(scan(0, "a", "n1", HANGZHOU), scan(120, "b", "n2", SHANGHAI)).verdict is (
        Verdict.GENUINE
    )


def test_scans_before_activation_do_not_count() -> None:
    warehouse = [
        Scan(SHIPPED - timedelta(hours=h), f"wh-{h}", f"net-{h}", HANGZHOU) for h in range(6)
    ]
    result = assess("shipped", warehouse, scan(0, "buyer", "n1", URUMQI), activated_at=SHIPPED)
    assert (result.verdict, result.clients) == (Verdict.GENUINE, 1)


def test_outside_the_shipped_region_alerts_without_accusing() -> None:
    result = judge(scan(0, "a", "n1", URUMQI), shipped_regions=("33",))
    assert result.verdict is Verdict.GENUINE
    (signal,) = result.signals
    assert (signal.name, signal.accuses) == ("outside_region", False)
    assert signal.evidence == {"region": "650100", "shipped_to": ["33"]}
    assert judge(scan(0, "a", "n1", HANGZHOU), shipped_regions=("33",)).signals == ()


def test_after_redemption_only_the_redeemer_may_scan() -> None:
    redeemer = scan(-10, "a", "n1")
    assert judge(scan(0, "a", "n1"), state="consumed", consumed_by=redeemer).verdict is (
        Verdict.GENUINE
    )
    other = judge(scan(0, "x", "n7"), state="consumed", consumed_by=redeemer)
    assert other.verdict is Verdict.SUSPICIOUS
    assert [s.name for s in other.signals] == ["after_end_of_life"]


def test_a_later_scanner_who_denies_the_earlier_scan() -> None:
    result = judge(scan(0, "a", "n1"), scan(60, "b", "n2", denied_earlier=True))
    assert result.verdict is Verdict.SUSPICIOUS
    assert [s.name for s in result.signals] == ["denied_earlier_scan"]
    # The first scanner has no one to deny.
    assert judge(scan(0, "a", "n1", denied_earlier=True)).verdict is Verdict.GENUINE


@pytest.mark.parametrize(
    ("state", "verdict"),
    [
        ("generated", Verdict.NOT_ACTIVATED),
        ("commissioned", Verdict.NOT_ACTIVATED),
        ("packed", Verdict.NOT_ACTIVATED),
        ("recalled", Verdict.RECALLED),
        ("void", Verdict.UNKNOWN),
        ("decommissioned", Verdict.UNKNOWN),
    ],
)
def test_states_that_are_not_on_the_market(state: str, verdict: Verdict) -> None:
    many = [scan(i, f"d{i}", f"n{i}", HANGZHOU if i % 2 else URUMQI) for i in range(9)]
    assert judge(*many, state=state).verdict is verdict


def test_the_threshold_is_tunable() -> None:
    two = (scan(0, "a", "n1"), scan(600, "b", "n2"))
    assert judge(*two, thresholds=Thresholds(distinct_clients=2)).verdict is Verdict.SUSPICIOUS
    assert judge(*two).first == two[0]

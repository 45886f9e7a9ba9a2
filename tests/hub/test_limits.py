"""Token buckets: a burst, then the hourly rate; Retry-After in whole seconds."""

from __future__ import annotations

import pytest

from hub.domain.limits import Decision, Limiter


def test_burst_then_refusal_with_retry_after() -> None:
    limiter = Limiter(burst=3, per_hour=3600)  # one token a second
    decisions = [limiter.take("a", 0.0) for _ in range(4)]
    assert decisions == [
        Decision(True),
        Decision(True),
        Decision(True, exhausted_now=True),
        Decision(False, retry_after=1),
    ]
    assert limiter.take("b", 0.0).allowed  # another client has its own bucket
    assert limiter.take("a", 0.5) == Decision(False, retry_after=1)
    assert limiter.take("a", 1.0) == Decision(True, exhausted_now=True)


def test_slow_rate_waits_long() -> None:
    limiter = Limiter(burst=1, per_hour=6)  # one token every 10 minutes
    assert limiter.take("a", 0.0).allowed
    assert limiter.peek("a", 60.0) == Decision(False, retry_after=540)
    assert limiter.peek("a", 600.0).allowed


def test_tokens_never_exceed_the_burst() -> None:
    limiter = Limiter(burst=2, per_hour=3600)
    limiter.take("a", 0.0)
    assert [limiter.take("a", 10_000.0).allowed for _ in range(3)] == [True, True, False]


def test_forgets_the_least_recent_client_past_the_bound() -> None:
    limiter = Limiter(burst=1, per_hour=1, max_clients=2)
    limiter.take("a", 0.0)
    limiter.take("b", 0.0)
    limiter.take("c", 0.0)  # "a" is forgotten: it starts with a full bucket again
    assert limiter.take("a", 0.0).allowed
    assert not limiter.take("c", 0.0).allowed


@pytest.mark.parametrize(("burst", "per_hour"), [(0, 1), (1, 0), (1, -5)])
def test_bad_limits(burst: int, per_hour: float) -> None:
    with pytest.raises(ValueError, match="expected burst >= 1 and per_hour > 0"):
        Limiter(burst, per_hour)

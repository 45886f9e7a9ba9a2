"""Per-client rate limits as token buckets. Pure: the caller passes the time.

Each hub process keeps its own buckets (N processes allow N times the rate; the limits are
about keeping one client from flooding the scan log, not about exact quotas). The table of
buckets is bounded: past ``max_clients`` the least recently used client is forgotten.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int = 0  # whole seconds until the next token (when not allowed)
    exhausted_now: bool = False  # this call took the last token: the moment to raise an alert


class Limiter:
    """``burst`` requests at once, then ``per_hour`` requests an hour, per client key."""

    def __init__(self, burst: int, per_hour: float, max_clients: int = 100_000) -> None:
        if burst < 1 or per_hour <= 0:
            raise ValueError(f"expected burst >= 1 and per_hour > 0, got {burst}, {per_hour}")
        self.burst = burst
        self.rate = per_hour / 3600.0  # tokens per second
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        return bucket

    def peek(self, key: str, now: float) -> Decision:
        """Whether ``key`` has a token, without taking it."""
        bucket = self._bucket(key, now)
        if bucket.tokens >= 1:
            return Decision(True)
        return Decision(False, self._wait(bucket))

    def take(self, key: str, now: float) -> Decision:
        """Take a token for ``key`` if there is one."""
        bucket = self._bucket(key, now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return Decision(True, exhausted_now=bucket.tokens < 1)
        return Decision(False, self._wait(bucket))

    def _wait(self, bucket: _Bucket) -> int:
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))


@dataclass
class ConsumerLimits:
    """The consumer page's limits: every scan, and scans of unknown codes (enumeration)."""

    scans: Limiter
    unknown: Limiter

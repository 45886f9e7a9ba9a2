"""What a consumer is told about a scanned code."""

from __future__ import annotations

import enum


class Verdict(enum.StrEnum):
    NOT_ACTIVATED = "not_activated"
    UNKNOWN = "unknown"
    SUSPICIOUS = "suspicious"  # probably a copied code: the signals say why
    GENUINE = "genuine"  # activated, first scans, consistent
    GENUINE_RESCANNED = "genuine_rescanned"  # this client verified it before
    RECALLED = "recalled"

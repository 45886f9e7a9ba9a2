"""Station alarms: conditions an operator must see (camera silent, outbox full, serial garbage).

Pure state, thread-safe: whoever detects a condition raises it, whoever sees it end clears it.
The status/heartbeat reports the active alarms and how often each was raised; the line logic
asks ``stops_line`` before it commissions anything.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# Alarms that stop the line: nothing is commissioned while one of them is active.
LINE_STOPPING = frozenset({"outbox_full"})


@dataclass(frozen=True)
class Alarm:
    name: str
    detail: str
    since: float  # time.time() when it was raised


class Alarms:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, Alarm] = {}
        self._raised: dict[str, int] = {}

    def raise_(self, name: str, detail: str) -> None:
        """Make ``name`` active (again); counted once per raise, logged once per raise."""
        with self._lock:
            fresh = name not in self._active
            if fresh:
                self._active[name] = Alarm(name, detail, time.time())
                self._raised[name] = self._raised.get(name, 0) + 1
        if fresh:
            logger.error("ALARM %s: %s", name, detail)

    def clear(self, name: str) -> None:
        with self._lock:
            gone = self._active.pop(name, None)
        if gone is not None:
            logger.warning("Alarm %s cleared", name)

    def active(self) -> dict[str, Alarm]:
        with self._lock:
            return dict(self._active)

    def raised(self) -> dict[str, int]:
        """How many times each alarm was raised since start."""
        with self._lock:
            return dict(self._raised)

    def is_active(self, name: str) -> bool:
        with self._lock:
            return name in self._active

    @property
    def stops_line(self) -> str | None:
        """The name of an active line-stopping alarm, or None."""
        with self._lock:
            for name in self._active:
                if name in LINE_STOPPING:
                    return name
        return None

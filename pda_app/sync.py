"""Upload the outbox to the hub, in order, with backoff; the sync state is always known.

Scans go up in batches per order (idempotent by scan id, so a batch resent after a lost
answer counts once); a completion goes up only after every scan before it. An entry leaves
the outbox only when the hub answered for it. Hub down: wait 1, 2, 4 … 60 s and try again.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from pda_app.client import HubClient, HubRefused, HubUnavailable
from pda_app.store import OutboxEntry, Store

log = logging.getLogger(__name__)

BATCH = 2000


class SyncStatus(enum.StrEnum):
    IDLE = "idle"  # nothing waiting
    PENDING = "pending"  # entries waiting, next try scheduled
    SYNCING = "syncing"
    OFFLINE = "offline"  # the hub cannot be reached; retrying with backoff
    ERROR = "error"  # the hub refused something (shown to the worker)


@dataclass(frozen=True)
class SyncState:
    status: SyncStatus
    pending: int
    last_sync: datetime | None
    last_error: str | None = None
    retry_in: float = 0.0


@dataclass(frozen=True)
class Backoff:
    first: float = 1.0
    factor: float = 2.0
    most: float = 60.0

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        base = min(self.most, self.first * self.factor ** (failures - 1))
        return base * (0.8 + 0.4 * random.random())  # noqa: S311 - jitter, not security


class Syncer:
    """Drains the store's outbox to the hub. ``sync_once`` is the whole job; ``SyncWorker``
    runs it in a thread."""

    def __init__(self, store: Store, client: HubClient, device: str) -> None:
        self.store = store
        self.client = client
        self.device = device
        self.state = SyncState(SyncStatus.IDLE, store.pending_count(), store.last_sync())
        self.conflicts = 0

    def sync_once(self) -> SyncState:
        """Upload everything pending; stops at the first unreachable hub (HubUnavailable
        propagates after the state says offline)."""
        self._set(SyncStatus.SYNCING)
        last_error: str | None = None
        while True:
            entries = self.store.pending(BATCH)
            if not entries:
                break
            head = entries[0]
            try:
                if head.kind == "complete":
                    self._complete(head)
                else:
                    run = [e for e in _leading_run(entries) if e.kind == "scan"]
                    self._scans(head.order, run)
            except HubUnavailable as exc:
                self._set(SyncStatus.OFFLINE, str(exc))
                raise
            except HubRefused as exc:
                # A refusal the device cannot fix by retrying (the order was cancelled, a
                # completion refused): keep the hub's word on the order and move on.
                last_error = f"{head.order}: {exc}"
                log.warning("hub refused %s of order %s: %s", head.kind, head.order, exc)
                self.store.completion_answered(head.seq, head.order, "refused", str(exc))
                if head.kind == "scan":
                    for entry in _leading_run(entries)[1:]:
                        self.store.completion_answered(entry.seq, entry.order, "refused", str(exc))
        status = SyncStatus.ERROR if last_error else SyncStatus.IDLE
        return self._set(status, last_error)

    def _scans(self, order: str, entries: list[OutboxEntry]) -> None:
        answer = self.client.upload_scans(order, self.device, [e.body for e in entries])
        answers = answer["scans"]
        self.conflicts += sum(1 for a in answers if a["result"] == "conflict")
        self.store.scans_answered([e.seq for e in entries], answers)

    def _complete(self, entry: OutboxEntry) -> None:
        result = self.client.complete(entry.order, entry.body["id"], entry.body.get("reason"))
        message = f"backorder {result['backorder']}" if result.get("backorder") else None
        self.store.completion_answered(entry.seq, entry.order, result["state"], message)

    def _set(
        self, status: SyncStatus, error: str | None = None, retry_in: float = 0.0
    ) -> SyncState:
        self.state = SyncState(
            status, self.store.pending_count(), self.store.last_sync(), error, retry_in
        )
        return self.state


def _leading_run(entries: list[OutboxEntry]) -> list[OutboxEntry]:
    """The first entries that are scans of the same order (one upload)."""
    head = entries[0]
    run = []
    for entry in entries:
        if entry.kind != "scan" or entry.order != head.order:
            break
        run.append(entry)
    return run


class SyncWorker(threading.Thread):
    """Runs the syncer whenever woken (a new scan) and on a timer, backing off while the hub
    is unreachable. ``on_change`` is called with every new state (from this thread)."""

    def __init__(
        self,
        syncer: Syncer,
        *,
        backoff: Backoff | None = None,
        interval: float = 5.0,
        on_change: Callable[[SyncState], None] | None = None,
    ) -> None:
        super().__init__(name="pda-sync", daemon=True)
        self.syncer = syncer
        self.backoff = backoff or Backoff()
        self.interval = interval
        self.on_change = on_change
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self.failures = 0

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        self.join(timeout)

    def run(self) -> None:
        while not self._stopping.is_set():
            delay = self.interval
            try:
                self.syncer.sync_once()
                self.failures = 0
            except HubUnavailable:
                self.failures += 1
                delay = self.backoff.delay(self.failures)
                self.syncer.state = replace(self.syncer.state, retry_in=delay)
            except Exception:  # keep syncing whatever one attempt did; it is logged
                log.exception("sync attempt failed")
                self.failures += 1
                delay = self.backoff.delay(self.failures)
            if self.on_change is not None:
                self.on_change(self.syncer.state)
            self._wake.wait(delay)
            self._wake.clear()
            time.sleep(0)

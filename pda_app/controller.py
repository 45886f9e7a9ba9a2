"""What the PDA's screens do, without Kivy: log in, list and open orders, scan, acknowledge,
undo, complete, settings. The Kivy app (``pda_app.ui``) binds buttons and the scanner to
these methods and shows :meth:`Controller.view`; tests and the simulator call them directly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pda_app.client import HubClient, PdaError
from pda_app.core import Command, Outcome, ScanSession
from pda_app.store import Store
from pda_app.sync import Syncer, SyncState, SyncStatus, SyncWorker
from protocols.pda import CodeStatus, KnownCode

log = logging.getLogger(__name__)

# The camera scanner (Camera4Kivy + zxing-cpp) is not built yet.
SCANNERS = ("keyboard", "broadcast", "serial")


@dataclass
class DeviceSettings:
    """Kept in the device's store; changed on the settings screen."""

    hub_url: str = "http://127.0.0.1:8080"
    device_id: str = "pda-1"
    language: str = "zh"
    scanner: str = "keyboard"
    broadcast_action: str = "com.symbol.datawedge.api.RESULT_ACTION"
    broadcast_extra: str = "com.symbol.datawedge.data_string"
    serial_port: str = "/dev/ttyUSB0"
    extra: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if not self.hub_url.startswith(("http://", "https://")):
            raise PdaError(f"Hub URL must start with http:// or https://, got {self.hub_url!r}")
        if not self.device_id.strip() or len(self.device_id) > 64:
            raise PdaError("Device id: expected 1-64 characters")
        if self.language not in ("zh", "en"):
            raise PdaError(f"Language: expected zh or en, got {self.language!r}")
        if self.scanner not in SCANNERS:
            raise PdaError(f"Scanner: expected one of {', '.join(SCANNERS)}, got {self.scanner!r}")


def hub_resolver(client: HubClient, number: str) -> Callable[[str], KnownCode | None]:
    """Ask the hub about a code the download does not list; None when it cannot answer
    (offline: the scan is then judged unknown, never counted)."""
    quick = HubClient(client.base_url, client.token, timeout=1.5)

    def resolve(serial: str) -> KnownCode | None:
        try:
            found = quick.lookup_code(number, serial)
        except PdaError:
            return None
        if not found.get("known"):
            return None
        return KnownCode(
            serial=found["serial"],
            kind=found["kind"],
            sku=found["sku"],
            status=CodeStatus(found["status"]),
            contents=tuple(found["contents"]),
            items=found["items"],
            detail=found.get("detail"),
        )

    return resolve


class Controller:
    def __init__(self, data_dir: Path, *, sync_interval: float = 5.0) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(data_dir / "pda.sqlite3")
        saved = self.store.get_meta("settings")
        self.settings = DeviceSettings(**json.loads(saved)) if saved else DeviceSettings()
        self.token = self.store.get_meta("token")
        self.user = self.store.get_meta("user")
        self.orders: list[dict[str, Any]] = []
        self.session: ScanSession | None = None
        self.last: Outcome | None = None
        self.sync_interval = sync_interval
        self.worker: SyncWorker | None = None
        self.sync_state = SyncState(
            SyncStatus.IDLE, self.store.pending_count(), self.store.last_sync()
        )
        self._hub_answered = False

    # settings and login ------------------------------------------------------------------
    def save_settings(self, settings: DeviceSettings) -> None:
        settings.validate()
        self.settings = settings
        self.store.set_meta("settings", json.dumps(settings.__dict__))
        self._restart_sync()

    @property
    def client(self) -> HubClient:
        return HubClient(self.settings.hub_url, self.token or "", timeout=10)

    def login(self, username: str, password: str) -> None:
        """Log in at the hub; the token is kept so the PDA works offline afterwards."""
        answer = HubClient(self.settings.hub_url, "", timeout=10).request(
            "POST", "/api/v1/login", {"username": username, "password": password}
        )
        self.token = str(answer["token"])
        self.user = username
        self.store.set_meta("token", self.token)
        self.store.set_meta("user", username)
        self._restart_sync()

    def use_token(self, token: str, user: str = "token") -> None:
        """A static token from the hub's settings instead of a login (automation, tests)."""
        self.token, self.user = token, user
        self.store.set_meta("token", token)
        self.store.set_meta("user", user)
        self._restart_sync()

    # sync --------------------------------------------------------------------------------
    def _restart_sync(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        if self.token:
            syncer = Syncer(self.store, self.client, self.settings.device_id)
            self.worker = SyncWorker(syncer, interval=self.sync_interval, on_change=self._synced)
            self.worker.start()

    def _synced(self, state: SyncState) -> None:
        # Called on the sync thread: the UI thread picks the hub's answers up in poll().
        self.sync_state = state
        self._hub_answered = True

    def poll(self) -> SyncState:
        """On the UI thread, now and then: take in what the hub answered (a conflict makes a
        scan stop counting) and return the sync state to show."""
        if self._hub_answered and self.session is not None and self.session.pending_error is None:
            self._hub_answered = False
            self.session.reload()
        return self.sync_state

    def wake_sync(self) -> None:
        self.sync_state = SyncState(
            SyncStatus.PENDING, self.store.pending_count(), self.store.last_sync()
        )
        if self.worker is not None:
            self.worker.wake()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.store.close()

    # orders ------------------------------------------------------------------------------
    def refresh_orders(self) -> list[dict[str, Any]]:
        """Assigned orders from the hub; offline, the orders already on the device."""
        try:
            self.orders = self.client.assigned_orders(self.settings.device_id)
        except PdaError as exc:
            log.info("order list from the device (hub: %s)", exc)
            self.orders = []
            for number in self.store.order_states():
                order = self.store.order(number)
                if order is not None:
                    self.orders.append(
                        {
                            "number": order.number,
                            "dealer": order.dealer,
                            "dealer_name": order.dealer_name,
                            "region": order.region,
                            "state": self.store.order_states()[number][0],
                            "lines": [
                                {"sku": x.sku, "name": x.name, "quantity": x.quantity}
                                for x in order.lines
                            ],
                        }
                    )
        return self.orders

    def open_order(self, number: str) -> ScanSession:
        """Download the order (or use the copy on the device when offline) and scan it."""
        try:
            order = self.store.save_order(self.client.download(number))
        except PdaError:
            stored = self.store.order(number)
            if stored is None:
                raise
            order = stored
        self.session = ScanSession(order, self.store, resolve=hub_resolver(self.client, number))
        self.last = None
        return self.session

    # scanning ----------------------------------------------------------------------------
    def scan(self, text: str) -> Outcome:
        if self.session is None:
            raise PdaError("Open an order before scanning")
        outcome = self.session.feed(text)
        if outcome.scan is not None or outcome.command is not None:
            self.last = outcome
        self.wake_sync()
        return outcome

    def acknowledge(self) -> None:
        if self.session is not None:
            for outcome in self.session.acknowledge():
                self.last = outcome
            if self.session.pending_error is None and self.last is not None and self.last.error:
                self.last = None
        self.wake_sync()

    def undo(self) -> None:
        if self.session is not None:
            self.last = self.session.run(Command.UNDO)
            self.wake_sync()

    def complete(self, reason: str | None) -> None:
        if self.session is None:
            raise PdaError("No order open")
        self.session.complete(reason or None)
        self.wake_sync()

    def order_state(self) -> tuple[str, str | None]:
        if self.session is None:
            return ("", None)
        return self.store.order_states().get(self.session.order.number, ("open", None))

"""Scanner inputs behind one interface: each delivers whole scanned texts to a callback.

- keyboard wedge: most hardware scanners type the code and Enter (pure: the UI feeds keys);
- Android broadcast intents (Zebra DataWedge, Honeywell): a configurable action and extra,
  through pyjnius, on Android only;
- a serial scanner (pyserial, ``serial_for_url`` so ``loop://`` and pty ports work in tests)
  for a desktop packing station;
- the device camera (Camera4Kivy with zxing-cpp decoding) is not built yet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

Deliver = Callable[[str], None]
MAX_SCAN_CHARS = 512


class ScannerInput(Protocol):
    """A source of scanned texts. ``start`` begins delivering to ``deliver``."""

    name: str

    def start(self, deliver: Deliver) -> None: ...

    def stop(self) -> None: ...


class KeyboardWedge:
    """Characters typed by a wedge scanner, cut into scans at Enter (or Tab). Characters
    that never see an Enter are dropped after ``MAX_SCAN_CHARS``, so a stuck key cannot
    grow the buffer."""

    name = "keyboard"

    def __init__(self) -> None:
        self._buffer: list[str] = []
        self._deliver: Deliver | None = None

    def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._buffer.clear()

    def stop(self) -> None:
        self._deliver = None

    def type(self, chars: str) -> None:
        for char in chars:
            if char in "\r\n\t":
                self.enter()
            elif char.isprintable() and len(self._buffer) < MAX_SCAN_CHARS:
                self._buffer.append(char)

    def enter(self) -> None:
        text = "".join(self._buffer).strip()
        self._buffer.clear()
        if text and self._deliver is not None:
            self._deliver(text)


class SerialScanner:
    """A serial hand scanner: one scan per line (CR, LF or CRLF)."""

    name = "serial"

    def __init__(self, url: str, baudrate: int = 9600) -> None:
        self.url = url
        self.baudrate = baudrate
        self._port: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self, deliver: Deliver) -> None:
        import serial  # pyserial: desktop packing stations only

        self._port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.2)
        self._stop.clear()
        wedge = KeyboardWedge()
        wedge.start(deliver)

        def run() -> None:
            while not self._stop.is_set():
                try:
                    data = self._port.read(256)
                except Exception:  # a pulled cable: log, keep the thread, retry
                    log.exception("serial scanner %s read failed", self.url)
                    self._stop.wait(1.0)
                    continue
                if data:
                    wedge.type(data.decode("utf-8", errors="replace"))

        self._thread = threading.Thread(target=run, name="serial-scanner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        if self._port is not None:
            self._port.close()


class BroadcastScanner:
    """Android scanners that broadcast each scan as an intent (Zebra DataWedge, Honeywell).
    The action and the extra holding the text are configurable (they differ per vendor and
    per DataWedge profile). Android only: needs pyjnius and python-for-android's
    ``android`` module."""

    name = "broadcast"

    def __init__(self, action: str, extra: str) -> None:
        self.action = action
        self.extra = extra
        self._receiver: Any = None

    def start(self, deliver: Deliver) -> None:
        from android.broadcast import BroadcastReceiver

        def on_receive(_context: Any, intent: Any) -> None:
            text = intent.getStringExtra(self.extra)
            if text:
                deliver(str(text))

        self._receiver = BroadcastReceiver(on_receive, actions=[self.action])
        self._receiver.start()

    def stop(self) -> None:
        if self._receiver is not None:
            self._receiver.stop()
            self._receiver = None

"""Serial devices without hardware: a photo-eye, a PLC reject actuator, a hand scanner.

Each is a TCP endpoint on 127.0.0.1 that a station opens as ``socket://127.0.0.1:<port>``
through ``serial.serial_for_url`` (what a serial-to-Ethernet converter looks like), speaking
the line protocol of ``edge_agent.serial_io``.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


class SerialEndpoint:
    """A one-client TCP server: bytes written go to the station, lines received are handed to
    ``on_line``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._conn: socket.socket | None = None
        self._connected = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name=f"sim-{name}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        try:
            conn, _ = self._server.accept()
        except OSError:
            return
        conn.settimeout(0.2)
        self._conn = conn
        self._connected.set()
        buffer = b""
        while not self._closed.is_set():
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                raw, buffer = buffer.split(b"\n", 1)
                self.on_line(raw.decode("ascii", errors="replace").strip())

    def on_line(self, text: str) -> None:
        """A line from the station (override)."""

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self._connected.wait(timeout)

    def write(self, data: bytes) -> None:
        if not self._connected.wait(10.0):
            raise TimeoutError(f"{self.name}: no station connected to {self.url}")
        assert self._conn is not None
        with self._lock:
            self._conn.sendall(data)

    def close(self) -> None:
        self._closed.set()
        self._server.close()
        if self._conn is not None:
            self._conn.close()
        self._thread.join(timeout=2)


class PhotoEye(SerialEndpoint):
    """Fires ``T <position>`` when an item passes."""

    def __init__(self) -> None:
        super().__init__("photo-eye")
        self.triggers = 0

    def trigger(self, position: float | None = None) -> None:
        self.write(b"T\n" if position is None else f"T {position:.1f}\n".encode())
        self.triggers += 1

    def noise(self, data: bytes) -> None:
        """Garbage on the wire (a loose connector, a wrong baud rate)."""
        self.write(data)


@dataclass(frozen=True)
class RejectRecord:
    item: int
    reason: str
    late: bool  # arrived after the item passed the reject point


class PlcActuator(SerialEndpoint):
    """The PLC's reject output: records which items it pushed off, and whether in time.

    ``belt()`` is the belt position now; ``item_positions[n]`` the position at which item n
    passed the photo-eye; a reject is in time while the item has travelled less than
    ``reject_at``."""

    def __init__(
        self,
        belt: Callable[[], float] | None = None,
        item_positions: dict[int, float] | None = None,
        reject_at: float = float("inf"),
    ) -> None:
        super().__init__("plc")
        self.belt = belt
        self.item_positions = item_positions if item_positions is not None else {}
        self.reject_at = reject_at
        self.rejected: dict[int, RejectRecord] = {}
        self.stops: list[str] = []
        self.garbage: list[str] = []
        self.running = True

    def on_line(self, text: str) -> None:
        parts = text.split()
        if len(parts) == 3 and parts[0] == "R" and parts[1].isdigit():
            item = int(parts[1])
            late = False
            start = self.item_positions.get(item)
            if self.belt is not None and start is not None:
                late = self.belt() - start > self.reject_at
            self.rejected[item] = RejectRecord(item, parts[2], late)
        elif len(parts) == 2 and parts[0] == "S":
            self.stops.append(parts[1])
            self.running = False
        elif parts == ["G"]:
            self.running = True
        else:
            self.garbage.append(text)
            log.warning("PLC: not a command: %r", text[:80])


class HandScanner(SerialEndpoint):
    """Types what it scans, one line each (CR LF, as most scanners do)."""

    def __init__(self) -> None:
        super().__init__("scanner")

    def scan(self, text: str) -> None:
        self.write(text.encode("utf-8") + b"\r\n")

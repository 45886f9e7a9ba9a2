"""Serial devices beside the line: the photo-eye, the PLC's reject output, a hand scanner.

Ports are opened with ``serial.serial_for_url``, so a device path (``/dev/ttyUSB0``), a pty,
``socket://host:port`` (a serial-to-Ethernet box, or a simulator) and ``loop://`` all work.
The line protocol is ASCII, one message per line (``\\n`` or ``\\r\\n``):

* photo-eye → station: ``T <position>`` — an item passed the eye with the belt at
  ``<position>`` (encoder, in camera pixels of travel); a bare ``T`` means "now" and the
  station takes the belt position from its clock.
* station → PLC: ``R <item> <reason>`` — push item ``<item>`` off at the reject point;
  ``S <reason>`` — stop the line; ``G`` — the line may run.
* hand scanner → station: the scanned text (a keyboard wedge types the same into stdin).

A line that is not a valid message (noise on the wire) is logged, counted and skipped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from edge_agent.errors import EdgeError

logger = logging.getLogger(__name__)

MAX_LINE = 1024


class SerialError(EdgeError):
    """A serial port could not be opened or written."""


def open_port(url: str, baudrate: int = 9600, timeout: float = 0.2) -> Any:
    """A pyserial port for a device path or a URL (socket://, loop://, rfc2217://)."""
    import serial

    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=timeout)
    except (serial.SerialException, ValueError, OSError) as exc:
        raise SerialError(f"Cannot open serial port {url!r}: {exc}") from None


class LineReader:
    """Reads lines from a port in a thread and hands each to ``on_line``; counts garbage."""

    def __init__(self, port: Any, name: str, on_line: Callable[[str], bool]) -> None:
        self.port = port
        self.name = name
        self._on_line = on_line
        self._lock = threading.Lock()
        self.lines = 0
        self.garbage = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"serial-{name}", daemon=True)

    def start(self) -> LineReader:
        self._thread.start()
        return self

    def _run(self) -> None:
        buffer = b""
        skipping = False  # inside an overlong line: drop up to its end
        while not self._stop.is_set():
            try:
                chunk = self.port.read(256)
            except Exception as exc:  # a port that went away: say so, keep trying
                logger.warning("Serial %s: read failed: %s", self.name, exc)
                if self._stop.wait(0.5):
                    return
                continue
            if not chunk:
                continue
            buffer += chunk
            while b"\n" in buffer:
                raw, buffer = buffer.split(b"\n", 1)
                if skipping:
                    skipping = False
                    continue
                self._line(raw)
            if len(buffer) > MAX_LINE:
                if not skipping:
                    self._garbage(buffer[:80], "line too long")
                skipping = True
                buffer = b""

    def _line(self, raw: bytes) -> None:
        try:
            text = raw.decode("ascii").strip("\r").strip()
        except UnicodeDecodeError:
            self._garbage(raw, "not ASCII")
            return
        if not text:
            return
        try:
            ok = self._on_line(text)
        except Exception:
            logger.exception("Serial %s: handling %r failed", self.name, text[:80])
            ok = False
        if ok:
            with self._lock:
                self.lines += 1
        else:
            self._garbage(raw, "not a valid message")

    def _garbage(self, raw: bytes, why: str) -> None:
        with self._lock:
            self.garbage += 1
        logger.warning("Serial %s: %s, skipped: %r", self.name, why, raw[:80])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        try:
            self.port.close()
        except Exception:  # closing a dead port
            logger.debug("Serial %s: close failed", self.name, exc_info=True)


def parse_trigger(text: str) -> float | bool | None:
    """``T <position>`` → the position; ``T`` → None (now); anything else → False."""
    parts = text.split()
    if not parts or parts[0] != "T" or len(parts) > 2:
        return False
    if len(parts) == 1:
        return None
    try:
        value = float(parts[1])
    except ValueError:
        return False
    return value if value == value and abs(value) < 1e15 else False  # no NaN / inf


class RejectOutput:
    """The PLC's reject input: one ``R <item> <reason>`` line per rejected item."""

    def __init__(self, port: Any) -> None:
        self.port = port
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0

    def _write(self, line: str) -> bool:
        with self._lock:
            try:
                self.port.write(line.encode("ascii") + b"\n")
                self.port.flush()
            except Exception as exc:
                self.failed += 1
                logger.error("PLC write %r failed: %s", line, exc)
                return False
            return True

    def reject(self, item: int, reason: str) -> bool:
        ok = self._write(f"R {item} {reason}")
        if ok:
            with self._lock:
                self.sent += 1
        return ok

    def stop_line(self, reason: str) -> bool:
        return self._write(f"S {reason}")

    def run_line(self) -> bool:
        return self._write("G")

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:
            logger.debug("PLC port close failed", exc_info=True)

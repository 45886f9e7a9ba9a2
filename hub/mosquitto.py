"""The embedded broker: a private mosquitto on a free loopback port, for the one-machine demo."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import pwd
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path

from hub.errors import HubConfigError

log = logging.getLogger(__name__)


def _mosquitto() -> str:
    found = shutil.which("mosquitto")
    if found is None and Path("/usr/sbin/mosquitto").exists():
        found = "/usr/sbin/mosquitto"
    if found is None:
        raise HubConfigError(
            "No mqtt_url configured and mosquitto is not installed for the embedded broker: "
            "install it (apt-get install mosquitto) or set mqtt_url"
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the broker's process before exec: ask Linux for SIGTERM when the hub dies, even
    by SIGKILL, so an embedded broker never outlives its hub."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


class EmbeddedBroker:
    def __init__(self) -> None:
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self, within: float = 10.0) -> None:
        binary = _mosquitto()
        self._dir = tempfile.TemporaryDirectory(prefix="yima-broker-")
        self.port = _free_port()
        conf = Path(self._dir.name) / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 100000\n"
            # Run as the hub's own user: a broker started by root would otherwise switch to
            # the mosquitto user, which clears the parent-death signal set below.
            f"user {pwd.getpwuid(os.getuid()).pw_name}\n"
        )
        self._proc = await asyncio.create_subprocess_exec(
            binary,
            "-c",
            str(conf),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = asyncio.get_running_loop().time() + within
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if self._proc.returncode is not None:
                    raise HubConfigError(
                        f"embedded mosquitto exited with {self._proc.returncode}"
                    ) from None
                if asyncio.get_running_loop().time() > deadline:
                    raise HubConfigError(
                        f"embedded mosquitto did not listen on {self.port}"
                    ) from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            break
        log.info("embedded broker listening on %s", self.url)

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 10)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

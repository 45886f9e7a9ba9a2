"""The embedded broker: a private mosquitto on a free loopback port, for the one-machine demo.

With a :class:`BrokerAuth` it refuses anonymous clients and runs with a password file and an
ACL file generated here: the hub's own user may do anything; a station's user name is its
station id, and the ACL lets it publish only to its own ``events`` and ``status`` topics and
read only its own ``ack`` and ``command`` topics (mosquitto ``pattern`` lines with ``%u``).
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import hashlib
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hub.errors import HubConfigError
from protocols.topics import Channel, Topics, check_station_id

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


# mosquitto 2's own format (mosquitto_passwd): PBKDF2-HMAC-SHA512, 12-byte salt, 101 rounds.
_PBKDF2_ROUNDS = 101


def hash_password(password: str, salt: bytes | None = None, rounds: int = _PBKDF2_ROUNDS) -> str:
    """A password-file hash mosquitto 2 accepts: ``$7$<rounds>$<salt>$<hash>``, base64."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, rounds)
    return f"$7${rounds}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def new_password() -> str:
    return secrets.token_urlsafe(24)


HUB_USER = "yima-hub"


@dataclass(frozen=True)
class BrokerAuth:
    """Who may connect: the hub's own password, and each station's password hash by id."""

    hub_password: str
    stations: Mapping[str, str] = field(default_factory=dict)  # station id -> hash_password()
    topics: Topics = field(default_factory=Topics)

    def password_file(self) -> str:
        lines = [f"{HUB_USER}:{hash_password(self.hub_password)}"]
        for station_id, hashed in sorted(self.stations.items()):
            check_station_id(station_id)  # never a ':' or newline in the file
            if not hashed.startswith("$") or "\n" in hashed or ":" in hashed:
                raise HubConfigError(f"Station {station_id}: stored password hash is malformed")
            lines.append(f"{station_id}:{hashed}")
        return "\n".join(lines) + "\n"

    def acl_file(self) -> str:
        t = self.topics
        return (
            f"user {HUB_USER}\ntopic readwrite #\n\n"
            "# every other user is a station: its own topics only\n"
            f"pattern write {t.acl_pattern(Channel.EVENTS)}\n"
            f"pattern write {t.acl_pattern(Channel.STATUS)}\n"
            f"pattern read {t.acl_pattern(Channel.ACK)}\n"
            f"pattern read {t.acl_pattern(Channel.COMMAND)}\n"
        )


class EmbeddedBroker:
    def __init__(self, auth: BrokerAuth | None = None) -> None:
        self.auth = auth
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """The broker's URL for stations (no credentials in it)."""
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def hub_url(self) -> str:
        """The URL the hub connects with (its own credentials when auth is on)."""
        if self.auth is None:
            return self.url
        return f"mqtt://{HUB_USER}:{self.auth.hub_password}@127.0.0.1:{self.port}"

    async def start(self, within: float = 10.0) -> None:
        binary = _mosquitto()
        self._dir = tempfile.TemporaryDirectory(prefix="yima-broker-")
        self.port = _free_port()
        conf = Path(self._dir.name) / "mosquitto.conf"
        if self.auth is None:
            access = "allow_anonymous true\n"
        else:
            passwords = Path(self._dir.name) / "passwords"
            acl = Path(self._dir.name) / "acl"
            passwords.write_text(self.auth.password_file())
            acl.write_text(self.auth.acl_file())
            passwords.chmod(0o600)
            access = f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\n"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n{access}persistence false\n"
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

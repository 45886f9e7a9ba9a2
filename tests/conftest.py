"""Shared fixtures: a real MQTT broker and real databases, isolated per test run.

The broker is the machine's Mosquitto at 127.0.0.1:1883 when it answers, else a private
``mosquitto`` on a free port. Every test gets its own topic prefix. PostgreSQL tests create a
database of their own on 127.0.0.1:5432 (trust auth) and drop it afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SHARED_BROKER = ("127.0.0.1", 1883)
PG_ADMIN_DSN = os.environ.get("YIMA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        pytest.fail("mosquitto is not installed: run ./yima test, which installs it")
    return found


class PrivateBroker:
    """A mosquitto subprocess on a free loopback port; tests may stop and restart it."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"private mosquitto did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture(scope="session")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a running broker shared by the session (topics are isolated by prefix)."""
    if port_open(*SHARED_BROKER):
        yield f"mqtt://{SHARED_BROKER[0]}:{SHARED_BROKER[1]}"
        return
    broker = PrivateBroker(tmp_path_factory.mktemp("broker"))
    broker.start()
    try:
        yield broker.url
    finally:
        broker.stop()


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A broker of this test's own, started; the test may stop and restart it."""
    broker = PrivateBroker(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


_USED_PREFIXES: list[str] = []


@pytest.fixture(scope="session")
def _retained_cleanup(broker_url: str) -> Iterator[None]:
    yield
    if _USED_PREFIXES:
        clear_retained(broker_url, *_USED_PREFIXES)


@pytest.fixture
def topic_prefix(_retained_cleanup: None) -> str:
    """A topic prefix of this test's own. Retained messages under every prefix the run used
    are removed when the session ends, so the shared broker keeps nothing of the run."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    _USED_PREFIXES.append(prefix)
    return prefix


@pytest.fixture
def retained_cleaner() -> Callable[..., list[str]]:
    """The clean-up ``topic_prefix`` runs, for tests of it."""
    return clear_retained


def clear_retained(broker_url: str, *prefixes: str, settle: float = 1.0) -> list[str]:
    """Delete every retained message under each ``prefix/#``; returns the topics cleared."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from protocols.broker import BrokerAddress

    address = BrokerAddress.parse(broker_url)
    found: list[str] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"cleanup-{uuid.uuid4().hex[:8]}")
    client.on_message = lambda _c, _u, msg: found.append(msg.topic) if msg.retain else None
    client.connect(address.host, address.port)
    client.subscribe([(f"{prefix}/#", 1) for prefix in prefixes])
    client.loop_start()
    time.sleep(settle)  # retained messages arrive right after the subscription
    for topic in found:
        client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    return found


def _pg_available() -> bool:
    return port_open("127.0.0.1", 5432)


@pytest.fixture
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 (required in CI)")
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    import asyncio

    import asyncpg

    name = f"yima_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every hub test that takes this fixture runs on both embedded SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}"
    return str(request.getfixturevalue("pg_database_url"))

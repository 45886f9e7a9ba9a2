"""Start a hub as a real ``yima-hub serve`` subprocess on embedded defaults (SQLite file and
an embedded broker), for the plant simulator, benchmarks and end-to-end tests."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pda_app.client import HubClient

_LISTENING = re.compile(r"listening on (http://\S+) \(printed URLs: (\S+), MQTT: (\S+)\)")


@dataclass(frozen=True)
class RunningHub:
    url: str
    public_base: str
    mqtt_url: str
    token: str
    topic_prefix: str
    process: subprocess.Popen[str] | None

    @property
    def client(self) -> HubClient:
        return HubClient(self.url, self.token)

    def export_csv(self, batch_id: int) -> str:
        """The printer CSV of a code batch (seq,serial,url,human,pin)."""
        return self.client.text(f"/api/v1/batches/{batch_id}/export")


@contextmanager
def start_hub(
    workdir: Path,
    *,
    mqtt_url: str | None = None,
    topic_prefix: str = "",
    database_url: str | None = None,
    log_level: str = "WARNING",
    timeout: float = 60.0,
    code_secret: bytes | None = None,
    token: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[RunningHub]:
    """Run ``yima-hub serve``; stop it on exit. A fresh code key and admin token unless
    given (a restarted hub must get the same ones back)."""
    workdir.mkdir(parents=True, exist_ok=True)
    # Hex: a token that starts with "-" would read as an option on a command line.
    token = token or secrets.token_hex(16)
    secret = code_secret or secrets.token_bytes(32)
    extra_env = env or {}
    env = dict(os.environ) | extra_env
    env["YIMA_HUB_CODE_KEYS"] = json.dumps({"0": base64.b64encode(secret).decode()})
    env["YIMA_HUB_TOKENS"] = json.dumps({token: "admin"})
    args = [
        sys.executable,
        "-m",
        "hub",
        "--log-level",
        log_level,
        "--database-url",
        database_url or f"sqlite+aiosqlite:///{workdir / 'hub.sqlite3'}",
        "serve",
        "--port",
        "0",
    ]
    if mqtt_url:
        args += ["--mqtt-url", mqtt_url]
    if topic_prefix:
        args += ["--topic-prefix", topic_prefix]
    log_path = workdir / "hub.log"
    with log_path.open("a") as log:  # appended: a restarted hub keeps the earlier log
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            args, env=env, stdout=subprocess.PIPE, stderr=log, text=True
        )
    try:
        match = _wait_for_banner(proc, timeout, log_path)
        yield RunningHub(
            url=match.group(1),
            public_base=match.group(2),
            mqtt_url=match.group(3),
            token=token,
            topic_prefix=topic_prefix,
            process=proc,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_banner(proc: subprocess.Popen[str], timeout: float, log: Path) -> re.Match[str]:
    assert proc.stdout is not None
    found: list[re.Match[str]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = _LISTENING.search(line)
            if match:
                found.append(match)
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not found:
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"yima-hub did not start (exit code {proc.poll()}):\n{tail}")
        time.sleep(0.05)
    return found[0]

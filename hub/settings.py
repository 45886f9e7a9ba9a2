"""Hub settings: one object per process, loaded once by the CLI, unknown keys rejected.

Sources, later ones winning: a TOML file (``--config``), environment variables
``YIMA_HUB_<FIELD>`` (for secrets), command-line flags.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import re
import socket
import tomllib
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.errors import HubConfigError
from protocols.broker import BrokerAddress
from protocols.codes import MIN_SECRET_BYTES, Keyring
from protocols.errors import KeyConfigError
from protocols.topics import Topics

ENV_PREFIX = "YIMA_HUB_"
Role = Literal["admin", "operator", "warehouse", "dealer", "inspector", "store", "partner"]


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: str = Field(
        "sqlite+aiosqlite:///var/hub.sqlite3",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///<file> or postgresql+asyncpg://...",
    )
    mqtt_url: str | None = Field(
        None,
        description="Broker as mqtt://[user:password@]host:port; empty starts an embedded "
        "mosquitto on a free loopback port",
    )
    topic_prefix: str = Field("", description="Topic prefix shared with the stations")
    broker_auth: bool = Field(
        False,
        description="Embedded broker only: refuse anonymous clients; each station connects "
        "with the credentials `yima-hub stations credentials` issued (user name = station id) "
        "and may publish and read only its own topics. Read at start-up",
    )
    share_group: str = Field("hub", description="Shared-subscription group of the hub processes")
    mqtt_client_id: str | None = Field(
        None,
        description="MQTT client id of this hub process. With a stable id the broker keeps the "
        "hub's session, so events published while the hub is down are queued for it. Default: "
        "derived from the host name, topic prefix, share group and HTTP port; with port 0 a "
        "random id and a clean session (a hub that cannot be told apart from the next one "
        "must not leave a session behind that keeps taking its share of the events)",
        max_length=128,
    )
    mqtt_session_expiry_s: int = Field(
        86_400,
        ge=0,
        description="How long the broker keeps this hub's session after it disconnects "
        "(used with a stable client id; 0 makes every connection a clean session)",
    )
    host: str = Field("127.0.0.1", description="HTTP listen address")
    port: int = Field(8080, ge=0, le=65535, description="HTTP port (0 picks a free one)")
    resolver_url: str | None = Field(
        None,
        description="Base of the printed URLs, e.g. https://y.example.cn; "
        "defaults to this hub's own http://host:port",
    )
    code_keys: dict[int, str] = Field(
        default_factory=dict,
        description="Code secrets by key id (0-7), base64 or hex, at least 16 bytes each",
    )
    active_key_id: int = Field(0, description="Key id new code batches are sealed with")
    tokens: dict[str, Role] = Field(
        default_factory=dict, description="API bearer tokens and their role"
    )
    copied_code_clients: int = Field(
        3,
        ge=2,
        description="This many different people (device cookie or network) verifying one "
        "activated code make it 'suspicious' (a copied code)",
    )
    max_travel_kmh: float = Field(
        800.0,
        gt=0,
        description="Two people's scans of one code needing more speed than this "
        "between them are an impossible travel",
    )
    min_travel_km: float = Field(
        150.0,
        ge=0,
        description="Scans closer than this are never an impossible travel (IP location noise)",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Networks of reverse proxies whose X-Forwarded-For names the consumer "
        '(e.g. ["127.0.0.1/32"] behind a local nginx)',
    )
    ip_regions: dict[str, str] = Field(
        default_factory=dict,
        description="The brand's table of IP networks to administrative division codes "
        '(e.g. {"36.16.0.0/12" = "330000"}), to place a scan without the browser\'s location',
    )
    scan_burst: int = Field(
        60, ge=1, description="Consumer scans one client (network) may make at once"
    )
    scans_per_hour: int = Field(
        600, ge=1, description="Consumer scans per hour one client may make after its burst"
    )
    unknown_burst: int = Field(
        10,
        ge=1,
        description="Scans of unknown or forged codes one client may make at once, before "
        "answers are 429 (serial enumeration) and an alert is raised",
    )
    unknown_per_hour: int = Field(
        30, ge=1, description="Scans of unknown codes per hour one client may make after that"
    )
    scan_group_max: int = Field(
        256, ge=1, description="Most consumer scans written in one database transaction"
    )
    brand_name: str = Field(
        "一码 Yima", max_length=100, description="The brand's name at the top of the consumer page"
    )
    brand_hotline: str | None = Field(
        None, max_length=40, description="Phone number for reports, shown on warning pages"
    )
    time_zone: str = Field(
        "Asia/Shanghai", description="Time zone of the times on the consumer page"
    )
    ingest_max_messages: int = Field(
        64, ge=1, description="Most MQTT messages applied in one database transaction"
    )
    ingest_linger_ms: int = Field(
        20, ge=0, description="How long ingestion waits to fill a transaction"
    )
    dead_letter_max_rows: int = Field(
        10_000, ge=1, description="Most dead letters kept; the oldest go first"
    )
    dead_letter_retention_days: int = Field(
        30, ge=1, description="Dead letters older than this are deleted"
    )
    unship_grace_hours: float = Field(
        24, ge=0, description="How long after shipping an admin may un-ship a mistaken order"
    )
    max_request_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest HTTP request body accepted"
    )
    max_job_codes: int = Field(
        20_000_000,
        ge=1,
        le=20_000_000,
        description="Most codes one generation job may make (the API refuses more)",
    )
    job_chunk: int = Field(
        10_000,
        ge=100,
        le=100_000,
        description="Codes written per transaction by a generation job: the longest a "
        "verification waits for the database while a job runs",
    )
    job_stale_s: float = Field(
        60.0,
        gt=0,
        description="A running job whose process has not written for this long is taken "
        "over (resumed) by another hub process",
    )
    job_poll_s: float = Field(5.0, gt=0, description="How often a hub looks for jobs nobody runs")
    login_token_hours: float = Field(
        12, gt=0, le=24 * 90, description="How long a token from POST /api/v1/login is valid"
    )
    login_max_failures: int = Field(
        5, ge=1, description="Wrong passwords in a row before a user is locked for a while"
    )
    login_lock_minutes: float = Field(
        15, gt=0, description="How long a user stays locked after too many wrong passwords"
    )
    audit_retention_days: int = Field(
        365, ge=1, description="Audit entries older than this are deleted by the cleanup job"
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="text: one readable line per record; json: JSON lines"
    )
    gs1_company_prefix_length: int = Field(
        7,
        ge=6,
        le=12,
        description="Digits of the brand's GS1 company prefix in its GTINs: splits a GTIN "
        "into the parts of an SGTIN EPC URI (urn:epc:id:sgtin:<prefix>.<item>.<serial>)",
    )
    epcis_epc_format: Literal["Always_EPC_URN", "Always_GS1_Digital_Link"] = Field(
        "Always_EPC_URN",
        description="How EPCIS answers name codes when the request has no GS1-EPC-Format "
        "header: SGTIN EPC URIs or GS1 Digital Link URIs",
    )

    @field_validator("mqtt_url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        if value:
            BrokerAddress.parse(value)  # BrokerUrlError is a ValueError: reported by field
        return value or None

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for text in value:
            ipaddress.ip_network(text, strict=False)  # ValueError names the bad network
        return value

    @field_validator("ip_regions")
    @classmethod
    def _ip_regions(cls, value: dict[str, str]) -> dict[str, str]:
        for network, region in value.items():
            ipaddress.ip_network(network, strict=False)
            if not re.fullmatch(r"\d{2}(\d{2}){0,2}", region):
                raise ValueError(
                    f"ip_regions[{network}]: expected a division code of 2, 4 or 6 digits"
                )
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value[:60]!r}: expected e.g. Asia/Shanghai"
            ) from None
        return value

    @field_validator("code_keys")
    @classmethod
    def _keys_decode(cls, value: dict[int, str]) -> dict[int, str]:
        for key_id, secret in value.items():
            decode_secret(key_id, secret)
        return value

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    def keyring(self) -> Keyring:
        if not self.code_keys:
            raise HubConfigError(
                "No code keys configured: set code_keys in the config file or "
                f'{ENV_PREFIX}CODE_KEYS=\'{{"0": "<base64 secret>"}}\' '
                "(create one with: yima-hub keys new)"
            )
        secrets = {k: decode_secret(k, v) for k, v in self.code_keys.items()}
        try:
            return Keyring.from_secrets(secrets, self.active_key_id)
        except KeyConfigError as exc:
            raise HubConfigError(str(exc)) from None

    def mqtt_session(self) -> tuple[str | None, int]:
        """(client id, session expiry): a stable id keeps a persistent session; ``None``
        means a random id and a clean session."""
        if self.mqtt_client_id:
            return self.mqtt_client_id, self.mqtt_session_expiry_s
        if self.port == 0:
            return None, 0
        identity = f"{self.topic_prefix}|{self.share_group}|{self.port}".encode()
        digest = hashlib.sha256(identity).hexdigest()[:10]
        return f"yima-hub-{socket.gethostname()[:40]}-{digest}", self.mqtt_session_expiry_s

    def public_base(self, bound_port: int | None = None) -> str:
        if self.resolver_url:
            return self.resolver_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{host}:{bound_port or self.port}"


def decode_secret(key_id: int, text: str) -> bytes:
    """A code secret written as hex or base64. Text made only of hex digits is hex, so a
    too-short hex key is refused rather than read as (longer) base64."""
    if _HEX.fullmatch(text):
        secret = bytes.fromhex(text) if len(text) % 2 == 0 else b""
    else:
        try:
            # validate=True: plain b64decode drops characters outside the alphabet, so a pass
            # phrase with spaces or punctuation would silently become some other, shorter key.
            secret = base64.b64decode(text, validate=True)
        except (ValueError, binascii.Error):
            secret = b""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(
            f"code key {key_id}: expected hex or base64 of at least {MIN_SECRET_BYTES} bytes"
        )
    return secret


_HEX = re.compile(r"[0-9a-fA-F]+")
_JSON_FIELDS = {"code_keys", "tokens", "trusted_proxies", "ip_regions"}


def load_settings(
    config: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge file, environment and flags, and validate once. Raises HubConfigError."""
    data: dict[str, Any] = {}
    if config is not None:
        try:
            data.update(tomllib.loads(config.read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise HubConfigError(f"Cannot read config {config}: {exc}") from None
    for name, value in (env or {}).items():
        if not name.startswith(ENV_PREFIX):
            continue
        field = name[len(ENV_PREFIX) :].lower()
        if field not in Settings.model_fields:
            raise HubConfigError(f"Unknown setting in environment: {name}")
        if field in _JSON_FIELDS:
            try:
                data[field] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise HubConfigError(f"{name} must be a JSON object: {exc}") from None
        else:
            data[field] = value
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise HubConfigError(f"Invalid hub settings:\n{describe_errors(exc)}") from None


def describe_errors(exc: ValidationError) -> str:
    """One line per problem: the setting and what is wrong, never the value given.

    pydantic's own text shows (a shortened) input, which for a code key is most of the key,
    and names a dict entry by its key, which for ``tokens`` is the bearer token itself.
    """
    lines = []
    for error in exc.errors(include_input=False, include_url=False, include_context=False):
        loc = [str(part) for part in error["loc"]]
        if loc and loc[0] == "tokens" and len(loc) > 1:
            loc[1] = "<a token>"
        lines.append(f"  {'.'.join(loc) or 'settings'}: {error['msg']}")
    return "\n".join(lines)

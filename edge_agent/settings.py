"""Station configuration: one TOML file, loaded once by the CLI and passed down explicitly.

Unknown keys are rejected, so a typo fails at start-up instead of silently using a default.
Example::

    station_id = "line-1-cam-1"
    mqtt_url = "mqtt://127.0.0.1:1883"
    outbox_path = "var/line-1-cam-1.outbox.sqlite3"
    source = "sim"            # or a device index (0) or a file path / stream URL

    [work_order]
    id = "WO-2024-0001"
    sku = "TEA-250G"
    lot = "L240501"

    [sim]
    codes_csv = "var/printer-export.csv"   # the hub's printer export: seq,serial,url,human,pin
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from edge_agent.decode import (
    DEFAULT_BACKEND,
    RETRIES,
    UNION,
    DecodeOptions,
    backends_for,
    check_symbologies,
)
from edge_agent.errors import ConfigError, DecodeError
from protocols.broker import BrokerAddress
from protocols.errors import TopicError
from protocols.messages import MAX_BATCH_EVENTS, WorkOrder
from protocols.topics import Topics, check_station_id


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkOrderSettings(_Section):
    id: str = Field(min_length=1, max_length=64, description="Work order number.")
    sku: str = Field(min_length=1, max_length=64, description="Product (SKU) being made.")
    lot: str = Field(min_length=1, max_length=64, description="Production lot / batch number.")
    gtin: str | None = Field(
        default=None,
        pattern=r"^[0-9]{14}$",
        description="Product GTIN-14: codes of another GTIN are rejected as wrong product.",
    )
    production_date: date | None = Field(default=None, description="Production date.")
    line: str | None = Field(default=None, max_length=64, description="Production line.")
    shift: str | None = Field(default=None, max_length=32, description="Shift (班次).")
    operator: str | None = Field(default=None, max_length=64, description="Operator.")

    def to_work_order(self) -> WorkOrder:
        return WorkOrder(
            self.id,
            self.sku,
            self.lot,
            gtin=self.gtin,
            production_date=None
            if self.production_date is None
            else self.production_date.isoformat(),
            line=self.line,
            shift=self.shift,
            operator=self.operator,
        )


class LineSettings(_Section):
    photo_eye: str | None = Field(
        default=None,
        description="Serial port of the photo-eye (device path, socket://host:port, loop://). "
        "With it, every item gets a decision (good or a reject reason), items without a read "
        "included.",
    )
    plc: str | None = Field(
        default=None, description="Serial port of the PLC's reject input (R <item> <reason>)."
    )
    scanner: str | None = Field(
        default=None,
        description="Serial port of a hand scanner: manual mode, one scan is one item "
        '(use with source = "none").',
    )
    baudrate: int = Field(default=9600, ge=50, le=4_000_000, description="Serial speed.")
    eye_x: float = Field(
        default=-200.0,
        description="Item centre x in the camera picture when the photo-eye fires, pixels.",
    )
    exit_x: float = Field(
        default=1400.0, description="Items whose centre passes this x have left the view, px."
    )
    reject_at: float = Field(
        default=2600.0,
        description="Belt travel from the photo-eye to the reject point, camera pixels.",
    )
    match_px: float = Field(
        default=150.0, gt=0, description="Furthest a read may lie from its item's centre, px."
    )
    belt_speed: float = Field(
        default=0.0,
        ge=0,
        description="Belt speed, camera pixels per second: positions from the clock when "
        "neither frames nor photo-eye report an encoder position (0: they must).",
    )


class SimCameraSettings(_Section):
    codes_csv: Path = Field(
        description="CSV of the code texts to show (the hub's printer export: "
        "seq,serial,url,human,pin); relative to the config file."
    )
    column: str = Field(default="url", description="CSV column holding the printed text.")
    fps: float = Field(default=20.0, gt=0, description="Frames per second of the simulation.")
    step: int = Field(default=40, ge=1, description="Conveyor travel per frame, in pixels.")
    pitch: int = Field(default=320, ge=1, description="Distance between cartons, in pixels.")
    seed: int = Field(default=0, description="Seed of the picture noise and carton positions.")
    realtime: bool = Field(
        default=True, description="Pace frames at fps (false: as fast as decoding allows)."
    )


PositiveSeconds = Annotated[float, Field(gt=0)]


class CameraSettings(_Section):
    width: int | None = Field(
        default=None, ge=16, le=16384, description="Frame width to ask the camera for, pixels."
    )
    height: int | None = Field(
        default=None, ge=16, le=16384, description="Frame height to ask the camera for, pixels."
    )
    fps: float | None = Field(
        default=None, gt=0, le=1000, description="Frame rate to ask the camera for."
    )
    exposure: float | None = Field(
        default=None, description="Exposure in the driver's unit (V4L2: 100 µs steps)."
    )
    watchdog_timeout: PositiveSeconds = Field(
        default=5.0,
        description="A live camera silent this long raises the camera_silent alarm and is "
        "opened again, seconds.",
    )
    reopen_delay: PositiveSeconds = Field(
        default=1.0, description="Wait between attempts to open a failed camera, seconds."
    )
    folder_fps: float = Field(
        default=0.0,
        ge=0,
        description="Pace of an image-folder source (0: as fast as decoding takes them).",
    )
    loop: bool = Field(default=False, description="Start an image folder over at its end.")


class DecodeSettings(_Section):
    roi: tuple[int, int, int, int] | None = Field(
        default=None,
        description="Part of the frame to search: [left, top, width, height] in pixels.",
    )
    max_side: int | None = Field(
        default=None, ge=32, description="Downscale frames whose longest side is larger, pixels."
    )
    retry: Literal["never", "if_none", "always"] = Field(
        default="never",
        description="Preprocessing retries: never (line speed), if_none (when a frame reads "
        "nothing; costly on a belt with gaps), always.",
    )
    retries: tuple[str, ...] = Field(
        default=RETRIES, description=f"Retry passes, in order: some of {', '.join(RETRIES)}."
    )
    time_budget_ms: float | None = Field(
        default=None, gt=0, description="No new retry pass starts after this long on a frame."
    )


class EdgeSettings(_Section):
    station_id: str = Field(
        description="This station's id: its MQTT topics and the source of its events."
    )
    mqtt_url: str = Field(
        default="mqtt://127.0.0.1:1883", description="Broker URL, mqtt://host:port or mqtts://."
    )
    mqtt_username: str | None = Field(default=None, description="Broker user name, if any.")
    mqtt_password: SecretStr | None = Field(default=None, description="Broker password, if any.")
    topic_prefix: str = Field(
        default="", description="Prefix before yima/v1/... (tenant or test isolation)."
    )
    keepalive: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive, seconds.")
    reconnect_min_delay: PositiveSeconds = Field(
        default=1.0, description="First wait before reconnecting to the broker, seconds."
    )
    reconnect_max_delay: PositiveSeconds = Field(
        default=60.0, description="Longest wait between reconnect attempts, seconds."
    )
    outbox_path: Path = Field(
        description="SQLite file holding events until the hub acks them; relative to the "
        "config file."
    )
    source: int | str = Field(
        default="sim",
        description="Camera: a device index, a video file, a folder of images, a stream URL "
        '(rtsp://, http://) or a registered source name ("sim": the synthetic conveyor).',
    )
    camera: CameraSettings = Field(
        default_factory=CameraSettings, description="Camera properties and watchdog."
    )
    frame_queue: int = Field(
        default=2, ge=1, le=100, description="Captured frames waiting for decode; more are dropped."
    )
    decoder: Literal["zxingcpp", "pyzbar", "union"] = Field(
        default=DEFAULT_BACKEND,
        description="Barcode decoder: zxingcpp, pyzbar, or union (both, reads merged).",
    )
    decode: DecodeSettings = Field(
        default_factory=DecodeSettings, description="Region of interest, downscale, retries."
    )
    # Yima prints its URLs as QR codes. Looking for nothing else is several times faster
    # (bench/RESULTS.md) and keeps 1-D and Micro QR false reads out of the line.
    symbologies: tuple[str, ...] = Field(
        default=("QRCODE",),
        min_length=1,
        description='Symbologies to look for, zbar names, e.g. ["QRCODE", "DATAMATRIX"].',
    )
    batch_size: int = Field(
        default=100,
        ge=1,
        le=MAX_BATCH_EVENTS,
        description="Most events per MQTT message.",
    )
    flush_interval: PositiveSeconds = Field(
        default=0.1, description="How long new events wait to be batched before sending, s."
    )
    outbox_max_events: int = Field(
        default=1_000_000,
        ge=1,
        description="Outbox budget, events: when full the line stops (alarm outbox_full).",
    )
    outbox_max_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=65536,
        description="Outbox budget on disk, bytes: when full the line stops (alarm outbox_full).",
    )
    heartbeat_interval: PositiveSeconds = Field(
        default=10.0, description="Seconds between retained status messages with counters."
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve Prometheus metrics on this local port (127.0.0.1); none: off.",
    )
    resend_interval: PositiveSeconds = Field(
        default=5.0, description="Resend an event not acked by the hub after this many seconds."
    )
    leave_after_frames: int = Field(
        default=3,
        ge=1,
        description="Frames without a read after which an item has left the field of view.",
    )
    remember_codes: int = Field(
        default=100_000, ge=1, description="Commissioned codes remembered for duplicate checks."
    )
    line: LineSettings = Field(
        default_factory=LineSettings, description="Photo-eye, PLC reject, hand scanner."
    )
    work_order: WorkOrderSettings | None = Field(
        default=None, description="Work order to start with (the hub may send another)."
    )
    sim: SimCameraSettings | None = Field(
        default=None, description='Synthetic camera options; required when source = "sim".'
    )

    @field_validator("station_id")
    @classmethod
    def _station(cls, value: str) -> str:
        try:
            return check_station_id(value)
        except TopicError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        try:
            Topics(value)
        except TopicError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _url(cls, value: str) -> str:
        broker_address(value)
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError(f"expected a device index >= 0, got {value}")
        if isinstance(value, str) and not value.strip():
            raise ValueError("expected sim, a device index, a file path or a stream URL")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> EdgeSettings:
        try:
            if self.decoder == UNION:
                self.decode_options().wanted()
            else:
                check_symbologies(self.decoder, self.symbologies)
            self.decode_options()
        except DecodeError as exc:
            raise ValueError(str(exc)) from None
        line = self.line
        if line.exit_x <= line.eye_x or line.reject_at < line.exit_x - line.eye_x:
            raise ValueError(
                f"line: expected eye_x < exit_x and reject_at >= exit_x - eye_x, got eye_x "
                f"{line.eye_x}, exit_x {line.exit_x}, reject_at {line.reject_at}"
            )
        if self.source == "none" and line.scanner is None:
            raise ValueError('source = "none" (manual mode) needs line.scanner')
        if self.source == "sim" and self.sim is None:
            raise ValueError('source = "sim" needs a [sim] table with codes_csv')
        if self.reconnect_max_delay < self.reconnect_min_delay:
            raise ValueError(
                f"reconnect_max_delay ({self.reconnect_max_delay}) expected at least "
                f"reconnect_min_delay ({self.reconnect_min_delay})"
            )
        return self

    def decode_options(self) -> DecodeOptions:
        d = self.decode
        return DecodeOptions(
            backends=backends_for(self.decoder),
            symbologies=self.symbologies,
            roi=d.roi,
            max_side=d.max_side,
            retries=d.retries,
            retry=d.retry,
            time_budget_ms=d.time_budget_ms,
        )

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    def relative_to(self, base: Path) -> EdgeSettings:
        """The same settings with relative file paths taken from ``base``."""
        update: dict[str, object] = {"outbox_path": base / self.outbox_path}
        if self.sim is not None:
            update["sim"] = self.sim.model_copy(update={"codes_csv": base / self.sim.codes_csv})
        return self.model_copy(update=update)


def broker_address(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of an mqtt:// or mqtts:// URL; ValueError saying what is wrong."""
    address = BrokerAddress.parse(url)
    if address.username or address.password:
        raise ValueError("put broker credentials in mqtt_username / mqtt_password, not the URL")
    return address.host, address.port, address.tls


def load_settings(path: str | Path) -> EdgeSettings:
    """Read and validate the TOML file; raise ConfigError with every problem, by key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Cannot read config {str(path)!r}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config {str(path)!r} is not valid TOML: {exc}") from None
    try:
        settings = EdgeSettings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"Invalid config {str(path)!r}:\n{describe_errors(exc)}") from None
    return settings.relative_to(path.resolve().parent)


def describe_errors(exc: ValidationError) -> str:
    """One line per problem: ``  key.path: message (got ...)``."""
    lines = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        # Our own validators already say what they got; never echo a password.
        quiet = error["type"] in ("missing", "value_error") or "password" in where
        got = "" if quiet else f" (got {error['input']!r:.60})"
        lines.append(f"  {where}: {message}{got}")
    return "\n".join(lines)

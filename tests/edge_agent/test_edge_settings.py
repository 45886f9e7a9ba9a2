from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.errors import ConfigError
from edge_agent.settings import EdgeSettings, broker_address, load_settings

GOOD = """
station_id = "line-1-cam-1"
mqtt_url = "mqtt://broker.local:1884"
mqtt_username = "line-1-cam-1"
mqtt_password = "s3cret"
topic_prefix = "plant-a"
outbox_path = "var/outbox.sqlite3"
source = "sim"
decoder = "pyzbar"
batch_size = 50
flush_interval = 0.2
resend_interval = 3.0

[work_order]
id = "WO-1"
sku = "TEA-250G"
lot = "L240501"

[sim]
codes_csv = "codes.csv"
fps = 10.0
realtime = false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_full_config_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD))
    assert settings.station_id == "line-1-cam-1"
    assert broker_address(settings.mqtt_url) == ("broker.local", 1884, False)
    assert settings.mqtt_password is not None
    assert settings.mqtt_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.outbox_path == tmp_path.resolve() / "var/outbox.sqlite3"
    assert settings.sim is not None
    assert settings.sim.codes_csv == tmp_path.resolve() / "codes.csv"
    assert (settings.sim.fps, settings.sim.realtime, settings.sim.column) == (10.0, False, "url")
    assert settings.work_order is not None
    assert (settings.work_order.id, settings.work_order.sku) == ("WO-1", "TEA-250G")
    assert settings.topics.events("line-1-cam-1") == "plant-a/yima/v1/station/line-1-cam-1/events"
    assert (settings.decoder, settings.batch_size, settings.resend_interval) == ("pyzbar", 50, 3.0)


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(
        write(tmp_path, 'station_id = "s1"\noutbox_path = "/var/o.sqlite3"\nsource = 0\n')
    )
    assert settings.mqtt_url == "mqtt://127.0.0.1:1883"
    assert settings.topic_prefix == ""
    assert settings.source == 0
    assert settings.decoder == "zxingcpp"
    assert settings.symbologies == ("QRCODE",)
    assert settings.outbox_path == Path("/var/o.sqlite3")
    assert settings.work_order is None


def test_every_field_is_described() -> None:
    missing = [n for n, f in EdgeSettings.model_fields.items() if not f.description]
    assert missing == []


BASE = 'station_id = "s1"\noutbox_path = "o.sqlite3"\nsource = "/dev/video0"\n'


@pytest.mark.parametrize(
    ("extra", "lines"),
    [
        ("staton = 1\n", ["  staton: Extra inputs are not permitted (got 1)"]),
        (
            'decoder = "pyzbar"\nsymbologies = ["QRCODE", "DATAMATRIX"]\n',
            [
                "  (top level): Decoder backend 'pyzbar' cannot read DATAMATRIX: expected some "
                "of CODABAR, CODE128, CODE39, CODE93, DATABAR, DATABAR_EXP, EAN13, EAN8, I25, "
                "PDF417, QRCODE, UPCA, UPCE"
            ],
        ),
        (
            "symbologies = []\n",
            ["  symbologies: Tuple should have at least 1 item after validation, not 0 (got [])"],
        ),
        (
            'mqtt_url = "http://broker"\n',
            ["  mqtt_url: expected an mqtt:// or mqtts:// URL, got 'http://broker'"],
        ),
        (
            'mqtt_url = "mqtt://user:pw@broker"\n',
            ["  mqtt_url: put broker credentials in mqtt_username / mqtt_password, not the URL"],
        ),
        (
            'mqtt_url = "mqtt://broker:99999"\n',
            ["  mqtt_url: expected a port number in 'mqtt://broker:99999'"],
        ),
        (
            'topic_prefix = "a//b"\n',
            [
                "  topic_prefix: Invalid topic prefix 'a//b': expected path segments of letters, "
                "digits, '_', '.', '-'"
            ],
        ),
        (
            'decoder = "opencv"\n',
            ["  decoder: Input should be 'zxingcpp', 'pyzbar' or 'union' (got 'opencv')"],
        ),
        (
            "batch_size = 501\n",
            ["  batch_size: Input should be less than or equal to 500 (got 501)"],
        ),
        ("resend_interval = 0\n", ["  resend_interval: Input should be greater than 0 (got 0)"]),
        ("mqtt_password = 1234\n", ["  mqtt_password: Input should be a valid string"]),
        (
            "[work_order]\nid = 'WO'\n",
            ["  work_order.sku: Field required", "  work_order.lot: Field required"],
        ),
        (
            "reconnect_min_delay = 5.0\nreconnect_max_delay = 1.0\n",
            [
                "  (top level): reconnect_max_delay (1.0) expected at least "
                "reconnect_min_delay (5.0)"
            ],
        ),
    ],
)
def test_bad_configs_fail_with_every_problem_by_key(
    tmp_path: Path, extra: str, lines: list[str]
) -> None:
    path = write(tmp_path, BASE + extra)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).splitlines() == [f"Invalid config '{path}':", *lines]


def test_sim_source_needs_the_sim_table(tmp_path: Path) -> None:
    path = write(tmp_path, 'station_id = "s1"\noutbox_path = "o"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).splitlines()[1:] == [
        '  (top level): source = "sim" needs a [sim] table with codes_csv'
    ]


def test_a_bad_station_id(tmp_path: Path) -> None:
    path = write(tmp_path, 'station_id = "line 1"\noutbox_path = "o"\nsource = 0\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).splitlines()[1:] == [
        "  station_id: Invalid station id 'line 1': expected 1-64 characters of letters, "
        "digits, '_', '.', '-', starting with a letter or digit"
    ]


def test_missing_required_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).splitlines()[1:] == [
        "  station_id: Field required",
        "  outbox_path: Field required",
    ]


def test_not_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "station_id = \n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value) == (
        f"Config '{path}' is not valid TOML: Invalid value (at line 1, column 14)"
    )


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value) == f"Cannot read config '{path}': No such file or directory"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1:1883", ("127.0.0.1", 1883, False)),
        ("mqtt://broker", ("broker", 1883, False)),
        ("mqtts://broker", ("broker", 8883, True)),
        ("mqtt://broker:1884/", ("broker", 1884, False)),
    ],
)
def test_broker_address(url: str, expected: tuple[str, int, bool]) -> None:
    assert broker_address(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("tcp://broker", "expected an mqtt:// or mqtts:// URL, got 'tcp://broker'"),
        ("mqtt://", "expected a host in 'mqtt://'"),
        (
            "mqtt://broker/x",
            "expected mqtt://host:port with nothing after it, got 'mqtt://broker/x'",
        ),
        ("mqtt://broker:port", "expected a port number in 'mqtt://broker:port'"),
    ],
)
def test_bad_broker_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        broker_address(url)
    assert str(info.value) == message


def test_union_decoder_and_decode_options(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE
        + 'decoder = "union"\nsymbologies = ["QRCODE", "DATAMATRIX"]\n'
        + '[decode]\nroi = [0, 100, 1280, 400]\nretry = "if_none"\ntime_budget_ms = 8\n',
    )
    options = load_settings(path).decode_options()
    assert options.backends == ("zxingcpp", "pyzbar")
    assert options.wanted() == {"zxingcpp": ("DATAMATRIX", "QRCODE"), "pyzbar": ("QRCODE",)}
    assert (options.roi, options.retry, options.time_budget_ms) == (
        (0, 100, 1280, 400),
        "if_none",
        8,
    )


def test_bad_decode_options_fail_at_start_up(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + '[decode]\nretries = ["magic"]\n')
    with pytest.raises(ConfigError, match=r"Unknown retries \['magic'\]"):
        load_settings(path)

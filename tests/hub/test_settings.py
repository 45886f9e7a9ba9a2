"""Hub settings: file < environment < flags, unknown keys rejected, code keys checked at start."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import pytest

from hub.errors import HubConfigError
from hub.settings import Settings, load_settings

KEY_B64 = base64.b64encode(bytes(range(32))).decode()
KEY_HEX = bytes(range(16)).hex()
BAD_KEY = "code key 0: expected hex or base64 of at least 16 bytes"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(**kwargs: object) -> str:
    with pytest.raises(HubConfigError) as caught:
        load_settings(**kwargs)  # type: ignore[arg-type]
    return str(caught.value)


# Unknown keys ---------------------------------------------------------------------------


def test_unknown_key_in_file_is_rejected(tmp_path: Path) -> None:
    message = config_error(config=write(tmp_path, 'port = 8081\ncolour = "red"\n'))
    assert message.startswith("Invalid hub settings:")
    assert "colour" in message
    assert "Extra inputs are not permitted" in message


def test_unknown_nested_key_in_file_is_rejected(tmp_path: Path) -> None:
    message = config_error(config=write(tmp_path, "[mqtt]\nurl = 'mqtt://x'\n"))
    assert "mqtt: Extra inputs are not permitted" in message
    assert "Extra inputs are not permitted" in message


def test_unknown_key_in_environment_is_rejected() -> None:
    assert (
        config_error(env={"YIMA_HUB_PORTT": "8081"})
        == "Unknown setting in environment: YIMA_HUB_PORTT"
    )


def test_unknown_override_is_rejected() -> None:
    assert "Extra inputs are not permitted" in config_error(overrides={"databse_url": "x"})


def test_environment_without_the_prefix_is_ignored() -> None:
    settings = load_settings(env={"PORT": "1", "YIMA_EDGE_PORT": "2", "HOME": "/root"})
    assert settings.port == 8080


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"port": 70000}, "port: Input should be less than or equal to 65535"),
        ({"copied_code_clients": 1}, "copied_code_clients: Input should be greater"),
        ({"trusted_proxies": ["10.0.0.300/8"]}, "trusted_proxies: Value error"),
        ({"ip_regions": {"10.0.0.0/8": "Zhejiang"}}, "expected a division code of 2, 4 or 6"),
        ({"time_zone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"tokens": {"t": "root"}}, "tokens.<a token>: Input should be 'admin', 'operator', "),
        ({"max_request_bytes": 10}, "max_request_bytes: Input should be greater than or equal"),
    ],
)
def test_invalid_values_are_named(overrides: dict[str, object], fragment: str) -> None:
    message = config_error(overrides=overrides)
    assert message.startswith("Invalid hub settings:")
    assert fragment in message


def test_unreadable_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    assert config_error(config=missing).startswith(f"Cannot read config {missing}: ")


def test_config_file_that_is_not_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "port = = 1\n")
    assert config_error(config=path).startswith(f"Cannot read config {path}: ")


# Code keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(base64.b64encode(b"fifteen bytes!!").decode(), id="base64-15-bytes"),
        pytest.param(bytes(15).hex(), id="hex-15-bytes"),
        # 28 hex digits (14 bytes) also decode as 21 bytes of base64: hex must win and refuse.
        pytest.param(bytes(range(14)).hex(), id="hex-14-bytes-not-base64"),
        pytest.param("a" * 33, id="odd-hex"),
        pytest.param("abcd", id="tiny"),
        pytest.param("", id="empty"),
        pytest.param("not*base64*and*not*hex*at*all!!", id="junk"),
        # Plain b64decode drops the spaces and dots and would accept this as an 18-byte key.
        pytest.param("this is my secret pass phrase...", id="pass-phrase"),
        pytest.param(KEY_B64[:-4] + "!!!!", id="base64-with-junk"),
    ],
)
def test_bad_code_key_is_rejected(secret: str) -> None:
    message = config_error(overrides={"code_keys": {0: secret}})
    assert message.startswith("Invalid hub settings:")
    assert BAD_KEY in message


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        (KEY_B64, bytes(range(32))),
        (KEY_HEX, bytes(range(16))),
        (base64.urlsafe_b64encode(bytes(16)).decode(), bytes(16)),
    ],
)
def test_good_code_keys(secret: str, expected: bytes) -> None:
    from hub.settings import decode_secret

    assert decode_secret(0, secret) == expected
    keyring = load_settings(overrides={"code_keys": {0: secret}}).keyring()
    assert keyring.active.key_id == 0


def test_bad_code_key_in_file_and_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[code_keys]\n0 = "abcd"\n')
    assert BAD_KEY in config_error(config=path)
    assert BAD_KEY in config_error(env={"YIMA_HUB_CODE_KEYS": '{"0": "abcd"}'})


def test_no_keys_names_the_command_that_makes_one() -> None:
    with pytest.raises(HubConfigError) as caught:
        load_settings().keyring()
    assert str(caught.value) == (
        "No code keys configured: set code_keys in the config file or "
        'YIMA_HUB_CODE_KEYS=\'{"0": "<base64 secret>"}\' (create one with: yima-hub keys new)'
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"code_keys": {0: KEY_B64}, "active_key_id": 1},
            "Active code key 1 is not configured: expected one of [0]",
        ),
        ({"code_keys": {9: KEY_B64}, "active_key_id": 9}, "Invalid key id: expected 0..7, got 9"),
    ],
)
def test_keyring_configuration_errors(overrides: dict[str, object], message: str) -> None:
    settings = load_settings(overrides=overrides)
    with pytest.raises(HubConfigError) as caught:
        settings.keyring()
    assert str(caught.value) == message


def test_two_keys_rotate() -> None:
    other = base64.b64encode(secrets.token_bytes(32)).decode()
    keyring = load_settings(
        overrides={"code_keys": {0: KEY_B64, 1: other}, "active_key_id": 1}
    ).keyring()
    assert keyring.active.key_id == 1
    assert keyring.key(0).key_id == 0


# Environment ----------------------------------------------------------------------------


def test_environment_json_fields() -> None:
    settings = load_settings(
        env={
            "YIMA_HUB_CODE_KEYS": json.dumps({"0": KEY_B64, "3": KEY_HEX}),
            "YIMA_HUB_TOKENS": json.dumps({"t1": "admin", "t2": "warehouse"}),
            "YIMA_HUB_PORT": "9001",
            "YIMA_HUB_MQTT_URL": "mqtt://broker:1884",
        }
    )
    assert settings.code_keys == {0: KEY_B64, 3: KEY_HEX}
    assert settings.tokens == {"t1": "admin", "t2": "warehouse"}
    assert settings.port == 9001
    assert settings.mqtt_url == "mqtt://broker:1884"


@pytest.mark.parametrize("name", ["YIMA_HUB_CODE_KEYS", "YIMA_HUB_TOKENS"])
def test_environment_json_that_does_not_parse(name: str) -> None:
    assert config_error(env={name: "{0: 'x'}"}) == (
        f"{name} must be a JSON object: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)"
    )


def test_environment_json_that_is_not_an_object() -> None:
    message = config_error(env={"YIMA_HUB_TOKENS": '["admin"]'})
    assert message.startswith("Invalid hub settings:")
    assert "tokens: Input should be a valid dictionary" in message


# Precedence -----------------------------------------------------------------------------


def test_flags_override_environment_override_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'port = 1001\nhost = "10.0.0.1"\ntopic_prefix = "file"\n'
        'database_url = "sqlite+aiosqlite:///file.db"\n',
    )
    env = {"YIMA_HUB_PORT": "2002", "YIMA_HUB_TOPIC_PREFIX": "env"}
    flags = {"port": 3003, "topic_prefix": None}  # an absent flag does not override

    assert load_settings(path).port == 1001
    from_env = load_settings(path, env)
    assert (from_env.port, from_env.topic_prefix) == (2002, "env")
    merged = load_settings(path, env, flags)
    assert merged.port == 3003
    assert merged.topic_prefix == "env"
    assert merged.host == "10.0.0.1"
    assert merged.database_url == "sqlite+aiosqlite:///file.db"


def test_zero_is_a_flag_value_not_an_absent_flag() -> None:
    assert load_settings(env={"YIMA_HUB_PORT": "8081"}, overrides={"port": 0}).port == 0


def test_defaults() -> None:
    settings = Settings()
    assert settings.mqtt_url is None
    assert settings.copied_code_clients == 3
    assert settings.time_zone == "Asia/Shanghai"
    assert settings.topics.events("s1") == "yima/v1/station/s1/events"


@pytest.mark.parametrize(
    ("overrides", "bound_port", "expected"),
    [
        ({"resolver_url": "https://y.example.cn/"}, 1234, "https://y.example.cn"),
        ({"host": "0.0.0.0", "port": 0}, 45678, "http://127.0.0.1:45678"),  # noqa: S104
        ({"host": "hub.local", "port": 8081}, None, "http://hub.local:8081"),
    ],
)
def test_public_base(overrides: dict[str, object], bound_port: int | None, expected: str) -> None:
    assert load_settings(overrides=overrides).public_base(bound_port) == expected


# No secret in any error ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "secret"),
    [
        # A misspelled role: pydantic would name the entry by its key, the token itself.
        ({"YIMA_HUB_TOKENS": '{"s3cr3t-T0KEN-value-xyz": "admn"}'}, "s3cr3t-T0KEN-value-xyz"),
        # A key one byte short: pydantic would echo most of it (26 of 30 hex digits).
        ({"YIMA_HUB_CODE_KEYS": '{"0": "9f8e7d6c5b4a39281706f5e4d3c2b1"}'}, "9f8e7d6c5b4a3928"),
        ({"YIMA_HUB_CODE_KEYS": '{"9": "9f8e7d6c5b4a39281706f5e4d3c2b1a0"}'}, "9f8e7d6c5b4a3928"),
        ({"YIMA_HUB_CODE_KEYS": '{"0": ["9f8e7d6c5b4a39281706f5e4d3c2b1a0"]}'}, "9f8e7d6c5b4a"),
    ],
)
def test_no_error_contains_a_secret(
    env: dict[str, str], secret: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(HubConfigError) as caught:
        load_settings(env=env).keyring()
    assert secret not in str(caught.value)
    import os

    from hub.cli import main

    saved = dict(os.environ)
    try:
        os.environ.update(env)
        os.environ["YIMA_HUB_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'h.sqlite3'}"
        assert main(["codes", "generate", "--product", "X", "--count", "1"]) == 2
    finally:
        os.environ.clear()
        os.environ.update(saved)
    out = capsys.readouterr()
    assert out.err.startswith("yima-hub: ")
    assert secret not in out.err + out.out


def test_the_example_config_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "docs" / "hub.example.toml"
    settings = load_settings(example)
    assert (settings.port, settings.mqtt_url, settings.code_keys) == (8080, None, {})


def test_deploy_example_settings_load() -> None:
    """deploy/hub.toml (the production example) is valid hub settings."""
    path = Path(__file__).resolve().parents[2] / "deploy" / "hub.toml"
    settings = load_settings(path)
    assert settings.share_group == "hub"
    assert settings.trusted_proxies == ["172.16.0.0/12"]

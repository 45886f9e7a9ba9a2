"""Broker URLs: one parser for the hub, the edge agent and the simulators."""

from __future__ import annotations

import pytest

from protocols.broker import BrokerAddress, BrokerUrlError
from protocols.errors import ProtocolError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://broker", BrokerAddress("broker", 1883, False)),
        ("mqtts://broker", BrokerAddress("broker", 8883, True)),
        ("mqtt://127.0.0.1:1884/", BrokerAddress("127.0.0.1", 1884, False)),
        ("mqtt://hub:p%40ss@broker:1", BrokerAddress("broker", 1, False, "hub", "p@ss")),
        ("mqtts://station-7@broker", BrokerAddress("broker", 8883, True, "station-7", None)),
    ],
)
def test_parse(url: str, expected: BrokerAddress) -> None:
    assert BrokerAddress.parse(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("tcp://broker", "expected an mqtt:// or mqtts:// URL, got 'tcp://broker'"),
        ("broker:1883", "expected an mqtt:// or mqtts:// URL, got 'broker:1883'"),
        ("mqtt://", "expected a host in 'mqtt://'"),
        (
            "mqtt://broker/x",
            "expected mqtt://host:port with nothing after it, got 'mqtt://broker/x'",
        ),
        (
            "mqtt://broker?a=1",
            "expected mqtt://host:port with nothing after it, got 'mqtt://broker?a=1'",
        ),
        ("mqtt://broker:port", "expected a port number in 'mqtt://broker:port'"),
        ("mqtt://[::1", "expected an mqtt:// or mqtts:// URL, got 'mqtt://[::1': Invalid IPv6 URL"),
        # The password never appears in an error message.
        (
            "mqtt://u:secret@broker/x",
            "expected mqtt://host:port with nothing after it, got 'mqtt://u:***@broker/x'",
        ),
    ],
)
def test_errors(url: str, message: str) -> None:
    with pytest.raises(BrokerUrlError) as info:
        BrokerAddress.parse(url)
    assert str(info.value) == message
    assert isinstance(info.value, ProtocolError)
    assert isinstance(info.value, ValueError)  # so settings validators report it by field


def test_url_drops_credentials() -> None:
    assert BrokerAddress.parse("mqtts://u:secret@broker:8884").url == "mqtts://broker:8884"

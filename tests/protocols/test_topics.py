"""MQTT topics: builders, prefixes, the shared subscription and strict parsing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import TopicError
from protocols.topics import Channel, Topics, check_station_id

STATION_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True)
SEGMENT = st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True)
PREFIXES = st.one_of(st.just(""), st.lists(SEGMENT, min_size=1, max_size=4).map("/".join))


def station_message(station_id: object) -> str:
    return (
        f"Invalid station id {station_id!r}: expected 1-64 characters of letters, digits, "
        "'_', '.', '-', starting with a letter or digit"
    )


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", "yima/v1/station/line-1/{}"),
        ("plant7", "plant7/yima/v1/station/line-1/{}"),
        ("test/run.42_a-b", "test/run.42_a-b/yima/v1/station/line-1/{}"),
    ],
)
def test_builders(prefix: str, expected: str) -> None:
    topics = Topics(prefix)
    assert topics.events("line-1") == expected.format("events")
    assert topics.ack("line-1") == expected.format("ack")
    assert topics.status("line-1") == expected.format("status")
    assert topics.command("line-1") == expected.format("command")
    for channel in Channel:
        assert topics.station("line-1", channel) == expected.format(channel.value)


def test_channels_are_the_documented_four() -> None:
    assert [c.value for c in Channel] == ["events", "ack", "status", "command"]


def test_subscription_filters() -> None:
    assert Topics().all_stations(Channel.STATUS) == "yima/v1/station/+/status"
    assert Topics("t1").all_stations(Channel.EVENTS) == "t1/yima/v1/station/+/events"
    assert Topics().shared_events("hubs") == "$share/hubs/yima/v1/station/+/events"
    assert Topics("a/b").shared_events("hub_2-x") == "$share/hub_2-x/a/b/yima/v1/station/+/events"


@settings(max_examples=200, deadline=None)
@given(PREFIXES, STATION_IDS, st.sampled_from(Channel))
def test_parse_round_trips(prefix: str, station_id: str, channel: Channel) -> None:
    topics = Topics(prefix)
    topic = topics.station(station_id, channel)
    assert topic.endswith(f"yima/v1/station/{station_id}/{channel.value}")
    assert topics.parse(topic) == (station_id, channel)
    assert check_station_id(station_id) == station_id


@pytest.mark.parametrize(
    "station_id",
    [
        "",
        "-line",
        "_line",
        ".line",
        "line/1",
        "line+",
        "line#",
        "line 1",
        "a" * 65,
        "line1\n",
        "\nline1",
        "line\t1",
        "流水线1",
        "+",
        "#",
    ],
)
def test_bad_station_ids(station_id: str) -> None:
    with pytest.raises(TopicError) as info:
        check_station_id(station_id)
    assert str(info.value) == station_message(station_id)
    with pytest.raises(TopicError) as info:
        Topics().events(station_id)
    assert str(info.value) == station_message(station_id)


def test_station_id_must_be_a_string() -> None:
    with pytest.raises(TopicError) as info:
        check_station_id(17)  # type: ignore[arg-type]
    assert str(info.value) == station_message(17)


@pytest.mark.parametrize("station_id", ["a", "A", "0", "a" * 64, "Line_1.b-2", "9-"])
def test_good_station_ids(station_id: str) -> None:
    assert check_station_id(station_id) == station_id


@pytest.mark.parametrize("prefix", ["/t", "t/", "a//b", "a b", "a+", "#", "a/+/b", "t\n", "测试"])
def test_bad_prefixes(prefix: str) -> None:
    with pytest.raises(TopicError) as info:
        Topics(prefix)
    assert str(info.value) == (
        f"Invalid topic prefix {prefix!r}: expected path segments of letters, digits, '_', '.', '-'"
    )


@pytest.mark.parametrize("group", ["", "a/b", "a+", "#", "g\n", "g.h", "g h"])
def test_bad_share_groups(group: str) -> None:
    with pytest.raises(TopicError) as info:
        Topics().shared_events(group)
    assert str(info.value) == f"Invalid share group {group!r}: expected letters, digits, '_', '-'"


@pytest.mark.parametrize(
    ("prefix", "topic", "message"),
    [
        (
            "",
            "other/v1/station/a/events",
            "Unexpected topic 'other/v1/station/a/events': "
            "expected it to start with 'yima/v1/station/'",
        ),
        (
            "",
            "yima/v2/station/a/events",
            "Unexpected topic 'yima/v2/station/a/events': "
            "expected it to start with 'yima/v1/station/'",
        ),
        (
            "",
            "t1/yima/v1/station/a/events",
            "Unexpected topic 't1/yima/v1/station/a/events': "
            "expected it to start with 'yima/v1/station/'",
        ),
        (
            "t1",
            "t2/yima/v1/station/a/events",
            "Unexpected topic 't2/yima/v1/station/a/events': "
            "expected it to start with 't1/yima/v1/station/'",
        ),
        (
            "t1",
            "yima/v1/station/a/events",
            "Unexpected topic 'yima/v1/station/a/events': "
            "expected it to start with 't1/yima/v1/station/'",
        ),
        (
            "",
            "yima/v1/station/a",
            "Unexpected topic 'yima/v1/station/a': expected yima/v1/station/<station_id>/<channel>",
        ),
        (
            "",
            "yima/v1/station/a/events/extra",
            "Unexpected topic 'yima/v1/station/a/events/extra': "
            "expected yima/v1/station/<station_id>/<channel>",
        ),
        (
            "",
            "$share/hubs/yima/v1/station/a/events",
            "Unexpected topic '$share/hubs/yima/v1/station/a/events': "
            "expected it to start with 'yima/v1/station/'",
        ),
    ],
)
def test_foreign_topics(prefix: str, topic: str, message: str) -> None:
    with pytest.raises(TopicError) as info:
        Topics(prefix).parse(topic)
    assert str(info.value) == message


@pytest.mark.parametrize("channel", ["telemetry", "Events", "", "event"])
def test_unknown_channels(channel: str) -> None:
    topic = f"yima/v1/station/line-1/{channel}"
    with pytest.raises(TopicError) as info:
        Topics().parse(topic)
    assert str(info.value) == (
        f"Unknown channel {channel!r} in {topic!r}: expected one of events, ack, status, command"
    )


@pytest.mark.parametrize("station_id", ["+", "", "-x", "x\n"])
def test_parse_rejects_bad_station_ids(station_id: str) -> None:
    with pytest.raises(TopicError) as info:
        Topics().parse(f"yima/v1/station/{station_id}/events")
    assert str(info.value) == station_message(station_id)

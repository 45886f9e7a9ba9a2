"""MQTT topics. The only place topic strings are built or taken apart.

Shape: ``[<prefix>/]yima/v1/station/<station_id>/<channel>``. The optional prefix isolates
tenants or test runs that share one broker.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from protocols.errors import TopicError

ROOT = "yima/v1"
# Matched with fullmatch: "$" would also accept a trailing newline.
_STATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_PREFIX = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
_SHARE_GROUP = re.compile(r"[A-Za-z0-9_-]+")


class Channel(enum.StrEnum):
    EVENTS = "events"  # station -> hub, QoS 1
    ACK = "ack"  # hub -> station: event ids durably committed
    STATUS = "status"  # station -> all, retained; the last will says offline
    COMMAND = "command"  # hub -> station: work order, start, stop


def check_station_id(station_id: str) -> str:
    """Return the id if it is a valid station id, else raise TopicError."""
    if not isinstance(station_id, str) or not _STATION_ID.fullmatch(station_id):
        raise TopicError(
            f"Invalid station id {station_id!r}: expected 1-64 characters of letters, digits, "
            "'_', '.', '-', starting with a letter or digit"
        )
    return station_id


@dataclass(frozen=True)
class Topics:
    prefix: str = ""

    def __post_init__(self) -> None:
        if self.prefix and not _PREFIX.fullmatch(self.prefix):
            raise TopicError(
                f"Invalid topic prefix {self.prefix!r}: expected path segments of letters, "
                "digits, '_', '.', '-'"
            )

    @property
    def _base(self) -> str:
        return f"{self.prefix}/{ROOT}" if self.prefix else ROOT

    def station(self, station_id: str, channel: Channel) -> str:
        return f"{self._base}/station/{check_station_id(station_id)}/{channel.value}"

    def events(self, station_id: str) -> str:
        return self.station(station_id, Channel.EVENTS)

    def ack(self, station_id: str) -> str:
        return self.station(station_id, Channel.ACK)

    def status(self, station_id: str) -> str:
        return self.station(station_id, Channel.STATUS)

    def command(self, station_id: str) -> str:
        return self.station(station_id, Channel.COMMAND)

    def all_stations(self, channel: Channel) -> str:
        """Subscription filter for one channel of every station."""
        return f"{self._base}/station/+/{channel.value}"

    def acl_pattern(self, channel: Channel) -> str:
        """A mosquitto ACL ``pattern`` topic for one channel of the station whose broker user
        name is its station id (``%u``)."""
        return f"{self._base}/station/%u/{channel.value}"

    def shared_events(self, group: str) -> str:
        """Shared subscription: hub processes in one group split the events between them."""
        if not _SHARE_GROUP.fullmatch(group):
            raise TopicError(f"Invalid share group {group!r}: expected letters, digits, '_', '-'")
        return f"$share/{group}/{self.all_stations(Channel.EVENTS)}"

    def parse(self, topic: str) -> tuple[str, Channel]:
        """Split a station topic into (station_id, channel)."""
        head = f"{self._base}/station/"
        if not topic.startswith(head):
            raise TopicError(f"Unexpected topic {topic!r}: expected it to start with {head!r}")
        rest = topic[len(head) :].split("/")
        if len(rest) != 2:
            raise TopicError(f"Unexpected topic {topic!r}: expected {head}<station_id>/<channel>")
        station_id, channel = rest
        try:
            return check_station_id(station_id), Channel(channel)
        except ValueError:
            names = ", ".join(c.value for c in Channel)
            raise TopicError(
                f"Unknown channel {channel!r} in {topic!r}: expected one of {names}"
            ) from None

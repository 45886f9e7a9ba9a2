"""Fixtures of the edge agent tests: a station id and fake hubs on the real broker."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from edge_helpers import FakeHub


@pytest.fixture
def station_id() -> str:
    return f"cam-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_hub(
    broker_url: str, topic_prefix: str, station_id: str
) -> Iterator[Callable[..., FakeHub]]:
    hubs: list[FakeHub] = []

    def make(*, auto_ack: bool = False, url: str | None = None) -> FakeHub:
        hub = FakeHub(url or broker_url, topic_prefix, station_id, auto_ack=auto_ack).start()
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.stop()

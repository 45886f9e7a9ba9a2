"""The small interfaces at the hardware and network edge: real adapters and simulators both
implement them, so the agent's logic never knows which one it talks to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]


# eq=False: numpy arrays have no single truth value, so field-wise equality would raise.
@dataclass(frozen=True, eq=False)
class Frame:
    """One captured picture: grayscale (H, W) or BGR (H, W, 3) uint8."""

    image: Image
    at: datetime  # capture time, timezone-aware UTC
    index: int  # position in the source's stream, counting frames that were dropped
    position: float | None = None  # belt position (encoder, camera pixels) if the source knows


class FrameSource(Protocol):
    def read(self) -> Frame | None:
        """The next frame; blocks until one is available, None once the source is exhausted
        or closed."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class CountsDrops(Protocol):
    """A source that can fall behind reports how many frames it threw away."""

    @property
    def dropped(self) -> int: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC wall-clock time."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class UplinkCounters:
    published: int = 0  # events handed to the broker (a resend counts again)
    acked: int = 0  # events the hub confirmed as applied
    rejected: int = 0  # events the hub durably recorded but refused
    bad_messages: int = 0  # ack/command payloads that could not be parsed or were not ours
    connected: bool = False


class Uplink(Protocol):
    """Carries the outbox to the hub and commands back; MqttUplink is the real one."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def notify(self) -> None:
        """New events are in the outbox: send them soon."""
        ...

    def counters(self) -> UplinkCounters: ...

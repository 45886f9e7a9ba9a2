"""Which FrameSource a station's ``source`` setting names.

* a device index (``0``) or a stream URL (``rtsp://…``, ``http://…``): a live camera, watched
  and reopened when it goes silent;
* a folder: its images in name order; any other path: a video file;
* a bare name (``sim``): a source registered by another package. The simulators fill this
  registry through the ``yima.frame_sources`` entry point group, so ``edge_agent`` never
  imports ``simulators`` and an ``[edge]``-only install runs real cameras without them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from edge_agent.alarms import Alarms
from edge_agent.errors import ConfigError
from edge_agent.interfaces import FrameSource
from edge_agent.settings import EdgeSettings

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "yima.frame_sources"
SourceFactory = Callable[[EdgeSettings], FrameSource]
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_registered: dict[str, SourceFactory] = {}


def register_source(name: str, factory: SourceFactory) -> None:
    """Make ``source = "<name>"`` open ``factory(settings)`` (for plug-ins and tests)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"source name expected [a-z][a-z0-9_-]*, got {name!r}")
    _registered[name] = factory


def registered_names() -> list[str]:
    names = set(_registered)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def _named(name: str) -> SourceFactory | None:
    found = _registered.get(name)
    if found is not None:
        return found
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                factory: SourceFactory = ep.load()
            except ImportError as exc:
                raise ConfigError(
                    f"Camera source {name!r} comes from {ep.value} which cannot be imported: "
                    f"{exc} (for the simulators: pip install 'yima[sim]')"
                ) from None
            return factory
    return None


def open_source(settings: EdgeSettings, alarms: Alarms | None = None) -> FrameSource:
    """The camera the settings name; ConfigError if it names nothing known, CameraError if
    it cannot be opened."""
    source = settings.source
    camera = settings.camera
    if source == "none":
        from edge_agent.camera import NoCamera

        return NoCamera()
    if isinstance(source, str) and _NAME.fullmatch(source) and not Path(source).exists():
        factory = _named(source)
        if factory is None:
            known = ", ".join(registered_names()) or "none installed"
            raise ConfigError(
                f"Unknown camera source {source!r}: expected a device index, a video file, "
                f"an image folder, a stream URL or a registered source ({known})"
            )
        return factory(settings)
    if isinstance(source, str) and Path(source).is_dir():
        from edge_agent.camera import ImageFolderSource

        return ImageFolderSource(
            source, fps=camera.folder_fps, loop=camera.loop, queue_size=settings.frame_queue
        )
    from edge_agent.camera import CameraOptions, OpenCVSource

    return OpenCVSource(
        source,
        queue_size=settings.frame_queue,
        options=CameraOptions(
            width=camera.width, height=camera.height, fps=camera.fps, exposure=camera.exposure
        ),
        watchdog_timeout=camera.watchdog_timeout,
        reopen_delay=camera.reopen_delay,
        alarms=alarms,
    )

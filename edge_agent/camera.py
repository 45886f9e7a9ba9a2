"""Real camera adapters: cv2.VideoCapture (device index, video file, RTSP/HTTP stream) and a
folder of images.

Capture runs in its own thread and hands frames over through a small bounded queue. When the
consumer (decode) is slower than the camera, the oldest waiting frame is dropped and counted,
so the agent always works on a recent picture instead of lagging further and further behind
the conveyor.

A live source (a device or a stream) is watched: when it delivers no frame for
``watchdog_timeout`` seconds, or a read fails, the ``camera_silent`` alarm is raised and the
source is opened again (a stuck read is abandoned in its thread: cv2 offers no way to cancel
it); the alarm clears with the next good frame. A picture that is not a proper image (empty,
wrong type or shape) is counted as corrupt and skipped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edge_agent.alarms import Alarms
from edge_agent.errors import CameraError
from edge_agent.interfaces import Clock, Frame, SystemClock

logger = logging.getLogger(__name__)

_POLL = 0.05  # seconds read() waits between checks that the source is still alive
CAMERA_ALARM = "camera_silent"
_LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm"})


class Capture(Protocol):
    """What the source needs of cv2.VideoCapture (tests give a fake one)."""

    def isOpened(self) -> bool: ...

    def read(self) -> tuple[bool, Any]: ...

    def release(self) -> None: ...

    def set(self, prop: int, value: float) -> bool: ...

    def get(self, prop: int) -> float: ...


Opener = Callable[[], Capture]


@dataclass(frozen=True)
class CameraOptions:
    """Settings applied where the camera supports them; None leaves the camera's own value."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    exposure: float | None = None  # in the driver's unit (V4L2: 100 µs steps)


def is_live(source: int | str) -> bool:
    """A device index or a stream URL (as opposed to a video file, which ends)."""
    return isinstance(source, int) or source.lower().startswith(_LIVE_SCHEMES)


def _cv2_opener(source: int | str) -> Opener:
    def open_capture() -> Capture:
        import cv2

        capture: Capture = cv2.VideoCapture(source)
        return capture

    return open_capture


def _proper_image(image: object) -> np.ndarray[Any, np.dtype[np.uint8]] | None:
    if not isinstance(image, np.ndarray) or image.size == 0:
        return None
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3))):
        return None
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    return np.asarray(image, np.uint8) if image.dtype == np.uint8 else None


class _Handover:
    """The bounded queue between a capture thread and the frame loop, with the counters."""

    def __init__(self, queue_size: int, lossless: bool, clock: Clock | None) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size expected at least 1, got {queue_size}")
        self.lossless = lossless
        self._clock = clock if clock is not None else SystemClock()
        self._queue: queue.Queue[Frame] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._captured = self._dropped = self._corrupt = 0
        self._closed = threading.Event()
        self._finished = threading.Event()  # no more frames will come

    @property
    def dropped(self) -> int:
        with self._lock:
            return self._dropped

    @property
    def captured(self) -> int:
        with self._lock:
            return self._captured

    @property
    def corrupt(self) -> int:
        """Pictures the camera delivered that were no usable image (skipped)."""
        with self._lock:
            return self._corrupt

    @property
    def finished(self) -> bool:
        """True once no more frames will come (end of file or folder, or closed)."""
        return self._finished.is_set()

    def wait_finished(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    def _now(self) -> datetime:
        return self._clock.now().astimezone(UTC)

    def _offer(self, image: object, index: int, where: str) -> bool:
        """Hand a picture over; False (and counted) if it is not a usable image."""
        proper = _proper_image(image)
        if proper is None:
            with self._lock:
                self._corrupt += 1
            logger.warning(
                "Corrupt frame %s from %s skipped: got %s",
                index,
                where,
                getattr(image, "shape", type(image).__name__),
            )
            return False
        with self._lock:
            self._captured += 1
        self._hand_over(Frame(image=proper, at=self._now(), index=index))
        return True

    def _hand_over(self, frame: Frame) -> None:
        if self.lossless:
            while not self._closed.is_set():
                try:
                    self._queue.put(frame, timeout=_POLL)
                    return
                except queue.Full:
                    continue
            return
        while True:
            try:
                self._queue.put_nowait(frame)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    continue  # the consumer just took it: there is room now
                with self._lock:
                    self._dropped += 1

    def read(self) -> Frame | None:
        while not self._closed.is_set():
            try:
                return self._queue.get(timeout=_POLL)
            except queue.Empty:
                if self._finished.is_set() and self._queue.empty():
                    return None
        return None


class OpenCVSource(_Handover):
    """A FrameSource over cv2.VideoCapture: a device index, a video file or a stream URL.

    ``lossless=True`` makes the capture thread wait for the consumer instead of dropping
    frames: right for replaying a file, wrong for a live camera. ``live`` defaults to true
    for device indices and stream URLs: a live source is reopened when it fails or goes
    silent, a file ends.
    """

    def __init__(
        self,
        source: int | str,
        *,
        queue_size: int = 2,
        lossless: bool = False,
        clock: Clock | None = None,
        live: bool | None = None,
        options: CameraOptions | None = None,
        watchdog_timeout: float = 5.0,
        reopen_delay: float = 1.0,
        alarms: Alarms | None = None,
        opener: Opener | None = None,
    ) -> None:
        super().__init__(queue_size, lossless, clock)
        if watchdog_timeout <= 0:
            raise ValueError(f"watchdog_timeout expected > 0 seconds, got {watchdog_timeout}")
        self.source = source
        self.live = is_live(source) if live is None else live
        self.options = options if options is not None else CameraOptions()
        self.watchdog_timeout = watchdog_timeout
        self.reopen_delay = reopen_delay
        self.alarms = alarms if alarms is not None else Alarms()
        self._open = opener if opener is not None else _cv2_opener(source)
        self._reopens = 0
        self._index = 0
        self._generation = 0
        self._last_activity = time.monotonic()
        capture = self._open_capture()
        if capture is None:
            raise CameraError(f"Cannot open camera source {source!r}")
        self._start_capture(capture)
        self._watchdog: threading.Thread | None = None
        if self.live:
            self._watchdog = threading.Thread(
                target=self._watch, name="camera-watchdog", daemon=True
            )
            self._watchdog.start()

    @property
    def reopens(self) -> int:
        """How often the source was opened again after failing or going silent."""
        with self._lock:
            return self._reopens

    def _open_capture(self) -> Capture | None:
        try:
            capture = self._open()
        except Exception as exc:
            logger.warning("Opening camera source %r failed: %s", self.source, exc)
            return None
        if not capture.isOpened():
            capture.release()
            return None
        self._apply_options(capture)
        return capture

    def _apply_options(self, capture: Capture) -> None:
        import cv2

        wanted = (
            (cv2.CAP_PROP_FRAME_WIDTH, self.options.width, "width"),
            (cv2.CAP_PROP_FRAME_HEIGHT, self.options.height, "height"),
            (cv2.CAP_PROP_FPS, self.options.fps, "fps"),
            (cv2.CAP_PROP_EXPOSURE, self.options.exposure, "exposure"),
        )
        for prop, value, name in wanted:
            if value is None:
                continue
            accepted = capture.set(prop, float(value))
            if not accepted:
                logger.warning(
                    "Camera %r does not support setting %s (wanted %s, has %s)",
                    self.source,
                    name,
                    value,
                    capture.get(prop),
                )

    def _start_capture(self, capture: Capture | None) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._last_activity = time.monotonic()
        thread = threading.Thread(
            target=self._capture_loop, args=(generation, capture), name="capture", daemon=True
        )
        thread.start()

    def _current(self, generation: int) -> bool:
        with self._lock:
            return generation == self._generation and not self._closed.is_set()

    def _capture_loop(self, generation: int, capture: Capture | None) -> None:
        try:
            while self._current(generation):
                if capture is None:
                    if self._closed.wait(self.reopen_delay):
                        return
                    capture = self._open_capture()
                    if capture is None:
                        continue
                ok, image = capture.read()
                if not self._current(generation):
                    return  # the watchdog gave up on this capture while it was stuck
                if not ok:
                    if not self.live:
                        logger.info(
                            "Camera source %r ended after %s frames", self.source, self._index
                        )
                        self._finished.set()
                        return
                    self.alarms.raise_(CAMERA_ALARM, f"camera {self.source!r}: read failed")
                    capture.release()
                    capture = None
                    with self._lock:
                        self._reopens += 1
                    continue
                with self._lock:
                    self._last_activity = time.monotonic()
                    index = self._index
                    self._index += 1
                if self._offer(image, index, repr(self.source)):
                    self.alarms.clear(CAMERA_ALARM)
        except Exception:
            logger.exception("Capture from %r failed", self.source)
            if not self.live:
                self._finished.set()
            elif self._current(generation):
                self._restart("capture failed")
        finally:
            if capture is not None:
                capture.release()

    def _restart(self, why: str) -> None:
        self.alarms.raise_(CAMERA_ALARM, f"camera {self.source!r}: {why}; reopening")
        with self._lock:
            self._reopens += 1
        self._start_capture(None)

    def _watch(self) -> None:
        tick = min(0.5, self.watchdog_timeout / 4)
        while not self._closed.wait(tick):
            with self._lock:
                silent = time.monotonic() - self._last_activity
            if silent > self.watchdog_timeout:
                self._restart(f"no frame for {silent:.1f} s")

    def close(self) -> None:
        self._closed.set()
        self._finished.set()
        with self._lock:
            self._generation += 1
        if self._watchdog is not None:
            self._watchdog.join(timeout=5)


class ImageFolderSource(_Handover):
    """A FrameSource over the images of a folder, in name order (a test set, a recording).

    ``fps`` paces delivery (0: as fast as the consumer takes them, lossless). A file that is
    no readable image is counted as corrupt and skipped. ``loop`` starts over at the end.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        fps: float = 0.0,
        loop: bool = False,
        queue_size: int = 2,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(queue_size, lossless=fps <= 0, clock=clock)
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise CameraError(f"Cannot open image folder {str(self.folder)!r}: not a directory")
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise CameraError(
                f"Image folder {str(self.folder)!r} has no images "
                f"(expected {', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        self.fps = fps
        self.loop = loop
        self._thread = threading.Thread(target=self._capture_loop, name="folder", daemon=True)
        self._thread.start()

    def _capture_loop(self) -> None:
        import cv2

        index = 0
        start = time.monotonic()
        try:
            while not self._closed.is_set():
                for path in self.files:
                    if self._closed.is_set():
                        return
                    if self.fps > 0:
                        delay = start + index / self.fps - time.monotonic()
                        if delay > 0 and self._closed.wait(delay):
                            return
                    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
                    self._offer(image, index, str(path))
                    index += 1
                if not self.loop:
                    return
        except Exception:
            logger.exception("Reading image folder %s failed", self.folder)
        finally:
            self._finished.set()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)


class NoCamera:
    """The source of a manual station (``source = "none"``): no frames; read() waits until
    the station stops, while the hand scanner feeds items."""

    def __init__(self) -> None:
        self._closed = threading.Event()

    def read(self) -> Frame | None:
        self._closed.wait()
        return None

    def close(self) -> None:
        self._closed.set()

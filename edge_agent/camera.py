"""Real camera adapter: cv2.VideoCapture over a device index, a video file or a stream URL.

Capture runs in its own thread and hands frames over through a small bounded queue. When the
consumer (decode) is slower than the camera, the oldest waiting frame is dropped and counted,
so the agent always works on a recent picture instead of lagging further and further behind
the conveyor.
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import UTC, datetime

import cv2
import numpy as np

from edge_agent.errors import CameraError
from edge_agent.interfaces import Clock, Frame, SystemClock

logger = logging.getLogger(__name__)

_POLL = 0.05  # seconds read() waits between checks that the source is still alive


class OpenCVSource:
    """A FrameSource over cv2.VideoCapture.

    ``lossless=True`` makes the capture thread wait for the consumer instead of dropping
    frames: right for replaying a file, wrong for a live camera.
    """

    def __init__(
        self,
        source: int | str,
        *,
        queue_size: int = 2,
        lossless: bool = False,
        clock: Clock | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size expected at least 1, got {queue_size}")
        self.source = source
        self.lossless = lossless
        self._clock = clock if clock is not None else SystemClock()
        self._capture = cv2.VideoCapture(source)
        if not self._capture.isOpened():
            self._capture.release()
            raise CameraError(f"Cannot open camera source {source!r}")
        self._queue: queue.Queue[Frame] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._captured = 0
        self._dropped = 0
        self._closed = threading.Event()
        self._finished = threading.Event()  # the capture thread has ended
        self._thread = threading.Thread(target=self._capture_loop, name="capture", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        with self._lock:
            return self._dropped

    @property
    def captured(self) -> int:
        with self._lock:
            return self._captured

    @property
    def finished(self) -> bool:
        """True once the capture thread ended (end of file, camera gone, or closed)."""
        return self._finished.is_set()

    def wait_finished(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    def _capture_loop(self) -> None:
        index = 0
        try:
            while not self._closed.is_set():
                ok, image = self._capture.read()
                if not ok:
                    logger.info("Camera source %r ended after %s frames", self.source, index)
                    break
                frame = Frame(image=np.asarray(image, np.uint8), at=self._now(), index=index)
                index += 1
                with self._lock:
                    self._captured += 1
                self._hand_over(frame)
        except Exception:
            logger.exception("Capture from %r failed", self.source)
        finally:
            self._capture.release()
            self._finished.set()

    def _now(self) -> datetime:
        return self._clock.now().astimezone(UTC)

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

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.camera import OpenCVSource
from edge_agent.decode import decode_image
from edge_agent.errors import CameraError, EdgeError
from edge_agent.interfaces import CountsDrops, Frame
from simulators.camera import Placement, demo_urls, render_frame

FRAMES = 30
SIZE = (320, 240)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30-frame MJPG .avi; frame n is filled with gray level 8 * n."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, SIZE)
    assert writer.isOpened()
    for n in range(FRAMES):
        writer.write(np.full((SIZE[1], SIZE[0], 3), 8 * n, np.uint8))
    writer.release()
    return path


def read_all(source: OpenCVSource) -> list[Frame]:
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    return frames


def test_lossless_replay_delivers_every_frame_in_order(video: Path) -> None:
    source = OpenCVSource(str(video), queue_size=2, lossless=True)
    try:
        frames = read_all(source)
    finally:
        source.close()
    assert [f.index for f in frames] == list(range(FRAMES))
    assert frames[0].image.shape == (SIZE[1], SIZE[0], 3)
    assert frames[0].image.dtype == np.uint8
    levels = [round(float(f.image.mean())) for f in frames]
    assert levels == pytest.approx([8 * n for n in range(FRAMES)], abs=2)
    assert all(f.at.tzinfo is not None for f in frames)
    assert source.dropped == 0
    assert source.captured == FRAMES


def test_a_slow_consumer_gets_the_newest_frames_and_drops_are_counted(video: Path) -> None:
    source = OpenCVSource(str(video), queue_size=2)
    try:
        assert source.wait_finished(30)  # the consumer has not read anything yet
        frames = read_all(source)
    finally:
        source.close()
    assert [f.index for f in frames] == [FRAMES - 2, FRAMES - 1]
    assert source.dropped == FRAMES - 2
    assert source.captured == FRAMES
    assert isinstance(source, CountsDrops)


def test_close_unblocks_and_ends_the_source(video: Path) -> None:
    source = OpenCVSource(str(video), queue_size=1, lossless=True)
    assert source.read() is not None
    source.close()
    assert source.read() is None
    assert source.finished


def test_a_missing_file_is_a_camera_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.avi"
    with pytest.raises(CameraError) as info:
        OpenCVSource(str(missing))
    assert str(info.value) == f"Cannot open camera source '{missing}'"
    assert isinstance(info.value, EdgeError)


def test_frames_from_a_video_file_decode(tmp_path: Path) -> None:
    path = tmp_path / "codes.avi"
    texts = demo_urls(2)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (1280, 720))
    image = render_frame([Placement(texts[0], 100, 200), Placement(texts[1], 700, 300)])
    for _ in range(3):
        writer.write(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    writer.release()
    source = OpenCVSource(str(path), lossless=True)
    try:
        frames = read_all(source)
    finally:
        source.close()
    assert len(frames) == 3
    assert {r.text for r in decode_image(frames[-1].image)} == set(texts)


def test_capture_times_are_utc(video: Path) -> None:
    before = datetime.now(UTC)
    source = OpenCVSource(str(video), lossless=True)
    try:
        frame = source.read()
    finally:
        source.close()
    assert frame is not None
    assert frame.at.utcoffset() is not None and frame.at.utcoffset().total_seconds() == 0
    assert before <= frame.at <= datetime.now(UTC)


def test_bad_queue_size(video: Path) -> None:
    with pytest.raises(ValueError) as info:
        OpenCVSource(str(video), queue_size=0)
    assert str(info.value) == "queue_size expected at least 1, got 0"

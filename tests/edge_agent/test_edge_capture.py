"""Capture: live-camera watchdog, corrupt frames, image folders, the source registry."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge_agent.alarms import Alarms
from edge_agent.camera import CAMERA_ALARM, CameraOptions, ImageFolderSource, OpenCVSource
from edge_agent.errors import CameraError, ConfigError
from edge_agent.settings import EdgeSettings
from edge_agent.sources import open_source, register_source, registered_names
from simulators.camera import SyntheticConveyor, demo_urls

ROOT = Path(__file__).resolve().parents[2]
GRAY = np.full((48, 64), 128, np.uint8)


class FakeCapture:
    """A camera that delivers ``script`` items in order: an image, "fail" (read fails),
    "hang" (read blocks until released) or a non-image (a corrupt frame); then hangs."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.released = threading.Event()
        self.props: dict[int, float] = {}

    def isOpened(self) -> bool:
        return True

    def read(self) -> tuple[bool, Any]:
        item = self.script.pop(0) if self.script else "hang"
        if isinstance(item, str) and item == "hang":
            self.released.wait(30)
            return False, None
        if isinstance(item, str) and item == "fail":
            return False, None
        time.sleep(0.005)
        return True, item

    def release(self) -> None:
        self.released.set()

    def set(self, prop: int, value: float) -> bool:
        if prop == cv2.CAP_PROP_EXPOSURE:
            return False  # this camera has no exposure control
        self.props[prop] = value
        return True

    def get(self, prop: int) -> float:
        return self.props.get(prop, -1.0)


class Opener:
    def __init__(self, *scripts: list[Any]) -> None:
        self.captures = [FakeCapture(s) for s in scripts]
        self.opened = 0

    def __call__(self) -> FakeCapture:
        capture = self.captures[min(self.opened, len(self.captures) - 1)]
        self.opened += 1
        return capture


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_a_silent_camera_raises_the_alarm_is_reopened_and_the_alarm_clears() -> None:
    alarms = Alarms()
    opener = Opener([GRAY, GRAY, "hang"], [GRAY] * 3)
    source = OpenCVSource(0, opener=opener, watchdog_timeout=0.3, reopen_delay=0.01, alarms=alarms)
    try:
        first = [source.read(), source.read()]
        assert all(f is not None for f in first)
        assert wait_for(lambda: alarms.raised().get(CAMERA_ALARM) == 1)
        later = [source.read() for _ in range(3)]
        assert all(f is not None for f in later)
        assert wait_for(lambda: not alarms.is_active(CAMERA_ALARM))
    finally:
        source.close()
    assert opener.opened == 2
    assert source.reopens >= 1
    # Frame numbers go on counting across the reopen.
    assert [f.index for f in first + later if f is not None] == [0, 1, 2, 3, 4]


def test_a_failing_read_on_a_live_camera_reopens_it() -> None:
    alarms = Alarms()
    opener = Opener([GRAY, "fail"], [GRAY, GRAY])
    source = OpenCVSource(
        "rtsp://camera.invalid/stream", opener=opener, reopen_delay=0.01, alarms=alarms
    )
    try:
        frames = [source.read() for _ in range(3)]
    finally:
        source.close()
    assert all(f is not None for f in frames)
    assert opener.opened == 2
    assert source.reopens == 1
    assert alarms.raised() == {CAMERA_ALARM: 1}
    assert not alarms.is_active(CAMERA_ALARM)


def test_corrupt_frames_are_counted_and_skipped() -> None:
    bad = [
        np.zeros((0, 10), np.uint8),
        np.zeros((4, 4), np.float32),
        None,
        np.zeros((4, 4, 2), np.uint8),
    ]
    source = OpenCVSource("clip.avi", opener=Opener([GRAY, *bad, GRAY, "fail"]), live=False)
    try:
        frames = []
        while (frame := source.read()) is not None:
            frames.append(frame)
    finally:
        source.close()
    assert [f.index for f in frames] == [0, 5]
    assert source.corrupt == 4
    assert source.captured == 2


def test_camera_options_are_applied_where_supported(caplog: pytest.LogCaptureFixture) -> None:
    opener = Opener([GRAY, "fail"])
    options = CameraOptions(width=1280, height=720, fps=60, exposure=-6)
    source = OpenCVSource("clip.avi", opener=opener, live=False, options=options)
    source.close()
    props = opener.captures[0].props
    assert props[cv2.CAP_PROP_FRAME_WIDTH] == 1280
    assert props[cv2.CAP_PROP_FRAME_HEIGHT] == 720
    assert props[cv2.CAP_PROP_FPS] == 60
    assert "does not support setting exposure (wanted -6" in caplog.text


def test_a_camera_that_cannot_be_opened_is_a_camera_error() -> None:
    class Closed(FakeCapture):
        def isOpened(self) -> bool:
            return False

    with pytest.raises(CameraError, match=r"^Cannot open camera source 3$"):
        OpenCVSource(3, opener=lambda: Closed([]))


def test_watchdog_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="watchdog_timeout expected > 0 seconds, got 0"):
        OpenCVSource(0, opener=Opener([GRAY]), watchdog_timeout=0)


def write_folder(folder: Path) -> None:
    folder.mkdir()
    for n in range(3):
        cv2.imwrite(str(folder / f"frame-{n}.png"), np.full((20, 30), 50 * (n + 1), np.uint8))
    (folder / "frame-1b.png").write_bytes(b"not a png at all")
    (folder / "notes.txt").write_text("ignored")


def test_image_folder_delivers_images_in_name_order_and_skips_corrupt_files(
    tmp_path: Path,
) -> None:
    write_folder(tmp_path / "shots")
    source = ImageFolderSource(tmp_path / "shots")
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    source.close()
    assert [round(float(f.image.mean())) for f in frames] == [50, 100, 150]
    assert source.corrupt == 1
    assert source.dropped == 0


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="not a directory"):
        ImageFolderSource(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CameraError, match="has no images"):
        ImageFolderSource(tmp_path / "empty")


def settings(tmp_path: Path, **overrides: Any) -> EdgeSettings:
    values: dict[str, Any] = {"station_id": "cam-1", "outbox_path": tmp_path / "o.db"}
    values.update(overrides)
    return EdgeSettings.model_validate(values)


def test_the_sim_source_comes_from_the_simulators_entry_point(tmp_path: Path) -> None:
    urls = demo_urls(2)
    csv = tmp_path / "codes.csv"
    csv.write_text("seq,url\n" + "".join(f"{i},{u}\n" for i, u in enumerate(urls)))
    assert "sim" in registered_names()
    source = open_source(
        settings(tmp_path, source="sim", sim={"codes_csv": csv, "realtime": False})
    )
    assert isinstance(source, SyntheticConveyor)
    assert source.codes == tuple(urls)


def test_a_folder_setting_opens_an_image_folder(tmp_path: Path) -> None:
    write_folder(tmp_path / "shots")
    source = open_source(settings(tmp_path, source=str(tmp_path / "shots")))
    try:
        assert isinstance(source, ImageFolderSource)
    finally:
        source.close()


def test_an_unknown_source_name_says_what_is_known(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        open_source(settings(tmp_path, source="webcam"))
    assert str(info.value).startswith("Unknown camera source 'webcam': expected a device index")
    assert "sim" in str(info.value)


def test_registered_sources_are_found(tmp_path: Path) -> None:
    opened: list[str] = []

    def factory(s: EdgeSettings) -> Any:
        opened.append(s.station_id)
        return "a source"

    register_source("testcam", factory)
    assert open_source(settings(tmp_path, source="testcam")) == "a source"
    assert opened == ["cam-1"]
    with pytest.raises(ValueError, match="source name expected"):
        register_source("Bad Name", factory)


def test_edge_agent_never_imports_the_simulators() -> None:
    code = (
        "import importlib, json, sys\n"
        "for m in ['edge_agent.cli', 'edge_agent.agent', 'edge_agent.sources', "
        "'edge_agent.camera', 'edge_agent.decode']: importlib.import_module(m)\n"
        "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert {"simulators", "segno"} & set(json.loads(out.stdout)) == set()

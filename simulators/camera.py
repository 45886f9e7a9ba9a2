"""A synthetic camera over a conveyor: labelled cartons move across a 1280x720 frame.

Each carton carries a QR code of a given text (the printed URL). Cartons move a fixed number of
pixels per frame, so every label is fully visible in several consecutive frames, as on a real
line. The picture gets a slight Gaussian blur (optics) and Gaussian noise (sensor), both
deterministic for a given seed, so tests and benchmarks see the same frames on every run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import segno

from edge_agent.interfaces import Frame, Image
from edge_agent.settings import EdgeSettings
from protocols.codes import CodeKey, CodeKind, code_url

WIDTH = 1280
HEIGHT = 720
# ISO/IEC 18004 asks for a 4-module quiet zone; decoders miss codes that touch the carton edge.
QUIET_ZONE_MODULES = 4
# 4 px per module keeps a ~60-character URL (QR version 5, 45 modules with the quiet zone)
# at 180 px, and both pyzbar and zxing-cpp read every label after blur and noise
# (tests/simulators/test_sim_camera.py checks this).
MODULE_PX = 4
CARTON_MARGIN = 20  # carton surface around the label
BELT_GRAY = 70
CARTON_GRAY = 200
NOISE_SIGMA = 4.0
BLUR_SIGMA = 0.8
_NOISE_BANK = 4  # distinct noise fields cycled through, so a frame costs no random draws


DEMO_RESOLVER = "https://id.yima.example"
DEMO_GTIN = "09506000134352"
# A fixed, public key: demo and test labels look like real ones but prove nothing.
_DEMO_KEY = CodeKey(0, b"yima-simulator-demo-key-not-secret")


def demo_urls(count: int, start: int = 0, *, gtin: str | None = DEMO_GTIN) -> list[str]:
    """Printed URLs of ``count`` item codes (GS1 Digital Link, ~65 characters), for demos."""
    serials = _DEMO_KEY.seal_range(CodeKind.ITEM, start, count)
    return [code_url(DEMO_RESOLVER, serial, gtin) for serial in serials]


def render_qr(text: str, module_px: int = MODULE_PX) -> Image:
    """The QR code of ``text`` as a black-on-white uint8 image, quiet zone included."""
    if module_px < 1:
        raise ValueError(f"module_px expected at least 1, got {module_px}")
    qr = segno.make(text, error="m", micro=False)
    modules = np.array(qr.matrix, dtype=np.uint8)
    modules = np.pad(modules, QUIET_ZONE_MODULES, constant_values=0)
    pixels = np.where(modules == 1, 0, 255).astype(np.uint8)
    return np.repeat(np.repeat(pixels, module_px, axis=0), module_px, axis=1)


@dataclass(frozen=True)
class Placement:
    """A label to draw: its text and the top-left corner of its quiet zone, in pixels."""

    text: str
    x: int
    y: int
    image: Image | None = None  # a pre-rendered label (defects, no code) instead of text's QR


class _Renderer:
    """Draws frames: belt background, cartons with labels, blur and noise."""

    def __init__(
        self,
        *,
        width: int,
        height: int,
        module_px: int,
        noise_sigma: float,
        blur_sigma: float,
        seed: int,
        noise_bank: int = _NOISE_BANK,
    ) -> None:
        if width < 1 or height < 1:
            raise ValueError(f"frame size expected positive, got {width}x{height}")
        self.width = width
        self.height = height
        self.module_px = module_px
        self.blur_sigma = blur_sigma
        self._labels: dict[str, Image] = {}
        self._background = np.full((height, width), BELT_GRAY, dtype=np.uint8)
        # Belt seams every 64 px give the decoders some edges that are not barcodes.
        self._background[:, ::64] = BELT_GRAY - 25
        rng = np.random.default_rng(seed)
        self._noise: list[np.ndarray] = (
            [
                np.rint(rng.normal(0.0, noise_sigma, (height, width))).astype(np.int16)
                for _ in range(noise_bank)
            ]
            if noise_sigma > 0
            else []
        )

    def label(self, text: str) -> Image:
        found = self._labels.get(text)
        if found is None:
            found = self._labels[text] = render_qr(text, self.module_px)
        return found

    def draw(self, placements: Sequence[Placement], frame_no: int, gain: float = 1.0) -> Image:
        canvas: Image = self._background.copy()
        for p in placements:
            label = p.image if p.image is not None else self.label(p.text)
            h, w = label.shape
            m = CARTON_MARGIN
            _paste(canvas, np.full((h + 2 * m, w + 2 * m), CARTON_GRAY, np.uint8), p.x - m, p.y - m)
            _paste(canvas, label, p.x, p.y)
        if self.blur_sigma > 0:
            canvas = np.asarray(cv2.GaussianBlur(canvas, (0, 0), self.blur_sigma), np.uint8)
        if gain != 1.0:  # lighting: the whole picture brighter or darker
            canvas = np.clip(canvas.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        if self._noise:
            noisy = canvas.astype(np.int16) + self._noise[frame_no % len(self._noise)]
            canvas = np.clip(noisy, 0, 255).astype(np.uint8)
        return canvas


def _paste(canvas: Image, patch: Image, x: int, y: int) -> None:
    """Copy ``patch`` onto ``canvas`` at (x, y), clipped to the canvas."""
    h, w = patch.shape
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, canvas.shape[1]), min(y + h, canvas.shape[0])
    if x0 < x1 and y0 < y1:
        canvas[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]


def render_frame(
    placements: Sequence[Placement],
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
    module_px: int = MODULE_PX,
    noise_sigma: float = NOISE_SIGMA,
    blur_sigma: float = BLUR_SIGMA,
    seed: int = 0,
) -> Image:
    """One grayscale frame with the given labels (each on its carton), blurred and noisy."""
    renderer = _Renderer(
        width=width,
        height=height,
        module_px=module_px,
        noise_sigma=noise_sigma,
        blur_sigma=blur_sigma,
        seed=seed,
        noise_bank=1,
    )
    return renderer.draw(placements, 0)


def label_size(text: str, module_px: int = MODULE_PX) -> int:
    """Side in pixels of the square label of ``text``, quiet zone included."""
    return int(render_qr(text, module_px).shape[0])


class SyntheticConveyor:
    """A FrameSource: cartons with the given code texts pass left to right, one per ``pitch``.

    A text listed twice is two cartons with the same label, i.e. a duplicated (copied) code.
    Timestamps advance by exactly 1/fps from ``start``; ``read`` sleeps to keep that pace only
    when ``realtime`` is true. ``read`` returns None once the last carton has left the frame.
    """

    def __init__(
        self,
        codes: Sequence[str],
        *,
        fps: float = 20.0,
        step: int = 40,
        pitch: int = 320,
        width: int = WIDTH,
        height: int = HEIGHT,
        module_px: int = MODULE_PX,
        noise_sigma: float = NOISE_SIGMA,
        blur_sigma: float = BLUR_SIGMA,
        seed: int = 0,
        start: datetime | None = None,
        realtime: bool = False,
        labels: Sequence[Image | None] | None = None,
        gain: Callable[[int], float] | None = None,
        on_frame: Callable[[int, float], None] | None = None,
    ) -> None:
        """``labels[i]``, if given, is carton i's label picture (None: the QR of codes[i]);
        ``gain(frame)`` is the lighting of a frame; ``on_frame(index, position)`` runs before
        each frame is drawn (the line simulator fires its photo-eye there). A frame's
        ``position`` is the belt travel in pixels, ``step * index``."""
        if fps <= 0:
            raise ValueError(f"fps expected a positive number, got {fps}")
        if step < 1:
            raise ValueError(f"step expected at least 1 pixel per frame, got {step}")
        self.codes = tuple(codes)
        self.fps = fps
        self.step = step
        self.pitch = pitch
        self.realtime = realtime
        self._renderer = _Renderer(
            width=width,
            height=height,
            module_px=module_px,
            noise_sigma=noise_sigma,
            blur_sigma=blur_sigma,
            seed=seed,
        )
        if labels is not None and len(labels) != len(self.codes):
            raise ValueError(f"labels expected {len(self.codes)} entries, got {len(labels)}")
        self._labels = list(labels) if labels is not None else [None] * len(self.codes)
        self._gain = gain
        self._on_frame = on_frame
        for text, image in zip(self.codes, self._labels, strict=True):  # pre-render once
            if image is None:
                self._renderer.label(text)
        self.label_px = max(
            (
                max((image if image is not None else self._renderer.label(t)).shape)
                for t, image in zip(self.codes, self._labels, strict=True)
            ),
            default=0,
        )
        carton = self.label_px + 2 * CARTON_MARGIN
        if self.codes and pitch < carton + 8:
            raise ValueError(
                f"pitch expected at least {carton + 8} px so cartons do not overlap, got {pitch}"
            )
        if self.label_px > height:
            raise ValueError(f"labels of {self.label_px} px do not fit a frame {height} px high")
        rng = np.random.default_rng(seed)
        slack = max(0, (height - carton) // 2 - 10)
        jitter = rng.integers(-min(slack, 80), min(slack, 80) + 1, size=len(self.codes))
        self._rows = [int((height - self.label_px) // 2 + j) for j in jitter]
        # Item 0's carton starts just off the left edge; the run ends when the last one is out.
        self._x_start = -(self.label_px + CARTON_MARGIN)
        travel = width + CARTON_MARGIN - self._x_start + (len(self.codes) - 1) * pitch
        self.total_frames = math.ceil(travel / step) if self.codes else 0
        self.start = start if start is not None else datetime.now(UTC)
        self._index = 0
        self._closed = False
        self._t0: float | None = None

    def placements(self, index: int) -> list[Placement]:
        """Labels (at least partly) in frame ``index``, left to right."""
        width = self._renderer.width
        out = []
        for i in reversed(range(len(self.codes))):
            x = self._x_start + self.step * index - i * self.pitch
            if -self.label_px - CARTON_MARGIN < x < width + CARTON_MARGIN:
                out.append(Placement(self.codes[i], x, self._rows[i], self._labels[i]))
        return out

    def center_position(self, i: int, center_x: float) -> float:
        """Belt position at which carton ``i``'s label centre is at ``center_x``."""
        return center_x - self._x_start - self.label_px / 2 + i * self.pitch

    def fully_visible(self, index: int) -> list[str]:
        """Texts whose whole label (quiet zone included) is inside frame ``index``."""
        width = self._renderer.width
        return [p.text for p in self.placements(index) if 0 <= p.x <= width - self.label_px]

    def read(self) -> Frame | None:
        if self._closed or self._index >= self.total_frames:
            return None
        index = self._index
        self._index += 1
        if self.realtime:
            if self._t0 is None:
                self._t0 = time.monotonic()
            delay = self._t0 + index / self.fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        position = float(self.step * index)
        if self._on_frame is not None:
            self._on_frame(index, position)
        gain = 1.0 if self._gain is None else self._gain(index)
        image = self._renderer.draw(self.placements(index), index, gain)
        return Frame(
            image=image,
            at=self.start + timedelta(seconds=index / self.fps),
            index=index,
            position=position,
        )

    def close(self) -> None:
        self._closed = True


def open_conveyor(settings: EdgeSettings) -> SyntheticConveyor:
    """The ``sim`` camera source (entry point ``yima.frame_sources``): the synthetic conveyor
    over the codes of the config's ``[sim]`` table."""
    from edge_agent.cli import read_codes
    from edge_agent.errors import ConfigError

    sim = settings.sim
    if sim is None:
        raise ConfigError('source = "sim" needs a [sim] table with codes_csv')
    codes = read_codes(sim.codes_csv, sim.column)
    if not codes:
        raise ConfigError(f"Codes file {str(sim.codes_csv)!r} has no {sim.column!r} values")
    return SyntheticConveyor(
        codes, fps=sim.fps, step=sim.step, pitch=sim.pitch, seed=sim.seed, realtime=sim.realtime
    )

"""Printed labels and the ways a camera sees them badly: a rendered, varied decode test set.

Symbols: QR (segno), DataMatrix / GS1 DataMatrix, Code 128 / GS1-128 and EAN-13 (zxing-cpp's
writer). Defects: perspective, curvature (a label on a bottle), glare, low contrast, blur
(focus and motion), sensor noise, damage (scratches, torn corners), partial cover, inverted
print, and several codes in one picture. Every picture is a pure function of its seed, so the
set is the same on every machine; nothing here was tuned on any library's sample images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import segno

from edge_agent.interfaces import Image
from protocols.codes import CodeKind, code_url

SYMBOLOGIES = ("QRCODE", "DATAMATRIX", "CODE128", "EAN13")
DEFECTS = (
    "perspective",
    "curvature",
    "glare",
    "low_contrast",
    "blur",
    "motion_blur",
    "noise",
    "damage",
    "covered",
    "inverted",
    "small",
)
_QUIET = {"QRCODE": 4, "DATAMATRIX": 2, "CODE128": 10, "EAN13": 11}


def render_symbol(symbology: str, text: str, module_px: int = 4) -> Image:
    """Black-on-white uint8 picture of ``text`` as ``symbology``, with its quiet zone.

    GS1 content (DataMatrix, Code 128) is given in HRI form, ``(01)…(21)…``."""
    if module_px < 1:
        raise ValueError(f"module_px expected at least 1, got {module_px}")
    if symbology == "QRCODE":
        qr = segno.make(text, error="m", micro=False)
        modules = np.pad(np.array(qr.matrix, dtype=np.uint8), _QUIET["QRCODE"])
        pixels = np.where(modules == 1, 0, 255).astype(np.uint8)
        return np.repeat(np.repeat(pixels, module_px, axis=0), module_px, axis=1)
    import zxingcpp

    formats = {
        "DATAMATRIX": zxingcpp.BarcodeFormat.DataMatrix,
        "CODE128": zxingcpp.BarcodeFormat.Code128,
        "EAN13": zxingcpp.BarcodeFormat.EAN13,
    }
    if symbology not in formats:
        raise ValueError(f"symbology expected one of {', '.join(SYMBOLOGIES)}, got {symbology!r}")
    gs1 = text.startswith("(")
    options: dict[str, Any] = {"gs1": True} if gs1 else {}
    symbol = zxingcpp.create_barcode(text, formats[symbology], **options)
    bare = np.asarray(symbol.to_image(scale=1, add_quiet_zones=False), dtype=np.uint8)
    quiet = _QUIET[symbology]
    bare = np.pad(bare, quiet, constant_values=255)
    if symbology in ("CODE128", "EAN13"):
        bars = np.repeat(bare[quiet : quiet + 1], max(20, bare.shape[1] // 4), axis=0)
        bare = np.pad(bars, ((quiet, quiet), (0, 0)), constant_values=255)
    return np.repeat(np.repeat(bare, module_px, axis=0), module_px, axis=1)


def ean13(digits12: str) -> str:
    """The 13 digits of an EAN-13 whose first 12 are ``digits12``."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits12))
    return digits12 + str((10 - total % 10) % 10)


def sample_text(symbology: str, rng: np.random.Generator, n: int) -> str:
    """A realistic payload: Yima URLs in QR, GS1 element strings or URLs in DataMatrix, GS1-128
    or a bare serial in Code 128, a product number in EAN-13."""
    from simulators.camera import _DEMO_KEY, DEMO_GTIN, DEMO_RESOLVER

    serial = _DEMO_KEY.seal_range(CodeKind.ITEM, 10_000 + n, 1)[0]
    pick = int(rng.integers(2))
    if symbology == "QRCODE":
        return code_url(DEMO_RESOLVER, serial, DEMO_GTIN if pick else None)
    if symbology == "DATAMATRIX":
        return f"(01){DEMO_GTIN}(21){serial}" if pick else code_url(DEMO_RESOLVER, serial)
    if symbology == "CODE128":
        return f"(01){DEMO_GTIN}(21){serial[:12]}" if pick else serial
    if symbology == "EAN13":
        return ean13("69" + "".join(str(d) for d in rng.integers(0, 10, 10)))
    raise ValueError(f"symbology expected one of {', '.join(SYMBOLOGIES)}, got {symbology!r}")


def _canvas(rng: np.random.Generator, width: int, height: int) -> Image:
    """A carton / shelf background: a gray level, a gradient, some printed clutter."""
    base = int(rng.integers(90, 200))
    x = np.mgrid[0:height, 0:width][1]
    gradient = (x / width - 0.5) * float(rng.uniform(-60, 60))
    canvas = np.clip(base + gradient, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 6))):  # text-like clutter
        x0, y0 = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 20))
        cv2.putText(
            canvas,
            "".join(chr(int(c)) for c in rng.integers(65, 90, 6)),
            (x0, y0 + 15),
            cv2.FONT_HERSHEY_SIMPLEX,
            float(rng.uniform(0.4, 0.9)),
            int(rng.integers(0, 80)),
            1,
            cv2.LINE_AA,
        )
    return np.asarray(canvas, np.uint8)


def _perspective(label: Image, rng: np.random.Generator, strength: float) -> Image:
    h, w = label.shape
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    # Each corner moves inwards by up to ``strength`` of the side: a label seen at an angle.
    jitter = rng.uniform(0, strength, (4, 2)) * np.array([w, h])
    inward = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]])
    dst = (src + jitter * inward).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    return np.asarray(cv2.warpPerspective(label, matrix, (w, h), borderValue=255), dtype=np.uint8)


def _curvature(label: Image, rng: np.random.Generator) -> Image:
    """The label wrapped round a cylinder (a bottle) whose axis is vertical."""
    h, w = label.shape
    radius = w / float(rng.uniform(1.2, 2.2))  # the label covers 1/2.2 .. 1/1.2 radians
    out_w = int(2 * radius * math.sin(w / (2 * radius)))
    xs = np.arange(out_w, dtype=np.float32) - out_w / 2
    angle = np.arcsin(np.clip(xs / radius, -1, 1))
    map_x = np.tile((angle * radius + w / 2).astype(np.float32), (h, 1))
    map_y = np.repeat(np.arange(h, dtype=np.float32)[:, None], out_w, axis=1)
    warped = cv2.remap(label, map_x, map_y, cv2.INTER_LINEAR, borderValue=255)
    shade = (1.0 - 0.35 * (xs / (out_w / 2)) ** 2)[None, :]  # darker towards the edges
    return np.clip(warped.astype(np.float32) * shade, 0, 255).astype(np.uint8)


def _damage(label: Image, rng: np.random.Generator) -> Image:
    out = label.copy()
    h, w = out.shape
    for _ in range(int(rng.integers(2, 5))):  # scratches
        p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(out, p0, p1, int(rng.choice([0, 255])), int(rng.integers(1, 3)))
    size = int(min(h, w) * rng.uniform(0.08, 0.15))  # a torn corner
    out[h - size :, w - size :] = 235
    return out


@dataclass
class Sample:
    """One test picture and what is printed in it."""

    name: str
    image: Image
    symbology: str
    texts: tuple[str, ...]
    defects: tuple[str, ...] = field(default_factory=tuple)


def make_sample(symbology: str, seed: int, defects: Sequence[str], *, codes: int = 1) -> Sample:
    """One picture of ``codes`` labels of ``symbology`` with the given defects applied."""
    unknown = [d for d in defects if d not in DEFECTS]
    if unknown:
        raise ValueError(f"defects expected some of {', '.join(DEFECTS)}, got {unknown}")
    rng = np.random.default_rng(seed)
    width, height = (800, 600) if codes == 1 else (1280, 720)
    canvas = _canvas(rng, width, height)
    texts: list[str] = []
    cols, rows = (2 if codes > 1 else 1), (2 if codes > 2 else 1)
    max_w, max_h = (width - 80) // cols, (height - 80) // rows
    slots = [(40 + (i % cols) * max_w, 40 + (i // cols) * max_h) for i in range(codes)]
    for i, (sx, sy) in enumerate(slots):
        text = sample_text(symbology, rng, seed * 8 + i)
        texts.append(text)
        linear = symbology in ("CODE128", "EAN13")
        module = 2 if "small" in defects or (linear and codes > 1) else int(rng.integers(3, 5))
        label = render_symbol(symbology, text, module)
        if "damage" in defects:
            label = _damage(label, rng)
        if "curvature" in defects:
            label = _curvature(label, rng)
        if "perspective" in defects:
            label = _perspective(label, rng, 0.18)
        angle = float(rng.uniform(-12, 12))
        if rng.random() < 0.25:
            angle += 90
        label = _rotate(label, angle)
        if "inverted" in defects:  # light print on a dark label
            label = 255 - label
        scale = min(1.0, max_w / label.shape[1], max_h / label.shape[0])
        if scale < 1.0:
            label = np.asarray(
                cv2.resize(label, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), np.uint8
            )
        lh, lw = label.shape
        x = sx + int(rng.integers(0, max(1, max_w - lw)))
        y = sy + int(rng.integers(0, max(1, max_h - lh)))
        x, y = min(x, width - lw), min(y, height - lh)
        region = canvas[y : y + lh, x : x + lw]
        mask = label < 250  # only what is printed replaces the carton (white is the label)
        region[:] = np.where(mask | (label >= 250), label, region)
        if "covered" in defects:  # tape or a finger over one edge of the label
            cw, ch = int(lw * rng.uniform(0.08, 0.14)), int(lh * rng.uniform(0.25, 0.45))
            cx = x + (0 if rng.random() < 0.5 else lw - cw)
            cy = y + int(rng.integers(0, lh - ch))
            canvas[cy : cy + ch, cx : cx + cw] = int(rng.integers(20, 120))
    image: np.ndarray[Any, np.dtype[np.float64]] = canvas.astype(np.float64)
    if "low_contrast" in defects:
        image = 128 + (image - 128) * float(rng.uniform(0.22, 0.4))
    if "glare" in defects:
        gy, gx = np.mgrid[0:height, 0:width]
        cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
        sigma = rng.uniform(60, 140)
        image += 200 * np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) / (2 * sigma**2))
    image = np.clip(image, 0, 255)
    if "blur" in defects:
        image = np.asarray(
            cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.9, 1.6))), np.float64
        )
    if "motion_blur" in defects:
        k = int(rng.integers(4, 8))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        image = np.asarray(cv2.filter2D(image, -1, kernel), np.float64)
    if "noise" in defects:
        image = image + rng.normal(0, float(rng.uniform(10, 18)), image.shape)
    out = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    name = f"{symbology.lower()}-{seed:04d}-{'+'.join(defects) or 'clean'}"
    return Sample(name, out, symbology, tuple(texts), tuple(defects))


def _rotate(label: Image, angle: float) -> Image:
    h, w = label.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    matrix[0, 2] += nw / 2 - w / 2
    matrix[1, 2] += nh / 2 - h / 2
    return np.asarray(
        cv2.warpAffine(label, matrix, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=255),
        dtype=np.uint8,
    )


# Each row: the defects of one picture. Realistic combinations, every defect several times.
_RECIPES: tuple[tuple[str, ...], ...] = (
    (),
    ("perspective",),
    ("curvature",),
    ("glare",),
    ("low_contrast",),
    ("blur",),
    ("motion_blur",),
    ("noise",),
    ("damage",),
    ("covered",),
    ("inverted",),
    ("small",),
    ("perspective", "noise"),
    ("curvature", "glare"),
    ("low_contrast", "noise"),
    ("blur", "damage"),
    ("small", "blur"),
    ("inverted", "perspective"),
    ("glare", "covered"),
    ("low_contrast", "blur", "noise"),
)


def decode_test_set(seed: int = 2026, *, rounds: int = 2) -> list[Sample]:
    """The rendered test set: for each symbology, every recipe ``rounds`` times with one code
    per picture, plus pictures of three codes, all deterministic for ``seed``."""
    samples = []
    n = 0
    for symbology in SYMBOLOGIES:
        for r in range(rounds):
            for recipe in _RECIPES:
                samples.append(make_sample(symbology, seed + n, recipe))
                n += 1
            samples.append(make_sample(symbology, seed + n, ("noise",), codes=3))
            n += 1
            samples.append(make_sample(symbology, seed + n, ("perspective", "blur"), codes=3))
            n += 1
            del r
    return samples


def label_with_defects(label: Image, rng: np.random.Generator, level: str) -> Image:
    """A conveyor label (black on white, quiet zone included) as the camera sees it with the
    cosmetic defects of ``level`` ("realistic": one mild defect, "harsh": two stronger ones).
    The result stays the same size so the carton stays the same."""
    if level == "none":
        return label
    strong = level == "harsh"
    kinds = ["blur", "noise", "skew", "glare", "damage", "contrast"]
    picks = rng.choice(kinds, size=2 if strong else 1, replace=False)
    out = label.astype(np.float64)
    h, w = label.shape
    for kind in picks:
        if kind == "blur":
            out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.6, 1.3 if strong else 0.9)))
        elif kind == "noise":
            out = out + rng.normal(0, float(rng.uniform(6, 16 if strong else 10)), out.shape)
        elif kind == "skew":
            warped = _perspective(
                np.clip(out, 0, 255).astype(np.uint8), rng, 0.12 if strong else 0.06
            )
            out = warped.astype(np.float64)
        elif kind == "glare":
            gy, gx = np.mgrid[0:h, 0:w]
            cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
            sigma = rng.uniform(0.1, 0.2) * w
            peak = 140 if strong else 90
            out = out + peak * np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) / (2 * sigma**2))
        elif kind == "damage":
            damaged = _damage(np.clip(out, 0, 255).astype(np.uint8), rng)
            out = damaged.astype(np.float64)
        elif kind == "contrast":
            out = 128 + (out - 128) * float(rng.uniform(0.35 if strong else 0.5, 0.7))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)

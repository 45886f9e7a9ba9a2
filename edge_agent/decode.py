"""Barcode decoding of one frame: zxing-cpp and pyzbar, alone or together, with retries.

``decode_image(image)`` is the stable public entry point. By default it runs both libraries
(their union reads more than either: they fail on different pictures) and, when they find
nothing, retries on preprocessed versions of the picture (contrast equalization, sharpening,
up- and downscaling, denoising, thresholding, inversion, rotation) until one pass reads
something or the passes (or the time budget) run out. Naming one backend
(``decode_image(image, "zxingcpp")``) gives that library's raw reads, nothing else.

Backends are imported only when used, so a machine without libzbar (or without zxing-cpp)
still runs the agent with the other backend.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

import numpy as np

from edge_agent.errors import BackendUnavailableError, DecodeError

logger = logging.getLogger(__name__)

Backend = Literal["zxingcpp", "pyzbar"]
BACKENDS: Final[tuple[str, ...]] = get_args(Backend)
UNION: Final = "union"  # every installed backend, reads merged
# Chosen by measurement, bench/bench_decode.py (numbers in bench/RESULTS.md): on 1280x720
# frames with 4 QR codes each, pinned to one core, looking for QR codes only (a station's
# default), zxing-cpp decoded 309 frames/s against pyzbar's 38.5 (paired ratio 8.0x); looking
# for every symbology, 38.1 against 13.4 (2.8x). Both read 100% of the codes.
DEFAULT_BACKEND: Final[Backend] = "zxingcpp"


@dataclass(frozen=True)
class Read:
    """One barcode found in a frame."""

    text: str
    symbology: str  # normalized: QRCODE, DATAMATRIX, CODE128, EAN13, ...
    center: tuple[float, float] | None = None  # (x, y) in pixels
    box: tuple[int, int, int, int] | None = None  # (left, top, width, height) in pixels


# zxing-cpp names formats in CamelCase, zbar in upper case; both map to zbar's spelling,
# which the agent, logs and tests use.
_ZXING_NAMES = {
    "QRCode": "QRCODE",
    "MicroQRCode": "MICROQR",
    "RMQRCode": "RMQR",
    "DataMatrix": "DATAMATRIX",
    "Code128": "CODE128",
    "Code39": "CODE39",
    "Code93": "CODE93",
    "EAN13": "EAN13",
    "EAN8": "EAN8",
    "UPCA": "UPCA",
    "UPCE": "UPCE",
    "ITF": "I25",
    "PDF417": "PDF417",
    "Aztec": "AZTEC",
    "Codabar": "CODABAR",
    "DataBar": "DATABAR",
    "DataBarExpanded": "DATABAR_EXP",
    "DataBarExp": "DATABAR_EXP",
}


def normalize_symbology(name: str) -> str:
    """zbar-style upper-case name of a symbology as either backend reports it."""
    return _ZXING_NAMES.get(name, name.upper().replace(" ", "").replace("-", ""))


# Symbologies each backend can be asked for (zbar spelling) and the backend's own names.
# "QRCODE" means the ordinary QR code only: zxing-cpp's QRCode family also holds Micro QR and
# rMQR, whose tiny symbols show up as false reads in the texture of ordinary QR codes.
_ZXING_FORMATS: dict[str, str] = {
    "QRCODE": "QRCodeModel1,QRCodeModel2",
    "MICROQR": "MicroQRCode",
    "RMQR": "RMQRCode",
    "DATAMATRIX": "DataMatrix",
    "CODE128": "Code128",
    "CODE39": "Code39",
    "CODE93": "Code93",
    "EAN13": "EAN13",
    "EAN8": "EAN8",
    "UPCA": "UPCA",
    "UPCE": "UPCE",
    "I25": "ITF",
    "PDF417": "PDF417",
    "AZTEC": "Aztec",
    "CODABAR": "Codabar",
    "DATABAR": "DataBar",
    "DATABAR_EXP": "DataBarExpanded",
}
_ZBAR_SYMBOLS = (
    "QRCODE",
    "CODE128",
    "CODE39",
    "CODE93",
    "EAN13",
    "EAN8",
    "UPCA",
    "UPCE",
    "I25",
    "PDF417",
    "CODABAR",
    "DATABAR",
    "DATABAR_EXP",
)
SYMBOLOGIES: Final[dict[str, frozenset[str]]] = {
    "zxingcpp": frozenset(_ZXING_FORMATS),
    "pyzbar": frozenset(_ZBAR_SYMBOLS),
}


def check_symbologies(backend: str, symbologies: Iterable[str]) -> tuple[str, ...]:
    """The symbologies as a sorted tuple, if ``backend`` reads them all; else DecodeError."""
    known = SYMBOLOGIES.get(backend)
    if known is None:
        raise DecodeError(
            f"Unknown decoder backend {backend!r}: expected one of {', '.join(BACKENDS)}"
        )
    wanted = tuple(sorted(set(symbologies)))
    if not wanted:
        raise DecodeError("Expected at least one symbology to look for, got none")
    missing = [name for name in wanted if name not in known]
    if missing:
        raise DecodeError(
            f"Decoder backend {backend!r} cannot read {', '.join(missing)}: "
            f"expected some of {', '.join(sorted(known))}"
        )
    return wanted


def check_image(image: object) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Return ``image`` if it is a non-empty grayscale or BGR uint8 array, else DecodeError."""
    if not isinstance(image, np.ndarray):
        raise DecodeError(f"Expected a numpy array image, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise DecodeError(f"Expected a uint8 image, got dtype {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise DecodeError(
            f"Expected a grayscale (H, W) or BGR (H, W, 3) image, got shape {image.shape}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise DecodeError(f"Expected a non-empty image, got shape {image.shape}")
    return image


def _gray(image: np.ndarray[Any, np.dtype[np.uint8]]) -> np.ndarray[Any, np.dtype[np.uint8]]:
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    import cv2

    return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


def _zxing() -> Any:
    try:
        import zxingcpp
    except ImportError as exc:
        raise BackendUnavailableError(
            f"Decoder backend 'zxingcpp' is not available: {exc} (pip install zxing-cpp)"
        ) from None
    return zxingcpp


@functools.lru_cache(maxsize=32)
def _zxing_formats(symbologies: tuple[str, ...]) -> tuple[Any, ...]:
    # A tuple of enum members, not a BarcodeFormats object: those must not outlive the
    # interpreter (nanobind reports them as leaks at exit), and a cache would keep them.
    formats = _zxing().BarcodeFormat
    names = [n for s in symbologies for n in _ZXING_FORMATS[s].split(",")]
    missing = [n for n in names if not hasattr(formats, n)]
    if missing:
        raise BackendUnavailableError(
            f"zxing-cpp has no format {', '.join(missing)} (zxing-cpp >= 3 needed)"
        )
    return tuple(getattr(formats, n) for n in names)


def _decode_zxing(
    image: np.ndarray[Any, np.dtype[np.uint8]], symbologies: tuple[str, ...] | None
) -> list[Read]:
    zxingcpp = _zxing()
    options = {} if symbologies is None else {"formats": _zxing_formats(symbologies)}
    reads = []
    for found in zxingcpp.read_barcodes(np.ascontiguousarray(image), **options):
        pos = found.position
        xs = (pos.top_left.x, pos.top_right.x, pos.bottom_right.x, pos.bottom_left.x)
        ys = (pos.top_left.y, pos.top_right.y, pos.bottom_right.y, pos.bottom_left.y)
        reads.append(
            Read(
                text=found.text,
                symbology=normalize_symbology(found.format.name),
                center=(sum(xs) / 4, sum(ys) / 4),
                box=(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)),
            )
        )
    return reads


def _decode_pyzbar(
    image: np.ndarray[Any, np.dtype[np.uint8]], symbologies: tuple[str, ...] | None
) -> list[Read]:
    try:
        from pyzbar import pyzbar
    except ImportError as exc:
        raise BackendUnavailableError(
            f"Decoder backend 'pyzbar' is not available: {exc} "
            "(pip install pyzbar; apt install libzbar0)"
        ) from None
    symbols = None if symbologies is None else [pyzbar.ZBarSymbol[s] for s in symbologies]
    reads = []
    # zbar reads 8-bit single-channel pictures only.
    for found in pyzbar.decode(_gray(image), symbols=symbols):
        left, top, width, height = found.rect
        text = found.data.decode("utf-8", errors="replace")
        symbology = normalize_symbology(found.type)
        reads.append(
            Read(
                text=_gs1_hri(text) if symbology == "CODE128" else text,
                symbology=symbology,
                center=(left + width / 2, top + height / 2),
                box=(left, top, width, height),
            )
        )
    return reads


# GS1 element strings that open a GS1-128 symbol: SSCC, GTIN, GTIN of contained items.
_GS1_OPENERS = ("00", "01", "02")


def _gs1_hri(text: str) -> str:
    """zbar reports a GS1-128 symbol's data without its FNC1 marker (``0109506…21ABC``) where
    zxing-cpp gives the HRI (``(01)09506…(21)ABC``): the same label must read the same from
    either library, so data that parses completely as GS1 element strings starting with an
    SSCC or GTIN (check digit verified by biip) is given in HRI form too."""
    key = text[2:20] if text[:2] == "00" else text[2:16]
    if text[:2] not in _GS1_OPENERS or not key.isdigit() or len(key) not in (14, 18):
        return text
    from biip import ParseError
    from biip.checksums import gs1_standard_check_digit
    from biip.gs1_messages import GS1Message

    if gs1_standard_check_digit(key[:-1]) != int(key[-1]):
        return text
    try:
        return GS1Message.parse(text).as_hri()
    except ParseError:
        return text


_Decoder = Callable[[np.ndarray[Any, np.dtype[np.uint8]], tuple[str, ...] | None], list[Read]]
_DECODERS: dict[str, _Decoder] = {
    "zxingcpp": _decode_zxing,
    "pyzbar": _decode_pyzbar,
}


def _decode_raw(
    image: np.ndarray[Any, np.dtype[np.uint8]], backend: str, symbologies: tuple[str, ...] | None
) -> list[Read]:
    decoder = _DECODERS.get(backend)
    if decoder is None:
        raise DecodeError(
            f"Unknown decoder backend {backend!r}: expected one of {', '.join(BACKENDS)}"
        )
    return decoder(image, symbologies)


# The symbologies a product label carries (issue 6): what the union looks for by default.
PRODUCT_SYMBOLOGIES: Final[tuple[str, ...]] = (
    "CODE128",
    "DATAMATRIX",
    "EAN13",
    "EAN8",
    "QRCODE",
    "UPCA",
    "UPCE",
)
Retry = Literal[
    "equalize", "sharpen", "upscale", "downscale", "denoise", "threshold", "invert", "rotate"
]
RETRIES: Final[tuple[str, ...]] = get_args(Retry)


@dataclass(frozen=True)
class DecodeOptions:
    """How a picture is decoded.

    ``backends``: libraries to run, reads merged. ``symbologies``: what to look for (None:
    PRODUCT_SYMBOLOGIES; each backend is asked for the ones it reads). ``roi``: (left, top,
    width, height) of the part of the picture to search. ``max_side``: pictures larger than
    this (longest side, pixels) are downscaled first. ``retries``: preprocessing passes, in
    order, tried when ``retry`` says so: ``"if_none"`` until a pass reads something,
    ``"always"`` every pass (several codes in a picture), ``"never"``. ``time_budget_ms``: no
    new pass starts after this much time on one picture.
    """

    backends: tuple[str, ...] = BACKENDS
    symbologies: tuple[str, ...] | None = None
    roi: tuple[int, int, int, int] | None = None
    max_side: int | None = None
    retries: tuple[str, ...] = RETRIES
    retry: Literal["never", "if_none", "always"] = "if_none"
    time_budget_ms: float | None = None

    def __post_init__(self) -> None:
        if not self.backends:
            raise DecodeError("Expected at least one decoder backend, got none")
        unknown = [b for b in self.backends if b not in BACKENDS]
        if unknown:
            raise DecodeError(
                f"Unknown decoder backend {', '.join(map(repr, unknown))}: "
                f"expected some of {', '.join(BACKENDS)}"
            )
        bad = [r for r in self.retries if r not in RETRIES]
        if bad:
            raise DecodeError(f"Unknown retries {bad}: expected some of {', '.join(RETRIES)}")
        if self.roi is not None and (min(self.roi[2:]) < 1 or min(self.roi[:2]) < 0):
            raise DecodeError(
                f"roi expected (left >= 0, top >= 0, width >= 1, height >= 1), got {self.roi}"
            )
        if self.max_side is not None and self.max_side < 32:
            raise DecodeError(f"max_side expected at least 32 pixels, got {self.max_side}")

    def wanted(self) -> dict[str, tuple[str, ...]]:
        """The symbologies to ask each backend for (backends that read none are skipped);
        DecodeError if some symbology no backend reads."""
        symbologies = self.symbologies if self.symbologies is not None else PRODUCT_SYMBOLOGIES
        out = {}
        for backend in self.backends:
            mine = tuple(sorted(set(symbologies) & SYMBOLOGIES[backend]))
            if mine:
                out[backend] = mine
        unread = set(symbologies) - {s for mine in out.values() for s in mine}
        if (unread and self.symbologies is not None) or not out:
            check_symbologies(self.backends[0], symbologies)  # raises, saying what is wrong
        return out


# A pass: (picture to decode, function mapping its points back to the original's).
_Point = tuple[float, float]
_Pass = tuple[np.ndarray[Any, np.dtype[np.uint8]], Callable[[_Point], _Point]]


def _same(point: _Point) -> _Point:
    return point


def _scaled(gray: np.ndarray[Any, np.dtype[np.uint8]], factor: float, interp: int) -> _Pass:
    import cv2

    out = np.asarray(cv2.resize(gray, None, fx=factor, fy=factor, interpolation=interp), np.uint8)
    return out, lambda p: (p[0] / factor, p[1] / factor)


def _rotated(gray: np.ndarray[Any, np.dtype[np.uint8]], angle: float) -> _Pass:
    import cv2

    h, w = gray.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    matrix[0, 2] += nw / 2 - w / 2
    matrix[1, 2] += nh / 2 - h / 2
    out = np.asarray(cv2.warpAffine(gray, matrix, (nw, nh), borderValue=255), np.uint8)
    back = cv2.invertAffineTransform(matrix)

    def to_original(p: _Point) -> _Point:
        return (
            float(back[0, 0] * p[0] + back[0, 1] * p[1] + back[0, 2]),
            float(back[1, 0] * p[0] + back[1, 1] * p[1] + back[1, 2]),
        )

    return out, to_original


def _passes(name: str, gray: np.ndarray[Any, np.dtype[np.uint8]]) -> list[_Pass]:
    """The preprocessed pictures of one retry."""
    import cv2

    if name == "equalize":  # low contrast, glare, uneven light
        clahe = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8))
        return [(np.asarray(clahe.apply(gray), np.uint8), _same)]
    if name == "sharpen":  # focus and motion blur
        soft = cv2.GaussianBlur(gray, (0, 0), 2.0)
        return [(np.asarray(cv2.addWeighted(gray, 2.0, soft, -1.0, 0), np.uint8), _same)]
    if name == "upscale":  # small codes: too few pixels per module
        return [_scaled(gray, 2.0, cv2.INTER_CUBIC)]
    if name == "downscale":  # noise and large codes
        return [_scaled(gray, 0.5, cv2.INTER_AREA)]
    if name == "denoise":  # sensor noise
        return [(np.asarray(cv2.medianBlur(gray, 3), np.uint8), _same)]
    if name == "threshold":  # glare, low contrast: local binarization
        binary = cv2.adaptiveThreshold(
            cv2.GaussianBlur(gray, (0, 0), 1.0),
            255,
            cv2.ADAPTIVE_THRESH_GAUSSIAN_C,
            cv2.THRESH_BINARY,
            31,
            5,
        )
        return [(np.asarray(binary, np.uint8), _same)]
    if name == "invert":  # light-on-dark print (zbar does not try this itself)
        return [(np.asarray(255 - gray, np.uint8), _same)]
    if name == "rotate":  # 1-D codes at an angle: zbar scans rows and columns only
        return [_rotated(gray, 30.0), _rotated(gray, -30.0)]
    raise DecodeError(f"Unknown retry {name!r}: expected one of {', '.join(RETRIES)}")


@dataclass
class DecodeStats:
    """What a Decoder did, summed over the pictures it decoded."""

    pictures: int = 0
    passes: int = 0  # pictures handed to a library (each backend counts)
    retried: int = 0  # pictures that needed preprocessing passes
    rescued: int = 0  # pictures read only thanks to a preprocessing pass
    over_budget: int = 0  # pictures whose remaining passes were skipped for time
    by_retry: dict[str, int] = field(default_factory=dict)  # reads first found by each retry
    implausible: int = 0  # reads dropped as noise (see plausible())


class Decoder:
    """Decodes pictures with fixed options and keeps statistics (not thread-safe)."""

    def __init__(self, options: DecodeOptions | None = None) -> None:
        self.options = options if options is not None else DecodeOptions()
        self._wanted = self.options.wanted()
        self.stats = DecodeStats()

    def decode(self, image: object) -> list[Read]:
        options = self.options
        started = time.perf_counter()
        picture = check_image(image)
        self.stats.pictures += 1
        gray = _gray(picture)
        offset = (0.0, 0.0)
        if options.roi is not None:
            left, top, width, height = options.roi
            gray = gray[top : top + height, left : left + width]
            if gray.size == 0:
                raise DecodeError(
                    f"roi {options.roi} lies outside the picture of shape {picture.shape}"
                )
            offset = (float(left), float(top))
        base: _Pass = (gray, _same)
        if options.max_side is not None and max(gray.shape) > options.max_side:
            import cv2

            base = _scaled(gray, options.max_side / max(gray.shape), cv2.INTER_AREA)
        found: list[Read] = []
        self._run(base, found, None)
        if options.retry != "never" and (options.retry == "always" or not found):
            self.stats.retried += 1
            had = len(found)
            for name in options.retries:
                if options.time_budget_ms is not None and (
                    (time.perf_counter() - started) * 1000 >= options.time_budget_ms
                ):
                    self.stats.over_budget += 1
                    break
                for image_pass, to_base in _passes(name, base[0]):
                    self._run((image_pass, _compose(base[1], to_base)), found, name)
                if found and options.retry == "if_none":
                    break
            if not had and found:
                self.stats.rescued += 1
        if offset != (0.0, 0.0):
            found = [_moved(r, offset) for r in found]
        return found

    def _run(self, picture_pass: _Pass, found: list[Read], retry: str | None) -> None:
        image, to_original = picture_pass
        image = np.ascontiguousarray(image)
        for backend, symbologies in self._wanted.items():
            self.stats.passes += 1
            for read in _decode_raw(image, backend, symbologies):
                if not plausible(read):
                    self.stats.implausible += 1
                    continue
                mapped = _mapped(read, to_original)
                if not any(_is_same_label(mapped, other) for other in found):
                    found.append(mapped)
                    if retry is not None:
                        self.stats.by_retry[retry] = self.stats.by_retry.get(retry, 0) + 1


# Separators a label's data may hold (GS1 GS, ISO/IEC 15434 RS and EOT); any other control
# character in a read is a misdecode.
_SEPARATORS = frozenset("\x1d\x1e\x04")
_MIN_LINEAR_TEXT = 4


def plausible(read: Read) -> bool:
    """False for what decoders find in noise: control characters, or a 1-D read of fewer
    than 4 characters (no product label carries one; zbar reports such fragments of damaged
    or blurred Code 128 symbols)."""
    if any(ord(c) < 32 and c not in _SEPARATORS for c in read.text) or "\ufffd" in read.text:
        return False
    return read.symbology in ("QRCODE", "DATAMATRIX") or len(read.text) >= _MIN_LINEAR_TEXT


def _compose(
    outer: Callable[[_Point], _Point], inner: Callable[[_Point], _Point]
) -> Callable[[_Point], _Point]:
    if outer is _same:
        return inner
    return lambda p: outer(inner(p))


def _mapped(read: Read, to_original: Callable[[_Point], _Point]) -> Read:
    if to_original is _same or read.center is None:
        return read
    center = to_original(read.center)
    box = read.box
    if box is not None:
        corners = [
            to_original((box[0] + dx, box[1] + dy)) for dx in (0, box[2]) for dy in (0, box[3])
        ]
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        box = (round(min(xs)), round(min(ys)), round(max(xs) - min(xs)), round(max(ys) - min(ys)))
    return Read(read.text, read.symbology, center, box)


def _moved(read: Read, offset: _Point) -> Read:
    center = (
        None if read.center is None else (read.center[0] + offset[0], read.center[1] + offset[1])
    )
    box = read.box
    if box is not None:
        box = (box[0] + round(offset[0]), box[1] + round(offset[1]), box[2], box[3])
    return Read(read.text, read.symbology, center, box)


def _is_same_label(a: Read, b: Read) -> bool:
    """Two reads of one label (by two libraries or two passes): same text, same place."""
    if a.text != b.text:
        return False
    if a.center is None or b.center is None:
        return True
    reach = 40.0
    for read in (a, b):
        if read.box is not None:
            reach = max(reach, 0.5 * max(read.box[2], read.box[3]))
    return math.dist(a.center, b.center) <= reach


def decode_image(
    image: object,
    backend: str | None = None,
    *,
    symbologies: Iterable[str] | None = None,
    options: DecodeOptions | None = None,
) -> list[Read]:
    """Every barcode in a grayscale (H, W) or BGR (H, W, 3) uint8 image.

    With no ``backend`` (or ``"union"``): every installed library, reads merged, and
    preprocessing retries when nothing is read (``options`` changes any of it). With a
    ``backend`` name: that library's raw reads only. ``symbologies`` (zbar names, e.g.
    ``["QRCODE"]``) limits the search, which is faster and avoids false reads; None looks for
    PRODUCT_SYMBOLOGIES (union) or everything the backend reads (one backend). Raises
    DecodeError for a bad image or an unknown backend or symbology, and
    BackendUnavailableError (a DecodeError) when a requested backend is not installed.
    """
    wanted = None if symbologies is None else tuple(symbologies)
    if backend is None or backend == UNION:
        chosen = options if options is not None else DecodeOptions(backends=_installed())
        if wanted is not None:
            chosen = DecodeOptions(**{**chosen.__dict__, "symbologies": wanted})
        return Decoder(chosen).decode(image)
    if backend not in _DECODERS:
        raise DecodeError(
            f"Unknown decoder backend {backend!r}: expected one of {', '.join(BACKENDS)}"
        )
    checked = None if wanted is None else check_symbologies(backend, wanted)
    return _decode_raw(check_image(image), backend, checked)


@functools.lru_cache(maxsize=1)
def _installed() -> tuple[str, ...]:
    """The backends that import on this machine (the union runs what is there)."""
    found = []
    for name in BACKENDS:
        try:
            if name == "zxingcpp":
                _zxing()
            else:
                from pyzbar import pyzbar  # noqa: F401
        except (ImportError, BackendUnavailableError):
            logger.warning("Decoder backend %s is not installed; the union runs without it", name)
            continue
        found.append(name)
    if not found:
        raise BackendUnavailableError(
            "No decoder backend is installed: expected zxing-cpp or pyzbar (pip install zxing-cpp)"
        )
    return tuple(found)


def backends_for(decoder: str) -> tuple[str, ...]:
    """The libraries a station's ``decoder`` setting names (``union``: all installed)."""
    return _installed() if decoder == UNION else (decoder,)


__all__: Sequence[str] = (
    "BACKENDS",
    "DEFAULT_BACKEND",
    "PRODUCT_SYMBOLOGIES",
    "RETRIES",
    "UNION",
    "DecodeOptions",
    "DecodeStats",
    "Decoder",
    "Read",
    "check_image",
    "check_symbologies",
    "decode_image",
    "normalize_symbology",
)

"""Barcode decoding of one frame with pyzbar or zxing-cpp.

Backends are imported only when used, so a machine without libzbar (or without zxing-cpp)
still runs the agent with the other backend.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

import numpy as np

from edge_agent.errors import BackendUnavailableError, DecodeError

logger = logging.getLogger(__name__)

Backend = Literal["zxingcpp", "pyzbar"]
BACKENDS: Final[tuple[str, ...]] = get_args(Backend)
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
        reads.append(
            Read(
                text=found.data.decode("utf-8", errors="replace"),
                symbology=normalize_symbology(found.type),
                center=(left + width / 2, top + height / 2),
                box=(left, top, width, height),
            )
        )
    return reads


_Decoder = Callable[[np.ndarray[Any, np.dtype[np.uint8]], tuple[str, ...] | None], list[Read]]
_DECODERS: dict[str, _Decoder] = {
    "zxingcpp": _decode_zxing,
    "pyzbar": _decode_pyzbar,
}


def decode_image(
    image: object, backend: str | None = None, *, symbologies: Iterable[str] | None = None
) -> list[Read]:
    """Every barcode in a grayscale (H, W) or BGR (H, W, 3) uint8 image.

    ``symbologies`` (zbar names, e.g. ``["QRCODE"]``) limits the search, which is much faster
    and avoids false reads; None looks for everything the backend reads. Raises DecodeError
    for a bad image or an unknown backend or symbology, and BackendUnavailableError (a
    DecodeError) when the requested backend is not installed.
    """
    name = DEFAULT_BACKEND if backend is None else backend
    decoder = _DECODERS.get(name)
    if decoder is None:
        raise DecodeError(
            f"Unknown decoder backend {name!r}: expected one of {', '.join(BACKENDS)}"
        )
    wanted = None if symbologies is None else check_symbologies(name, symbologies)
    return decoder(check_image(image), wanted)

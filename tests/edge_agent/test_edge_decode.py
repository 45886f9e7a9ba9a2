from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
import zxingcpp

from edge_agent.decode import DEFAULT_BACKEND, Read, decode_image, normalize_symbology
from edge_agent.errors import BackendUnavailableError, DecodeError, EdgeError
from simulators.camera import Placement, SyntheticConveyor, demo_urls, render_frame

BACKENDS = ["zxingcpp", "pyzbar"]


def conveyor_frames(count: int) -> tuple[list[str], list[np.ndarray], list[set[str]]]:
    codes = demo_urls(count)
    conveyor = SyntheticConveyor(codes, step=90, start=datetime(2024, 1, 1, tzinfo=UTC))
    images, expected = [], []
    while (frame := conveyor.read()) is not None:
        images.append(frame.image)
        expected.append(set(conveyor.fully_visible(frame.index)))
    return codes, images, expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_both_backends_decode_the_synthetic_conveyor(backend: str) -> None:
    codes, images, expected = conveyor_frames(6)
    seen: set[str] = set()
    for image, want in zip(images, expected, strict=True):
        reads = decode_image(image, backend)
        texts = {r.text for r in reads}
        assert want <= texts
        assert {r.symbology for r in reads} <= {"QRCODE"}
        seen |= texts
    assert seen == set(codes)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bgr_and_grayscale_give_the_same_reads(backend: str) -> None:
    _, images, expected = conveyor_frames(3)
    index = next(i for i, e in enumerate(expected) if len(e) >= 2)
    gray = images[index]
    bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    by_gray = sorted((r.text, r.symbology) for r in decode_image(gray, backend))
    by_bgr = sorted((r.text, r.symbology) for r in decode_image(bgr, backend))
    assert by_gray == by_bgr
    assert {t for t, _ in by_gray} == expected[index]


@pytest.mark.parametrize("backend", BACKENDS)
def test_reads_carry_the_label_position(backend: str) -> None:
    image = np.full((400, 600), 255, np.uint8)
    code = zxingcpp.create_barcode("hello", zxingcpp.BarcodeFormat.QRCode)
    qr = np.array(code.to_image(scale=6, add_quiet_zones=False))
    image[100 : 100 + qr.shape[0], 300 : 300 + qr.shape[1]] = qr
    (read,) = decode_image(image, backend)
    assert read.text == "hello"
    assert read.center == pytest.approx((300 + qr.shape[1] / 2, 100 + qr.shape[0] / 2), abs=3)
    assert read.box is not None
    left, top, width, height = read.box
    assert (left, top) == pytest.approx((300, 100), abs=3)
    assert (width, height) == pytest.approx(qr.shape[::-1], abs=3)


@pytest.mark.parametrize(
    ("fmt", "text", "expected"),
    [
        ("QRCode", "hello", {"zxingcpp": "QRCODE", "pyzbar": "QRCODE"}),
        ("DataMatrix", "hello", {"zxingcpp": "DATAMATRIX", "pyzbar": None}),  # zbar cannot
        ("Code128", "HELLO123", {"zxingcpp": "CODE128", "pyzbar": "CODE128"}),
        ("EAN13", "9506000134352", {"zxingcpp": "EAN13", "pyzbar": "EAN13"}),
    ],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_symbology_names_are_normalized(
    backend: str, fmt: str, text: str, expected: dict[str, str | None]
) -> None:
    barcode = zxingcpp.create_barcode(text, getattr(zxingcpp.BarcodeFormat, fmt))
    image = np.array(barcode.to_image(scale=4, add_quiet_zones=True))
    reads = decode_image(image, backend)
    want = expected[backend]
    assert [(r.text, r.symbology) for r in reads] == ([] if want is None else [(text, want)])


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("QRCode", "QRCODE"),
        ("QRCODE", "QRCODE"),
        ("DataMatrix", "DATAMATRIX"),
        ("Code128", "CODE128"),
        ("EAN13", "EAN13"),
        ("ITF", "I25"),
        ("EAN-8", "EAN8"),
    ],
)
def test_normalize_symbology(name: str, normalized: str) -> None:
    assert normalize_symbology(name) == normalized


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (None, "Expected a numpy array image, got NoneType"),
        ([[0, 255], [255, 0]], "Expected a numpy array image, got list"),
        (np.zeros((10, 10), np.float32), "Expected a uint8 image, got dtype float32"),
        (np.zeros((10, 10), np.uint16), "Expected a uint8 image, got dtype uint16"),
        (
            np.zeros(10, np.uint8),
            "Expected a grayscale (H, W) or BGR (H, W, 3) image, got shape (10,)",
        ),
        (
            np.zeros((10, 10, 4), np.uint8),
            "Expected a grayscale (H, W) or BGR (H, W, 3) image, got shape (10, 10, 4)",
        ),
        (
            np.zeros((2, 10, 10, 3), np.uint8),
            "Expected a grayscale (H, W) or BGR (H, W, 3) image, got shape (2, 10, 10, 3)",
        ),
        (np.zeros((0, 10), np.uint8), "Expected a non-empty image, got shape (0, 10)"),
        (np.zeros((10, 0, 3), np.uint8), "Expected a non-empty image, got shape (10, 0, 3)"),
    ],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_images_raise_decode_error(backend: str, image: object, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_image(image, backend)
    assert str(info.value) == message
    assert isinstance(info.value, EdgeError)


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(DecodeError) as info:
        decode_image(np.zeros((10, 10), np.uint8), "opencv")
    assert str(info.value) == "Unknown decoder backend 'opencv': expected one of zxingcpp, pyzbar"


def test_default_backend_of_a_station_is_zxingcpp() -> None:
    # bench/RESULTS.md: zxing-cpp is the faster of the two with the same read rate on the
    # conveyor; decode_image() with no backend is the union (test_edge_decode_union.py).
    assert DEFAULT_BACKEND == "zxingcpp"
    image = np.array(zxingcpp.create_barcode("x", zxingcpp.BarcodeFormat.QRCode).to_image(scale=4))
    assert [r.text for r in decode_image(image)] == [
        r.text for r in decode_image(image, "zxingcpp")
    ]


def test_a_missing_backend_fails_only_when_requested(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import pyzbar` raise ImportError, as on a machine without it.
    monkeypatch.setitem(sys.modules, "pyzbar", None)
    monkeypatch.setitem(sys.modules, "pyzbar.pyzbar", None)
    image = np.array(zxingcpp.create_barcode("ok", zxingcpp.BarcodeFormat.QRCode).to_image(scale=4))
    with pytest.raises(BackendUnavailableError) as info:
        decode_image(image, "pyzbar")
    assert str(info.value).startswith("Decoder backend 'pyzbar' is not available: ")
    assert str(info.value).endswith("(pip install pyzbar; apt install libzbar0)")
    assert [r.text for r in decode_image(image, "zxingcpp")] == ["ok"]


def test_the_module_imports_without_any_backend() -> None:
    script = (
        "import sys\n"
        "sys.modules['pyzbar'] = None\n"
        "sys.modules['zxingcpp'] = None\n"
        "import numpy as np\n"
        "from edge_agent.decode import decode_image\n"
        "from edge_agent.errors import BackendUnavailableError\n"
        "try:\n"
        "    decode_image(np.zeros((8, 8), np.uint8), 'zxingcpp')\n"
        "except BackendUnavailableError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.startswith("Decoder backend 'zxingcpp' is not available: ")
    assert out.stdout.rstrip().endswith("(pip install zxing-cpp)")


def test_read_is_a_frozen_value() -> None:
    read = Read(text="a", symbology="QRCODE", center=(1.0, 2.0), box=(0, 0, 2, 4))
    assert read == Read("a", "QRCODE", (1.0, 2.0), (0, 0, 2, 4))
    with pytest.raises(AttributeError):
        read.text = "b"  # type: ignore[misc]


# Five labels of a plant run (hub key of that run) where zxing-cpp, asked for every format,
# also found a Micro QR code "9942" in the texture of the QR codes.
FALSE_READ_SCENE = [
    Placement("http://127.0.0.1:34933/01/06901234567892/21/1YFVCDZBSK1VMGH63PGY", -120, 262),
    Placement("http://127.0.0.1:34933/01/06901234567892/21/17G32BQMB9MV5K09PA57", 200, 243),
    Placement("http://127.0.0.1:34933/01/06901234567892/21/0W30B9S9QJVWAE3S6C79", 520, 321),
    Placement("http://127.0.0.1:34933/01/06901234567892/21/0P8SNA23Y21EXR63808T", 840, 276),
    Placement("http://127.0.0.1:34933/01/06901234567892/21/0Y362TZ2SBEM9JASNJ78", 1160, 324),
]


def test_looking_for_qr_codes_only_keeps_micro_qr_false_reads_out() -> None:
    image = render_frame(FALSE_READ_SCENE, seed=0)
    visible = {p.text for p in FALSE_READ_SCENE[1:4]}
    everything = {(r.symbology, r.text) for r in decode_image(image, "zxingcpp")}
    assert ("MICROQR", "9942") in everything  # the false read this guards against
    qr_only = {
        (r.symbology, r.text) for r in decode_image(image, "zxingcpp", symbologies=["QRCODE"])
    }
    assert qr_only == {("QRCODE", t) for t in visible}


@pytest.mark.parametrize(
    ("fmt", "text", "symbologies", "found"),
    [
        ("Code128", "HELLO123", ["QRCODE"], False),
        ("Code128", "HELLO123", ["QRCODE", "CODE128"], True),
        ("EAN13", "9506000134352", ["EAN13"], True),
        ("EAN13", "9506000134352", ["CODE128"], False),
        ("QRCode", "hello", ["QRCODE"], True),
    ],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_only_the_requested_symbologies_are_read(
    backend: str, fmt: str, text: str, symbologies: list[str], found: bool
) -> None:
    barcode = zxingcpp.create_barcode(text, getattr(zxingcpp.BarcodeFormat, fmt))
    image = np.array(barcode.to_image(scale=4, add_quiet_zones=True))
    reads = decode_image(image, backend, symbologies=symbologies)
    assert [r.text for r in reads] == ([text] if found else [])


@pytest.mark.parametrize(
    ("backend", "symbologies", "message"),
    [
        (
            "pyzbar",
            ["QRCODE", "DATAMATRIX"],
            "Decoder backend 'pyzbar' cannot read DATAMATRIX: expected some of CODABAR, "
            "CODE128, CODE39, CODE93, DATABAR, DATABAR_EXP, EAN13, EAN8, I25, PDF417, QRCODE, "
            "UPCA, UPCE",
        ),
        (
            "zxingcpp",
            ["qrcode", "DOTCODE"],
            "Decoder backend 'zxingcpp' cannot read DOTCODE, qrcode: expected some of AZTEC, "
            "CODABAR, CODE128, CODE39, CODE93, DATABAR, DATABAR_EXP, DATAMATRIX, EAN13, EAN8, "
            "I25, MICROQR, PDF417, QRCODE, RMQR, UPCA, UPCE",
        ),
        ("zxingcpp", [], "Expected at least one symbology to look for, got none"),
    ],
)
def test_unknown_symbologies_are_refused(
    backend: str, symbologies: list[str], message: str
) -> None:
    with pytest.raises(DecodeError) as info:
        decode_image(np.zeros((10, 10), np.uint8), backend, symbologies=symbologies)
    assert str(info.value) == message

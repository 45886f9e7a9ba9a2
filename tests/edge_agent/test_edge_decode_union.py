"""decode_image's default: both libraries merged, preprocessing retries, options."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.decode import (
    PRODUCT_SYMBOLOGIES,
    DecodeOptions,
    Decoder,
    Read,
    decode_image,
    plausible,
)
from edge_agent.errors import DecodeError
from simulators.labels import make_sample, render_symbol

PYZBAR_READS = [s for s in PRODUCT_SYMBOLOGIES if s != "DATAMATRIX"]
# A small slice of the rendered test set (simulators.labels), fixed seeds: pictures where the
# libraries disagree, fail alone, or need preprocessing.
CASES = [
    ("QRCODE", 2026, ()),
    ("QRCODE", 2036, ("inverted",)),
    ("QRCODE", 2031, ("blur",)),
    ("DATAMATRIX", 2049, ("perspective",)),
    ("CODE128", 2083, ("curvature", "glare")),
    ("CODE128", 2080, ("inverted",)),
    ("CODE128", 2077, ("noise",)),
    ("EAN13", 2097, ("blur",)),
    ("EAN13", 2102, ("inverted",)),
    ("EAN13", 2112, ("noise",)),
]


def texts(reads: list[Read]) -> set[str]:
    return {r.text for r in reads}


@pytest.fixture(scope="module")
def samples() -> list:
    return [
        make_sample(sym, seed, defects, codes=3 if seed == 2112 else 1)
        for sym, seed, defects in CASES
    ]


def test_the_default_reads_everything_either_library_reads_and_more(samples: list) -> None:
    raw_union = rescued = 0
    for sample in samples:
        zxing = texts(decode_image(sample.image, "zxingcpp", symbologies=PRODUCT_SYMBOLOGIES))
        zbar = texts(decode_image(sample.image, "pyzbar", symbologies=PYZBAR_READS))
        best = texts(decode_image(sample.image))
        want = set(sample.texts)
        assert (zxing | zbar) & want <= best, sample.name
        assert best <= want, f"{sample.name}: false reads {best - want}"
        raw_union += len((zxing | zbar) & want)
        rescued += len(best & want) - len((zxing | zbar) & want)
    assert raw_union >= 8
    assert rescued >= 3  # inverted 1-D codes and a blurred QR code need retries


def test_each_library_misses_something_the_other_reads(samples: list) -> None:
    only_zxing = only_zbar = 0
    for sample in samples:
        zxing = texts(decode_image(sample.image, "zxingcpp", symbologies=PRODUCT_SYMBOLOGIES))
        zbar = texts(decode_image(sample.image, "pyzbar", symbologies=PYZBAR_READS))
        only_zxing += len(zxing - zbar)
        only_zbar += len(zbar - zxing)
    assert only_zxing and only_zbar


def test_gs1_128_reads_the_same_from_both_libraries() -> None:
    text = "(01)09506000134352(21)ABC123DEF"
    image = render_symbol("CODE128", text, 3)
    assert texts(decode_image(image, "pyzbar")) == {text}
    assert texts(decode_image(image, "zxingcpp")) == {text}
    assert [r.text for r in decode_image(image)] == [text]  # merged: one read


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        (Read("}", "CODE128"), False),
        (Read("\x0fab12", "CODE128"), False),
        (Read("AB\ufffdCD", "QRCODE"), False),
        (Read("9506000134352", "EAN13"), True),
        (Read("(01)09506000134352(21)X\x1d", "CODE128"), True),
        (Read("x", "QRCODE"), True),
    ],
)
def test_plausible(read: Read, expected: bool) -> None:
    assert plausible(read) is expected


def two_qr_codes() -> tuple[np.ndarray, str, str]:
    canvas = np.full((400, 900), 255, np.uint8)
    left, right = "left-code", "right-code"
    a, b = render_symbol("QRCODE", left, 4), render_symbol("QRCODE", right, 4)
    canvas[50 : 50 + a.shape[0], 50 : 50 + a.shape[1]] = a
    canvas[100 : 100 + b.shape[0], 600 : 600 + b.shape[1]] = b
    return canvas, left, right


def test_roi_limits_the_search_and_positions_stay_in_frame_pixels() -> None:
    image, _, right = two_qr_codes()
    reads = Decoder(DecodeOptions(roi=(500, 0, 400, 400), retry="never")).decode(image)
    assert [r.text for r in reads] == [right]
    side = render_symbol("QRCODE", right, 4).shape[0]
    assert reads[0].center == pytest.approx((600 + side / 2, 100 + side / 2), abs=4)


def test_downscaled_frames_report_positions_in_frame_pixels() -> None:
    image, left, right = two_qr_codes()
    plain = {r.text: r.center for r in decode_image(image, options=DecodeOptions(retry="never"))}
    small = Decoder(DecodeOptions(max_side=600, retry="never")).decode(image)
    assert {r.text for r in small} == {left, right}
    for read in small:
        assert read.center == pytest.approx(plain[read.text], abs=6)


def test_retries_positions_map_back_to_the_frame() -> None:
    image, left, _ = two_qr_codes()
    image = 255 - image  # inverted: pyzbar needs the invert retry
    dec = Decoder(DecodeOptions(backends=("pyzbar",), retries=("invert",), retry="always"))
    reads = {r.text: r.center for r in dec.decode(image)}
    side = render_symbol("QRCODE", left, 4).shape[0]
    assert reads[left] == pytest.approx((50 + side / 2, 50 + side / 2), abs=4)
    assert dec.stats.by_retry == {"invert": 2}


def test_the_time_budget_stops_retries() -> None:
    blank = np.full((720, 1280), 128, np.uint8)
    dec = Decoder(DecodeOptions(time_budget_ms=0.001))
    assert dec.decode(blank) == []
    assert dec.stats.over_budget == 1
    assert dec.stats.passes == 2  # the two libraries once, no retry pass


def test_retry_never_and_if_none() -> None:
    blank = np.full((200, 200), 128, np.uint8)
    never = Decoder(DecodeOptions(retry="never"))
    never.decode(blank)
    assert (never.stats.passes, never.stats.retried) == (2, 0)
    if_none = Decoder(DecodeOptions(retries=("equalize", "invert")))
    if_none.decode(blank)
    assert (if_none.stats.passes, if_none.stats.retried) == (6, 1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"backends": ()}, "Expected at least one decoder backend, got none"),
        ({"backends": ("opencv",)}, "Unknown decoder backend 'opencv': expected some of"),
        ({"retries": ("magic",)}, "Unknown retries ['magic']: expected some of equalize"),
        ({"roi": (0, 0, 0, 10)}, "roi expected (left >= 0, top >= 0, width >= 1, height >= 1)"),
        ({"max_side": 8}, "max_side expected at least 32 pixels, got 8"),
    ],
)
def test_bad_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        DecodeOptions(**options)
    assert str(info.value).startswith(message)


def test_a_symbology_no_backend_reads_is_refused() -> None:
    with pytest.raises(DecodeError, match="cannot read DATAMATRIX"):
        DecodeOptions(backends=("pyzbar",), symbologies=("DATAMATRIX",)).wanted()


def test_an_roi_outside_the_picture_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="lies outside the picture"):
        Decoder(DecodeOptions(roi=(500, 500, 10, 10))).decode(np.zeros((100, 100), np.uint8))

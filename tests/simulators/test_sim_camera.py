from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from edge_agent.decode import decode_image
from simulators.camera import (
    HEIGHT,
    QUIET_ZONE_MODULES,
    WIDTH,
    Placement,
    SyntheticConveyor,
    demo_urls,
    label_size,
    render_frame,
    render_qr,
)

START = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def test_demo_urls_are_distinct_digital_links_of_about_60_characters() -> None:
    urls = demo_urls(50)
    assert len(set(urls)) == 50
    assert all(u.startswith("https://id.yima.example/01/09506000134352/21/") for u in urls)
    assert {len(u) for u in urls} == {65}
    assert demo_urls(2, start=10) == urls[10:12]


def test_render_qr_has_a_white_quiet_zone_of_four_modules() -> None:
    image = render_qr("https://id.yima.example/c/0W9R5TFEKGZV5QEZ5Z51", module_px=3)
    border = QUIET_ZONE_MODULES * 3
    assert image.dtype == np.uint8
    assert image.shape[0] == image.shape[1]
    assert (image[:border, :] == 255).all()
    assert (image[-border:, :] == 255).all()
    assert (image[:, :border] == 255).all()
    assert (image[:, -border:] == 255).all()
    assert image[border, border] == 0  # the finder pattern's corner


def test_conveyor_frames_are_deterministic_for_a_seed() -> None:
    a = SyntheticConveyor(demo_urls(3), seed=7, start=START)
    b = SyntheticConveyor(demo_urls(3), seed=7, start=START)
    c = SyntheticConveyor(demo_urls(3), seed=8, start=START)
    for _ in range(10):
        fa, fb, fc = a.read(), b.read(), c.read()
        assert fa is not None and fb is not None and fc is not None
        assert np.array_equal(fa.image, fb.image)
    assert not np.array_equal(fa.image, fc.image)


def test_conveyor_timestamps_advance_by_one_over_fps_and_the_source_ends() -> None:
    conveyor = SyntheticConveyor(demo_urls(2), fps=25.0, step=80, start=START)
    frames = []
    while (frame := conveyor.read()) is not None:
        frames.append(frame)
    assert len(frames) == conveyor.total_frames
    assert [f.index for f in frames] == list(range(conveyor.total_frames))
    assert frames[1].at - frames[0].at == timedelta(seconds=0.04)
    assert frames[-1].at == START + timedelta(seconds=(len(frames) - 1) / 25.0)
    assert frames[0].image.shape == (HEIGHT, WIDTH)
    assert frames[0].image.dtype == np.uint8
    assert conveyor.read() is None
    assert conveyor.placements(conveyor.total_frames - 1) != []  # the last carton is leaving
    assert conveyor.placements(conveyor.total_frames) == []


def test_close_ends_the_source() -> None:
    conveyor = SyntheticConveyor(demo_urls(2), start=START)
    assert conveyor.read() is not None
    conveyor.close()
    assert conveyor.read() is None


def test_each_label_is_in_view_for_consecutive_frames_and_at_most_4_at_once() -> None:
    codes = demo_urls(6)
    conveyor = SyntheticConveyor(codes, step=40, start=START)
    visible_in: dict[str, list[int]] = {c: [] for c in codes}
    for index in range(conveyor.total_frames):
        shown = conveyor.fully_visible(index)
        assert len(shown) <= 4
        for code in shown:
            visible_in[code].append(index)
    for frames in visible_in.values():
        assert len(frames) >= 5
        assert frames == list(range(frames[0], frames[0] + len(frames)))  # consecutive


@pytest.mark.parametrize("backend", ["zxingcpp", "pyzbar"])
def test_both_decoders_read_every_fully_visible_label(backend: str) -> None:
    codes = demo_urls(5)
    conveyor = SyntheticConveyor(codes, step=100, start=START)
    expected = read = 0
    while (frame := conveyor.read()) is not None:
        want = set(conveyor.fully_visible(frame.index))
        got = {r.text for r in decode_image(frame.image, backend)}
        assert want <= got, f"frame {frame.index}: missed {want - got}"
        assert got <= set(codes)
        expected += len(want)
        read += len(want & got)
    assert read == expected > 0


def test_render_frame_draws_the_given_codes_at_the_given_places() -> None:
    texts = demo_urls(4)
    side = label_size(texts[0])
    placements = [Placement(t, 40 + i * 310, 100 + 40 * i) for i, t in enumerate(texts)]
    image = render_frame(placements, seed=3)
    assert image.shape == (HEIGHT, WIDTH)
    reads = decode_image(image, "zxingcpp")
    assert {r.text for r in reads} == set(texts)
    for read in reads:
        p = next(p for p in placements if p.text == read.text)
        assert read.center is not None
        assert read.center[0] == pytest.approx(p.x + side / 2, abs=4)
        assert read.center[1] == pytest.approx(p.y + side / 2, abs=4)


def test_a_repeated_text_is_two_cartons_with_the_same_label() -> None:
    code = demo_urls(1)[0]
    conveyor = SyntheticConveyor([code, code], pitch=400, start=START)
    both = [i for i in range(conveyor.total_frames) if conveyor.fully_visible(i) == [code, code]]
    assert both, "the two cartons should be in view together at some point"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fps": 0}, "fps expected a positive number, got 0"),
        ({"step": 0}, "step expected at least 1 pixel per frame, got 0"),
        ({"pitch": 100}, "pitch expected at least 228 px so cartons do not overlap, got 100"),
        ({"height": 100}, "labels of 180 px do not fit a frame 100 px high"),
        ({"width": 0}, "frame size expected positive, got 0x720"),
    ],
)
def test_bad_conveyor_options_are_refused(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError) as info:
        SyntheticConveyor(demo_urls(1), **kwargs)
    assert str(info.value) == message


def test_an_empty_conveyor_has_no_frames() -> None:
    conveyor = SyntheticConveyor([], start=START)
    assert conveyor.total_frames == 0
    assert conveyor.read() is None

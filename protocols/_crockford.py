"""Crockford base32: digits and letters without I, L, O, U, case-insensitive, hyphens ignored.

The alphabet survives bad handwriting, phone keyboards and OCR; its mod-37 check symbol catches
every single-character substitution and every adjacent transposition.
"""

from __future__ import annotations

import base64

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_ALPHABET = ALPHABET + "*~$=U"
_RFC4648 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TO_CROCKFORD = bytes.maketrans(_RFC4648.encode(), ALPHABET.encode())
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
# Crockford decoding rules: O reads as 0, I and L read as 1.
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_CHECK_VALUE = {ch: i for i, ch in enumerate(CHECK_ALPHABET)}


def normalize(text: str) -> str:
    """Upper-case, drop hyphens and spaces, apply the O/I/L aliases."""
    return text.upper().replace("-", "").replace(" ", "").translate(_ALIASES)


def decode(symbols: str) -> int:
    """Value of normalized symbols; raises ValueError naming the first bad character."""
    value = 0
    for position, ch in enumerate(symbols):
        digit = _VALUE.get(ch)
        if digit is None:
            raise ValueError(f"character {ch!r} at position {position + 1}")
        value = (value << 5) | digit
    return value


def encode_100(value: int) -> str:
    """Exactly 20 symbols for a value below 2**100 (C-level base32, no Python loop per symbol)."""
    return base64.b32encode((value << 4).to_bytes(13, "big"))[:20].translate(_TO_CROCKFORD).decode()


def check_symbol(value: int) -> str:
    return CHECK_ALPHABET[value % 37]


def check_value(symbol: str) -> int | None:
    return _CHECK_VALUE.get(symbol)

"""Crockford base32: digits and letters without I, L, O, U, case-insensitive, hyphens ignored.

The alphabet survives bad handwriting, phone keyboards and OCR; its mod-37 check symbol catches
every single-character substitution and every adjacent transposition.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_ALPHABET = ALPHABET + "*~$=U"
SYMBOLS_100 = 20
_RFC4648 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TO_CROCKFORD = bytes.maketrans(_RFC4648.encode(), ALPHABET.encode())
_ALPHABET_BYTES = ALPHABET.encode()
# int(text, 32) reads the digits 0-9A-V: Crockford symbols translate onto them one to one.
_TO_INT_DIGITS = bytes.maketrans(_ALPHABET_BYTES, b"0123456789ABCDEFGHIJKLMNOPQRSTUV")
_VALUE_TO_SYMBOL = bytes.maketrans(bytes(range(32)), _ALPHABET_BYTES)
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
# Crockford decoding rules: O reads as 0, I and L read as 1.
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_CHECK_VALUE = {ch: i for i, ch in enumerate(CHECK_ALPHABET)}


def normalize(text: str) -> str:
    """Upper-case, drop hyphens and spaces, apply the O/I/L aliases."""
    return text.upper().replace("-", "").replace(" ", "").translate(_ALIASES)


def decode(symbols: str) -> int:
    """Value of normalized symbols; raises ValueError naming the first bad character."""
    raw = symbols.encode("ascii", "replace")
    # Only symbols of the alphabet left (no sign, space or "_" that int() would accept):
    # one int() call in C instead of a Python loop over the symbols.
    if raw and not raw.translate(None, _ALPHABET_BYTES):
        return int(raw.translate(_TO_INT_DIGITS), 32)
    value = 0
    for position, ch in enumerate(symbols):
        digit = _VALUE.get(ch)
        if digit is None:
            raise ValueError(f"character {ch!r} at position {position + 1}")
        value = (value << 5) | digit
    return value


def encode_100(value: int) -> str:
    """Exactly 20 symbols for a value below 2**100 (use :func:`encode_100_many` for batches)."""
    return base64.b32encode((value << 4).to_bytes(13, "big"))[:20].translate(_TO_CROCKFORD).decode()


def _repeat(pattern: bytes, times: int) -> int:
    return int.from_bytes(pattern * times, "big")


def encode_100_many(records: bytes) -> list[str]:
    """:func:`encode_100` of each 15-byte big-endian record (values below 2**100), in bulk.

    base64.b32encode loops in Python over every 5 bytes, so a batch is encoded with whole-
    buffer big-integer operations instead: each 5-byte chunk (8 symbols) gets a 64-bit slot,
    three mask-and-shift steps move every 5-bit group into a byte of its own, and one
    translate maps the bytes to symbols.
    """
    chunks = len(records) // 5
    slots = bytearray(8 * chunks)
    for j in range(5):
        slots[3 + j :: 8] = records[j::5]
    x = int.from_bytes(slots, "big")
    low20 = _repeat(b"\0\0\0\0\0\x0f\xff\xff", chunks)  # 40 bits -> 2 x 20 in 32-bit halves
    x = (((x >> 20) & low20) << 32) | (x & low20)
    low10 = _repeat(b"\0\0\x03\xff", 2 * chunks)  # 20 bits -> 2 x 10 in 16-bit halves
    x = (((x >> 10) & low10) << 16) | (x & low10)
    low5 = _repeat(b"\0\x1f", 4 * chunks)  # 10 bits -> 2 x 5 in bytes
    x = (((x >> 5) & low5) << 8) | (x & low5)
    text = x.to_bytes(8 * chunks, "big").translate(_VALUE_TO_SYMBOL).decode("ascii")
    # A 15-byte record is 24 symbols; values below 2**100 start with 4 zero symbols.
    return [text[i + 4 : i + 24] for i in range(0, len(text), 24)]


def decode_100_many(serials: Sequence[str]) -> bytes:
    """``decode(s).to_bytes(16, "big")`` of each serial, concatenated; same results, same errors.

    Well-formed 20-symbol serials are decoded with one int(..., 32) over all of them (four
    zero symbols before each make every value 15 whole bytes); anything else goes through
    :func:`decode` one serial at a time, which names the bad character.
    """
    count = len(serials)
    text = "0000" + "0000".join(serials)
    if count and min(map(len, serials)) == max(map(len, serials)) == SYMBOLS_100:
        raw = text.encode("ascii", "replace")
        # Only symbols of the alphabet left: no sign, space or "_" that int() would accept.
        if not raw.translate(None, _ALPHABET_BYTES):
            packed = int(raw.translate(_TO_INT_DIGITS), 32).to_bytes(15 * count, "big")
            blocks = bytearray(16 * count)
            for j in range(15):
                blocks[1 + j :: 16] = packed[j::15]
            return bytes(blocks)
    return b"".join(decode(s).to_bytes(16, "big") for s in serials)


def check_symbol(value: int) -> str:
    return CHECK_ALPHABET[value % 37]


def check_value(symbol: str) -> int | None:
    return _CHECK_VALUE.get(symbol)

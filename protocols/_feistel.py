"""A keyed permutation of 96-bit blocks: a 10-round balanced Feistel network over AES.

Each round function is one AES block encryption of (round number, right half), truncated to
48 bits, so the construction is the Luby-Rackoff PRP with AES as its PRF (FF1, NIST SP 800-38G,
also uses 10 rounds). Bulk calls run one AES-ECB pass over every block of a round and do the
byte shuffling with extended slices and big-integer XOR, so a million blocks cost ten cipher
calls and no per-block Python crypto.
"""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

BLOCK_BYTES = 12
_HALF = 6
_AES = 16
ROUNDS = 10


class Feistel96:
    def __init__(self, key: bytes) -> None:
        # ECB is used as the raw AES block function (one independent block per round input),
        # which is what a Feistel round function needs; it never encrypts a message.
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305
        # An ECB context keeps no state between whole blocks, so one context per thread is
        # reused for every call (creating one costs more than encrypting a block); contexts
        # are not thread-safe, hence per thread.
        self._local = threading.local()

    def _encryptor(self) -> CipherContext:
        context: CipherContext | None = getattr(self._local, "context", None)
        if context is None:
            context = self._local.context = self._cipher.encryptor()
        return context

    def _round_outputs(self, round_no: int, halves: bytes, count: int) -> bytes:
        blocks = bytearray(count * _AES)
        blocks[0::_AES] = bytes([round_no]) * count
        for j in range(_HALF):
            blocks[1 + j :: _AES] = halves[j::_HALF]
        encrypted = self._encryptor().update(bytes(blocks))
        out = bytearray(count * _HALF)
        for j in range(_HALF):
            out[j::_HALF] = encrypted[j::_AES]
        return bytes(out)

    def _run_one(self, block: bytes, rounds: range, *, decrypt: bool) -> bytes:
        """:meth:`_run` for one block, without the slicing that pays off only in bulk."""
        update = self._encryptor().update
        left, right = block[:_HALF], block[_HALF:]
        a, b = (right, left) if decrypt else (left, right)
        pad = bytes(_AES - 1 - _HALF)
        for round_no in rounds:
            f = update(bytes((round_no,)) + b + pad)[:_HALF]
            a, b = b, (int.from_bytes(a, "big") ^ int.from_bytes(f, "big")).to_bytes(_HALF, "big")
        return b + a if decrypt else a + b

    def _run(self, data: bytes, rounds: range, *, decrypt: bool) -> bytes:
        if len(data) == BLOCK_BYTES:
            return self._run_one(data, rounds, decrypt=decrypt)
        if len(data) % BLOCK_BYTES:
            raise ValueError(f"expected a multiple of {BLOCK_BYTES} bytes, got {len(data)}")
        count = len(data) // BLOCK_BYTES
        if count == 0:
            return b""
        size = count * _HALF
        left, right = bytearray(size), bytearray(size)
        for j in range(_HALF):
            left[j::_HALF] = data[j::BLOCK_BYTES]
            right[j::_HALF] = data[_HALF + j :: BLOCK_BYTES]
        a, b = (bytes(right), bytes(left)) if decrypt else (bytes(left), bytes(right))
        for round_no in rounds:
            mixed = int.from_bytes(a, "big") ^ int.from_bytes(
                self._round_outputs(round_no, b, count), "big"
            )
            a, b = b, mixed.to_bytes(size, "big")
        left_out, right_out = (b, a) if decrypt else (a, b)
        out = bytearray(count * BLOCK_BYTES)
        for j in range(_HALF):
            out[j::BLOCK_BYTES] = left_out[j::_HALF]
            out[_HALF + j :: BLOCK_BYTES] = right_out[j::_HALF]
        return bytes(out)

    def encrypt(self, data: bytes) -> bytes:
        """Encrypt a buffer of concatenated 12-byte blocks."""
        return self._run(data, range(ROUNDS), decrypt=False)

    def decrypt(self, data: bytes) -> bytes:
        """Invert :meth:`encrypt` on a buffer of concatenated 12-byte blocks."""
        return self._run(data, range(ROUNDS - 1, -1, -1), decrypt=True)

"""Code identity: serials, keys, printed forms and the one parser that accepts them all.

Serial format 1 (20 Crockford base32 symbols = 100 bits, fits GS1 AI 21 "X..20")::

    bit 99      format flag, 0 = format 1 (1 is reserved for a later format)
    bits 98-96  key id (0-7): which secret sealed this serial, so keys can rotate
    bits 95-0   AES-Feistel permutation, under that key, of
                kind (2 bits) | counter (32 bits) | 62 zero bits

* Unique by construction: the permutation is a bijection and counters are allocated once.
* Unguessable: 96 bits of output of a keyed permutation.
* Keyed check without a database: decrypt and require the 62 zero bits and a known kind.
  A guessed serial passes with probability below 2**-62; it names a real code with
  probability at most (codes issued under the key) / 2**96 <= 2**-64, because a key seals at
  most 2**32 codes (CODES_PER_KEY).
* Human-typed form: the serial in groups of five plus a Crockford mod-37 check symbol.
"""

from __future__ import annotations

import array
import enum
import re
import sys
import urllib.parse
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import biip
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocols import _crockford
from protocols._feistel import BLOCK_BYTES, Feistel96
from protocols.errors import (
    CapacityError,
    CodeCheckError,
    CodeError,
    CodeFormatError,
    ForgedCodeError,
    KeyConfigError,
    UnknownKeyError,
    UnsupportedCodeVersionError,
    WrongKindError,
)

FORMAT_VERSION = 1
SERIAL_LENGTH = 20
MAX_KEY_ID = 7
CODES_PER_KEY = 2**32
MIN_SECRET_BYTES = 16
PIN_DIGITS = 8
SERIAL_ALPHABET = _crockford.ALPHABET

_TAG_BITS = 62
_COUNTER_BITS = 32
_PAYLOAD_BITS = 96
_PAYLOAD_MASK = (1 << _PAYLOAD_BITS) - 1
_TAG_MASK = (1 << _TAG_BITS) - 1
# Bulk sealing and PINs convert between ints and 8-byte words with array() instead of a
# Python loop. "Q" is 8 bytes on every platform CPython supports; refuse to run otherwise.
_U64 = "Q"
if array.array(_U64).itemsize != 8:  # pragma: no cover
    raise ImportError(f"protocols.codes needs 8-byte array({_U64!r}) items")


class CodeKind(enum.IntEnum):
    """What a code is printed on."""

    ITEM = 0
    CASE = 1
    PALLET = 2

    @classmethod
    def parse(cls, value: str) -> CodeKind:
        try:
            return cls[value.upper()]
        except KeyError:
            names = ", ".join(k.name.lower() for k in cls)
            raise CodeFormatError(f"Unknown code kind {value!r}: expected one of {names}") from None


@dataclass(frozen=True)
class Serial:
    """A well-formed serial. Being well formed says nothing about being genuine: see CodeKey."""

    value: str

    @classmethod
    def parse(cls, text: str) -> Serial:
        """Accept the bare serial or the human-typed form (hyphens, lower case, check symbol)."""
        raw = _crockford.normalize(text)
        if len(raw) == SERIAL_LENGTH + 1:
            body, check = raw[:SERIAL_LENGTH], raw[SERIAL_LENGTH]
            number = _decode(body, text)
            if _crockford.check_value(check) is None:
                raise CodeFormatError(
                    f"Invalid check symbol in {text!r}: expected one of "
                    f"{_crockford.CHECK_ALPHABET!r}, got {check!r}"
                )
            expected = _crockford.check_symbol(number)
            if check != expected:
                raise CodeCheckError(
                    f"Check symbol mismatch in {text!r}: expected {expected!r}, got {check!r} "
                    "(probably a typing mistake)"
                )
            return cls._from_number(number)
        if len(raw) != SERIAL_LENGTH:
            raise CodeFormatError(
                f"Invalid serial {text!r}: expected {SERIAL_LENGTH} symbols "
                f"(or {SERIAL_LENGTH + 1} with a check symbol), got {len(raw)}"
            )
        return cls._from_number(_decode(raw, text), raw)

    @classmethod
    def _from_number(cls, number: int, canonical: str | None = None) -> Serial:
        """``canonical``: the 20 normalized symbols ``number`` was decoded from, which are
        already the serial's text (saves encoding it again)."""
        if number >> 99:
            raise UnsupportedCodeVersionError(
                f"Unsupported serial format: expected format {FORMAT_VERSION} (first symbol 0-F), "
                f"got first symbol {_crockford.encode_100(number)[0]!r}"
            )
        return cls(canonical or _crockford.encode_100(number))

    @property
    def number(self) -> int:
        return _crockford.decode(self.value)

    @property
    def version(self) -> int:
        return FORMAT_VERSION

    @property
    def key_id(self) -> int:
        return (self.number >> _PAYLOAD_BITS) & 0b111

    @property
    def check_symbol(self) -> str:
        return _crockford.check_symbol(self.number)

    def as_human(self) -> str:
        """Groups of five and the check symbol, e.g. ``0ABCD-EFGHJ-KMNPQ-RSTVW-7``."""
        v = self.value
        return "-".join([v[0:5], v[5:10], v[10:15], v[15:20], self.check_symbol])

    def __str__(self) -> str:
        return self.value


def _decode(symbols: str, original: str) -> int:
    try:
        return _crockford.decode(symbols)
    except ValueError as exc:
        raise CodeFormatError(
            f"Invalid serial {original!r}: expected Crockford base32 symbols "
            f"({_crockford.ALPHABET}), got {exc}"
        ) from None


@dataclass(frozen=True)
class CodeIdentity:
    """What the keyed check reveals about a genuine serial."""

    serial: Serial
    kind: CodeKind
    counter: int


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=purpose).derive(secret)


class CodeKey:
    """One code secret: seals counters into serials, opens serials back, derives hidden PINs."""

    def __init__(self, key_id: int, secret: bytes) -> None:
        if not 0 <= key_id <= MAX_KEY_ID:
            raise KeyConfigError(f"Invalid key id: expected 0..{MAX_KEY_ID}, got {key_id}")
        if len(secret) < MIN_SECRET_BYTES:
            raise KeyConfigError(
                f"Code key {key_id} is too short: expected at least {MIN_SECRET_BYTES} bytes, "
                f"got {len(secret)}"
            )
        self.key_id = key_id
        # The key id is part of the derivation: one secret configured under two ids must not
        # seal the same payload (one code would then open under two serials).
        self._feistel = Feistel96(_derive(secret, b"yima/v1/serial/key=%d" % key_id))
        # ECB as the raw block function of a PRF over one block per serial, as in _feistel.
        pin_key = _derive(secret, b"yima/v1/pin/key=%d" % key_id)
        # A one-way name of the secret: the hub stores it to catch a wrong key at start-up.
        self.fingerprint = _derive(secret, b"yima/v1/fingerprint/key=%d" % key_id).hex()
        self._pin_cipher = Cipher(algorithms.AES(pin_key), modes.ECB())  # noqa: S305

    def __repr__(self) -> str:  # never show the secret
        return f"CodeKey(key_id={self.key_id})"

    def seal(self, kind: CodeKind, counter: int) -> Serial:
        """The serial of one counter (use :meth:`seal_range` for batches)."""
        return Serial(self.seal_range(kind, counter, 1)[0])

    def seal_range(self, kind: CodeKind, start: int, count: int) -> list[str]:
        """Serials for counters ``start .. start+count-1`` in one cipher pass per round."""
        if start < 0 or count < 0 or start + count > CODES_PER_KEY:
            raise CapacityError(
                f"Counters {start}..{start + count - 1} do not fit key {self.key_id}: "
                f"expected 0..{CODES_PER_KEY - 1}"
            )
        # A plaintext block is (kind | counter) << 62 in 96 bits: its top 64 bits are
        # (kind | counter) << 30 and the rest is zero, so the tops of a range are an
        # arithmetic progression that array() builds in C.
        step = 1 << (_TAG_BITS - 32)
        first = ((int(kind) << _COUNTER_BITS) | start) * step
        tops = array.array(_U64, range(first, first + count * step, step))
        if sys.byteorder == "little":
            tops.byteswap()
        top_bytes = tops.tobytes()
        plain = bytearray(BLOCK_BYTES * count)
        for j in range(8):
            plain[j::BLOCK_BYTES] = top_bytes[j::8]
        sealed = self._feistel.encrypt(bytes(plain))
        # 15-byte records for the encoder: two zero bytes, the key id, the 96 sealed bits.
        records = bytearray(15 * count)
        records[2::15] = bytes([self.key_id]) * count
        for j in range(BLOCK_BYTES):
            records[3 + j :: 15] = sealed[j::BLOCK_BYTES]
        return _crockford.encode_100_many(bytes(records))

    def open(self, serial: Serial) -> CodeIdentity:
        """Run the keyed check; raise ForgedCodeError unless this key sealed the serial."""
        number = serial.number
        if (number >> _PAYLOAD_BITS) & 0b111 != self.key_id:
            raise UnknownKeyError(
                f"Serial {serial.value} names key {serial.key_id}, expected key {self.key_id}"
            )
        payload = (number & _PAYLOAD_MASK).to_bytes(BLOCK_BYTES, "big")
        return self._identity(serial, self._feistel.decrypt(payload))

    def open_many(self, serials: Sequence[Serial]) -> list[CodeIdentity | CodeError]:
        """:meth:`open` of each serial in one cipher pass per round (an ingest transaction
        checks thousands); each result is the identity or the error ``open`` would raise."""
        results: list[CodeIdentity | CodeError | None] = [None] * len(serials)
        payloads: list[bytes] = []
        mine: list[int] = []
        for i, serial in enumerate(serials):
            number = serial.number
            if (number >> _PAYLOAD_BITS) & 0b111 != self.key_id:
                results[i] = UnknownKeyError(
                    f"Serial {serial.value} names key {serial.key_id}, expected key {self.key_id}"
                )
                continue
            payloads.append((number & _PAYLOAD_MASK).to_bytes(BLOCK_BYTES, "big"))
            mine.append(i)
        plain = self._feistel.decrypt(b"".join(payloads))
        for n, i in enumerate(mine):
            try:
                results[i] = self._identity(
                    serials[i], plain[n * BLOCK_BYTES : (n + 1) * BLOCK_BYTES]
                )
            except ForgedCodeError as exc:
                results[i] = exc
        return [r for r in results if r is not None]

    @staticmethod
    def _identity(serial: Serial, block: bytes) -> CodeIdentity:
        plain = int.from_bytes(block, "big")
        kind_value = plain >> (_TAG_BITS + _COUNTER_BITS)
        if plain & _TAG_MASK or kind_value > max(CodeKind):
            raise ForgedCodeError(f"Serial {serial.value} fails the keyed check")
        counter = (plain >> _TAG_BITS) & ((1 << _COUNTER_BITS) - 1)
        return CodeIdentity(serial=serial, kind=CodeKind(kind_value), counter=counter)

    def pins(self, serials: Sequence[str]) -> list[str]:
        """The hidden (scratch-off) PIN of each serial, derived, so it is never stored."""
        blocks = _crockford.decode_100_many(serials)
        out = self._pin_cipher.encryptor().update(blocks)
        # The PIN is the first 8 bytes of each output block, big-endian, mod 10**PIN_DIGITS;
        # gather them with extended slices and let array() turn them into ints in C.
        heads = bytearray(len(out) // 2)
        for j in range(8):
            heads[j::8] = out[j::16]
        firsts = array.array(_U64, bytes(heads))
        if sys.byteorder == "little":
            firsts.byteswap()
        modulus, template = 10**PIN_DIGITS, f"%0{PIN_DIGITS}d"
        return [template % (v % modulus) for v in firsts]

    def pin(self, serial: Serial) -> str:
        return self.pins([serial.value])[0]


class Keyring:
    """Every configured code key, and the one new batches are sealed with."""

    def __init__(self, keys: Iterable[CodeKey], active_key_id: int) -> None:
        self._keys: dict[int, CodeKey] = {}
        for key in keys:
            if key.key_id in self._keys:
                raise KeyConfigError(f"Code key {key.key_id} is configured twice")
            self._keys[key.key_id] = key
        if active_key_id not in self._keys:
            raise KeyConfigError(
                f"Active code key {active_key_id} is not configured: "
                f"expected one of {sorted(self._keys)}"
            )
        self.active = self._keys[active_key_id]

    @classmethod
    def from_secrets(cls, secrets: Mapping[int, bytes], active_key_id: int) -> Keyring:
        return cls((CodeKey(k, s) for k, s in secrets.items()), active_key_id)

    @property
    def keys(self) -> list[CodeKey]:
        return [self._keys[k] for k in sorted(self._keys)]

    def key(self, key_id: int) -> CodeKey:
        try:
            return self._keys[key_id]
        except KeyError:
            raise UnknownKeyError(f"Code key {key_id} is not configured") from None

    def open(self, serial: Serial) -> CodeIdentity:
        """Keyed check with whichever key the serial names."""
        return self.key(serial.key_id).open(serial)

    def open_many(self, serials: Sequence[Serial]) -> list[CodeIdentity | CodeError]:
        """:meth:`open` of each serial, in bulk per key; errors are returned, not raised."""
        results: list[CodeIdentity | CodeError | None] = [None] * len(serials)
        by_key: dict[int, list[int]] = {}
        for i, serial in enumerate(serials):
            by_key.setdefault(serial.key_id, []).append(i)
        for key_id, positions in by_key.items():
            key = self._keys.get(key_id)
            if key is None:
                for i in positions:
                    results[i] = UnknownKeyError(f"Code key {key_id} is not configured")
                continue
            for i, result in zip(
                positions, key.open_many([serials[i] for i in positions]), strict=True
            ):
                results[i] = result
        return [r for r in results if r is not None]


@dataclass(frozen=True)
class CodeRef:
    """A printed code as read: its serial and, for Digital Link or element strings, the GTIN."""

    serial: Serial
    gtin: str | None = None

    def as_url(self, resolver: str) -> str:
        """The printed URL: GS1 Digital Link when there is a GTIN, the short form otherwise."""
        return code_url(resolver, self.serial.value, self.gtin)

    def as_element_string(self) -> str:
        if self.gtin is None:
            raise CodeFormatError(f"Serial {self.serial.value} has no GTIN: no element string")
        return f"(01){self.gtin}(21){self.serial.value}"


def normalize_gtin(gtin: str) -> str:
    """GTIN-8/12/13/14 → GTIN-14, checked by biip."""
    try:
        return Gtin.parse(gtin).as_gtin_14()
    except biip.ParseError as exc:
        raise CodeFormatError(str(exc)) from None


def human_forms(serials: Sequence[str]) -> list[str]:
    """:meth:`Serial.as_human` of many well-formed serials, without an object per serial
    (printer exports write millions)."""
    table = _HUMAN_DIGITS
    alphabet = _crockford.CHECK_ALPHABET
    return [
        f"{v[0:5]}-{v[5:10]}-{v[10:15]}-{v[15:20]}-"
        f"{alphabet[int(v.translate(table), 32) % 37]}"
        for v in serials
    ]


_HUMAN_DIGITS = str.maketrans(_crockford.ALPHABET, "0123456789ABCDEFGHIJKLMNOPQRSTUV")


def code_url(resolver: str, serial: str, gtin: str | None = None) -> str:
    """Build the printed URL for a serial. ``resolver`` includes the scheme, e.g. https://y.cn."""
    base = resolver.rstrip("/")
    if gtin is None:
        return f"{base}/c/{serial}"
    return f"{base}/01/{gtin}/21/{serial}"


_SHORT_PATH = re.compile(r"^/c/([^/]+)/?$")
_SYMBOLOGY_PREFIX = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
# An unbracketed element string starts with AI 01 and a 14-digit GTIN. Serials may start with
# "01" too: their human form has a separator at position 5 and their compact forms have at
# most 21 symbols, so neither is taken for an element string.
_BARE_ELEMENT_STRING = re.compile(r"^01[0-9]{14}")


def parse_code(text: str) -> CodeRef:
    """Parse any printed form: URL (short or Digital Link), GS1 element string, bare serial.

    Raises CodeFormatError (or a subclass) saying what was expected and what was found, and
    nothing else, whatever the input. This is the format check only: :func:`check_code`
    runs every check.
    """
    if not isinstance(text, str):
        raise CodeFormatError(f"Invalid code: expected text, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise CodeFormatError("Empty code: expected a URL, a GS1 element string or a serial")
    if len(stripped) > 512:
        raise CodeFormatError(
            f"Code text too long: expected at most 512 characters, got {len(stripped)}"
        )
    lowered = stripped.lower()
    if lowered.startswith(("http://", "https://")):
        return _parse_url(stripped)
    if (
        stripped.startswith(("(", "\x1d"))
        or _SYMBOLOGY_PREFIX.match(stripped)
        or (_BARE_ELEMENT_STRING.match(stripped) and len(stripped) > SERIAL_LENGTH + 1)
    ):
        return _parse_element_string(stripped)
    return CodeRef(Serial.parse(stripped))


def _parse_url(url: str) -> CodeRef:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise CodeFormatError(f"Invalid code URL {url!r}: {exc}") from None
    path = urllib.parse.unquote(parts.path)
    short = _SHORT_PATH.match(path)
    if short:
        return CodeRef(Serial.parse(short.group(1)))
    if "/01/" in path or path.startswith("/01/"):
        try:
            link = GS1DigitalLinkURI.parse(url)
        except (biip.ParseError, ValueError) as exc:
            raise CodeFormatError(f"Invalid GS1 Digital Link {url!r}: {exc}") from None
        return _from_element_strings(link.element_strings, url)
    raise CodeFormatError(
        f"Unrecognized code URL {url!r}: expected a path /c/<serial> or /01/<GTIN>/21/<serial>"
    )


def _parse_element_string(text: str) -> CodeRef:
    try:
        if text.startswith("("):
            message = GS1Message.parse_hri(text)
        else:
            result = biip.parse(text)
            if result.gs1_message is None:
                raise CodeFormatError(
                    f"Invalid GS1 element string {text!r}: {result.gs1_message_error}"
                )
            message = result.gs1_message
    except (biip.ParseError, ValueError) as exc:
        # biip parses some symbology payloads as URLs, and urllib raises ValueError on
        # malformed ones (e.g. "]Q3https://["): still just a malformed code.
        raise CodeFormatError(f"Invalid GS1 element string {text!r}: {exc}") from None
    return _from_element_strings(message.element_strings, text)


def _from_element_strings(elements: object, original: str) -> CodeRef:
    gtin_es = elements.get(ai="01")  # type: ignore[attr-defined]
    serial_es = elements.get(ai="21")  # type: ignore[attr-defined]
    if gtin_es is None or serial_es is None:
        raise CodeFormatError(
            f"Invalid code {original!r}: expected GTIN (AI 01) and serial (AI 21)"
        )
    if gtin_es.gtin is None:
        raise CodeFormatError(f"Invalid code {original!r}: {gtin_es.gtin_error}")
    return CodeRef(Serial.parse(serial_es.value), gtin=gtin_es.gtin.as_gtin_14())


@dataclass(frozen=True)
class CheckedCode:
    """A code that passed every check this side could run (see :func:`check_code`)."""

    ref: CodeRef
    identity: CodeIdentity | None = None  # None when checked without keys (station, PDA)

    @property
    def serial(self) -> str:
        return self.ref.serial.value

    @property
    def gtin(self) -> str | None:
        return self.ref.gtin

    @property
    def kind(self) -> CodeKind | None:
        return None if self.identity is None else self.identity.kind


def check_code(
    text: str | bytes,
    keyring: Keyring | None = None,
    *,
    kinds: Collection[CodeKind] | None = None,
) -> CheckedCode:
    """The one way to turn any text (or bytes, as read off a wire) into a checked code.

    Runs the format check, then the keyed check when a ``keyring`` is given, then the kind
    when ``kinds`` is given (which needs the keyring). Raises only CodeError subclasses:
    CodeFormatError (not a printed form of a code; CodeCheckError for a typing mistake),
    ForgedCodeError (fails the keyed check; UnknownKeyError for a key id not configured),
    WrongKindError (a genuine code of another kind).
    """
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CodeFormatError(f"Invalid code: expected UTF-8 text, got {exc}") from None
    ref = parse_code(text)
    if keyring is None:
        if kinds is not None:
            raise ValueError("check_code: checking the kind needs a keyring")
        return CheckedCode(ref)
    identity = keyring.open(ref.serial)
    if kinds is not None and identity.kind not in kinds:
        expected = " or ".join(k.name.lower() for k in sorted(kinds))
        raise WrongKindError(
            f"Code {ref.serial.value} is a {identity.kind.name.lower()} code: expected {expected}"
        )
    return CheckedCode(ref, identity)


def check_codes(texts: Sequence[str | bytes], keyring: Keyring) -> list[CheckedCode | CodeError]:
    """:func:`check_code` of each text with the keyed check run in bulk: the result for each
    text is its checked code or the CodeError ``check_code`` would raise."""
    results: list[CheckedCode | CodeError | None] = [None] * len(texts)
    refs: list[tuple[int, CodeRef]] = []
    for i, text in enumerate(texts):
        try:
            refs.append((i, check_code(text)))  # the format check alone
        except CodeError as exc:
            results[i] = exc
    opened = keyring.open_many([checked.ref.serial for _, checked in refs])
    for (i, checked), identity in zip(refs, opened, strict=True):
        results[i] = (
            identity if isinstance(identity, CodeError) else CheckedCode(checked.ref, identity)
        )
    return [r for r in results if r is not None]

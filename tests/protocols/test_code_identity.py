"""Code identity: format, keyed check, printed forms, PINs and the Feistel permutation.

The reference functions below re-implement the documented construction one block at a time
(the module docstring of ``protocols.codes``), so the bulk code is checked against an
independent oracle, and the golden vectors pin the format that printed codes depend on.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import example, given, settings
from hypothesis import strategies as st

from protocols import _crockford
from protocols._feistel import Feistel96
from protocols.codes import (
    CODES_PER_KEY,
    CodeIdentity,
    CodeKey,
    CodeKind,
    CodeRef,
    Keyring,
    Serial,
    code_url,
    normalize_gtin,
    parse_code,
)
from protocols.errors import (
    CapacityError,
    CodeCheckError,
    CodeFormatError,
    ForgedCodeError,
    KeyConfigError,
    UnknownKeyError,
    UnsupportedCodeVersionError,
)

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U"
RESOLVER = "https://y.example"
GTIN = "09506000134352"
SECRETS = {i: hashlib.sha256(f"yima test key {i}".encode()).digest() for i in range(8)}
RING = Keyring.from_secrets(SECRETS, active_key_id=1)

FAST = settings(max_examples=150, deadline=None)

key_ids = st.integers(0, 7)
kinds = st.sampled_from(CodeKind)
counters = st.integers(0, CODES_PER_KEY - 1)


# --- independent reference implementation (one block at a time, from the documentation) ---


def ref_encode(value: int) -> str:
    return "".join(ALPHABET[(value >> (5 * (19 - i))) & 31] for i in range(20))


def ref_decode(symbols: str) -> int:
    value = 0
    for ch in symbols:
        value = value * 32 + ALPHABET.index(ch)
    return value


def ref_check(symbols: str) -> str:
    return CHECK_ALPHABET[ref_decode(symbols) % 37]


def ref_derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=purpose).derive(secret)


def ref_feistel(key: bytes, block: bytes, *, decrypt: bool = False) -> bytes:
    aes = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305

    def f(round_no: int, half: bytes) -> bytes:
        return aes.update(bytes([round_no]) + half + bytes(9))[:6]

    left, right = block[:6], block[6:]
    if not decrypt:
        for r in range(10):
            left, right = right, bytes(a ^ b for a, b in zip(left, f(r, right), strict=True))
    else:
        for r in reversed(range(10)):
            left, right = bytes(a ^ b for a, b in zip(right, f(r, left), strict=True)), left
    return left + right


def ref_seal(key_id: int, secret: bytes, kind: int, counter: int) -> str:
    plain = (((kind << 32) | counter) << 62).to_bytes(12, "big")
    sealed = ref_feistel(ref_derive(secret, b"yima/v1/serial/key=%d" % key_id), plain)
    return ref_encode((key_id << 96) | int.from_bytes(sealed, "big"))


def ref_pin(secret: bytes, serial: str) -> str:
    key_id = (ref_decode(serial) >> 96) & 7
    purpose = b"yima/v1/pin/key=%d" % key_id
    aes = Cipher(algorithms.AES(ref_derive(secret, purpose)), modes.ECB()).encryptor()  # noqa: S305
    out = aes.update(ref_decode(serial).to_bytes(16, "big"))
    return f"{int.from_bytes(out[:8], 'big') % 10**8:08d}"


def human(serial: str) -> str:
    return "-".join([serial[0:5], serial[5:10], serial[10:15], serial[15:20], ref_check(serial)])


def gs1_check_digit(digits: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str(-total % 10)


# --- golden vectors: printed codes live for years, so the format must never drift ---

GOLDEN_SECRET = bytes(range(32))
GOLDEN = [
    (0, CodeKind.ITEM, 0, "04D3HA8S1ZNMDH7Q2BH5", "04D3H-A8S1Z-NMDH7-Q2BH5-U", "38888848"),
    (0, CodeKind.CASE, 1, "1WAMAQAJVPD1M5M1E777", "1WAMA-QAJVP-D1M5M-1E777-N", "40769361"),
    (
        0,
        CodeKind.PALLET,
        2**32 - 1,
        "0J8C95MSANFNTYMT4ZE2",
        "0J8C9-5MSAN-FNTYM-T4ZE2-9",
        "99689734",
    ),
    (7, CodeKind.ITEM, 0, "FJJ0H546NF9ADV0T8FYE", "FJJ0H-546NF-9ADV0-T8FYE-V", "01389594"),
    (7, CodeKind.CASE, 1, "EKPMVZ139JWWS9QG76KT", "EKPMV-Z139J-WWS9Q-G76KT-*", "38684330"),
]


def test_same_secret_under_two_key_ids_seals_different_payloads() -> None:
    a = CodeKey(0, GOLDEN_SECRET).seal(CodeKind.ITEM, 0).value
    b = CodeKey(7, GOLDEN_SECRET).seal(CodeKind.ITEM, 0).value
    assert a[1:] != b[1:]
    with pytest.raises(ForgedCodeError):
        CodeKey(7, GOLDEN_SECRET).open(Serial("E" + a[1:]))


@pytest.mark.parametrize(("key_id", "kind", "counter", "serial", "human_form", "pin"), GOLDEN)
def test_golden_vectors(
    key_id: int, kind: CodeKind, counter: int, serial: str, human_form: str, pin: str
) -> None:
    key = CodeKey(key_id, GOLDEN_SECRET)
    sealed = key.seal(kind, counter)
    assert sealed == Serial(serial)
    assert sealed.as_human() == human_form
    assert key.pin(sealed) == pin
    assert key.seal_range(kind, counter, 1) == [serial]
    assert key.pins([serial]) == [pin]
    assert key.open(sealed) == CodeIdentity(serial=sealed, kind=kind, counter=counter)


@FAST
@given(key_ids, kinds, counters)
def test_seal_and_pin_match_the_reference_construction(
    key_id: int, kind: CodeKind, counter: int
) -> None:
    key = RING.key(key_id)
    serial = key.seal(kind, counter)
    assert serial.value == ref_seal(key_id, SECRETS[key_id], int(kind), counter)
    assert key.pin(serial) == ref_pin(SECRETS[key_id], serial.value)


# --- round trips through every accepted form ---


@FAST
@given(key_ids, kinds, counters, st.sampled_from(["O", "o"]), st.sampled_from(["I", "i", "L", "l"]))
def test_sealed_serial_round_trips_through_every_form(
    key_id: int, kind: CodeKind, counter: int, zero_alias: str, one_alias: str
) -> None:
    key = RING.key(key_id)
    serial = key.seal(kind, counter)
    value = serial.value
    assert len(value) == 20
    assert set(value) <= set(ALPHABET)
    assert serial.key_id == key_id
    assert serial.version == 1
    assert str(serial) == value
    assert RING.open(serial) == CodeIdentity(serial=serial, kind=kind, counter=counter)
    assert key.open(serial) == CodeIdentity(serial=serial, kind=kind, counter=counter)

    assert serial.as_human() == human(value)
    assert serial.check_symbol == ref_check(value)
    aliased = serial.as_human().replace("0", zero_alias).replace("1", one_alias)
    for text in [
        value,
        value.lower(),
        serial.as_human(),
        serial.as_human().lower(),
        serial.as_human().replace("-", ""),
        serial.as_human().replace("-", " "),
        aliased,
        f"  {value}",
    ]:
        assert Serial.parse(text) == serial, text
        assert parse_code(text) == CodeRef(serial), text
    # Scanners end a read with CR/LF or tab: parse_code strips them (Serial.parse does not).
    assert parse_code(f"\t{value}\r\n") == CodeRef(serial)


@FAST
@given(st.integers(0, 2**99 - 1), st.integers(0, 10**13 - 1))
@example(number=ref_decode("01234567890123456789"), gtin_body=950600013435)
@example(number=ref_decode("0109506000134352ABCD"), gtin_body=950600013435)
@example(number=0, gtin_body=0)
@example(number=2**99 - 1, gtin_body=10**13 - 1)
def test_parse_code_accepts_every_printed_form(number: int, gtin_body: int) -> None:
    # Any well-formed serial (genuine or not): parse_code is the format check only.
    value = ref_encode(number)
    serial = Serial(value)
    gtin = f"{gtin_body:013d}" + gs1_check_digit(f"{gtin_body:013d}")
    raw = "\x1d01" + gtin + "21" + value
    with_gtin = CodeRef(serial, gtin)
    forms = {
        value: CodeRef(serial),
        human(value): CodeRef(serial),
        human(value).replace("-", ""): CodeRef(serial),
        code_url(RESOLVER, value): CodeRef(serial),
        code_url(RESOLVER + "/", value): CodeRef(serial),
        code_url(RESOLVER, value) + "/": CodeRef(serial),
        code_url(RESOLVER, human(value)): CodeRef(serial),
        code_url(RESOLVER, value, gtin): with_gtin,
        with_gtin.as_url(RESOLVER): with_gtin,
        with_gtin.as_element_string(): with_gtin,
        raw: with_gtin,
        "01" + gtin + "21" + value: with_gtin,
        "]d2" + raw: with_gtin,
        "]Q3" + raw: with_gtin,
        "]C1" + raw: with_gtin,
        "\x1d01" + gtin + "10LOT7\x1d21" + value: with_gtin,
    }
    assert code_url(RESOLVER, value) == f"{RESOLVER}/c/{value}"
    assert code_url(RESOLVER, value, gtin) == f"{RESOLVER}/01/{gtin}/21/{value}"
    assert with_gtin.as_element_string() == f"(01){gtin}(21){value}"
    for text, expected in forms.items():
        assert parse_code(text) == expected, repr(text)


def test_human_form_of_serials_starting_with_01_is_not_taken_for_an_element_string() -> None:
    # Regression: "01" is also GS1 AI (01); about 1 in 64 serials of key 0 start with it.
    key = RING.key(0)
    serials = [s for s in key.seal_range(CodeKind.ITEM, 0, 5000) if s.startswith("01")]
    assert len(serials) > 20
    for value in serials:
        serial = Serial(value)
        for text in (value, serial.as_human(), serial.as_human().replace("-", "")):
            assert parse_code(text) == CodeRef(serial), text
        assert RING.open(parse_code(serial.as_human()).serial).counter >= 0


def test_as_url_without_gtin_is_the_short_form() -> None:
    serial = RING.active.seal(CodeKind.ITEM, 5)
    assert CodeRef(serial).as_url("https://y.example/") == f"https://y.example/c/{serial.value}"


def test_element_string_needs_a_gtin() -> None:
    serial = RING.active.seal(CodeKind.ITEM, 5)
    with pytest.raises(CodeFormatError) as info:
        CodeRef(serial).as_element_string()
    assert str(info.value) == f"Serial {serial.value} has no GTIN: no element string"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9506000134352", "09506000134352"),
        ("09506000134352", "09506000134352"),
        ("96385074", "00000096385074"),
        ("614141000036", "00614141000036"),
    ],
)
def test_normalize_gtin(text: str, expected: str) -> None:
    assert normalize_gtin(text) == expected


def test_normalize_gtin_rejects_a_bad_check_digit() -> None:
    with pytest.raises(CodeFormatError) as info:
        normalize_gtin("9506000134353")
    assert str(info.value) == "Invalid GTIN check digit for '9506000134353': Expected 2, got 3."


@pytest.mark.parametrize(
    ("text", "kind"),
    [("item", CodeKind.ITEM), ("CASE", CodeKind.CASE), ("Pallet", CodeKind.PALLET)],
)
def test_code_kind_parse(text: str, kind: CodeKind) -> None:
    assert CodeKind.parse(text) is kind


def test_code_kind_parse_rejects_unknown_kinds() -> None:
    with pytest.raises(CodeFormatError) as info:
        CodeKind.parse("box")
    assert str(info.value) == "Unknown code kind 'box': expected one of item, case, pallet"


# --- error detection: typing mistakes and forgeries ---

SAMPLE_SERIALS = [
    RING.key(0).seal(CodeKind.ITEM, 0),
    RING.key(3).seal(CodeKind.CASE, 123_456_789),
    RING.key(7).seal(CodeKind.PALLET, CODES_PER_KEY - 1),
]


def assert_substitution_detected(serial: Serial, position: int, symbol: str) -> None:
    value = serial.value
    changed = value[:position] + symbol + value[position + 1 :]
    typed = human(changed)[:-1] + serial.check_symbol
    with pytest.raises(CodeCheckError) as check:
        Serial.parse(typed)
    assert str(check.value) == (
        f"Check symbol mismatch in {typed!r}: expected {ref_check(changed)!r}, "
        f"got {serial.check_symbol!r} (probably a typing mistake)"
    )
    if ALPHABET.index(changed[0]) >= 16:
        with pytest.raises(UnsupportedCodeVersionError) as version:
            Serial.parse(changed)
        assert str(version.value) == (
            "Unsupported serial format: expected format 1 (first symbol 0-F), "
            f"got first symbol {changed[0]!r}"
        )
        return
    with pytest.raises(ForgedCodeError) as forged:
        RING.open(Serial.parse(changed))
    # Every key is configured, so this is the keyed check failing, not an unknown key.
    assert type(forged.value) is ForgedCodeError
    assert str(forged.value) == f"Serial {changed} fails the keyed check"


@pytest.mark.parametrize("serial", SAMPLE_SERIALS, ids=lambda s: s.value)
def test_every_single_substitution_is_detected(serial: Serial) -> None:
    tried = 0
    for position in range(20):
        for symbol in ALPHABET:
            if symbol != serial.value[position]:
                assert_substitution_detected(serial, position, symbol)
                tried += 1
    assert tried == 20 * 31


@FAST
@given(key_ids, kinds, counters, st.integers(0, 19), st.integers(1, 31))
def test_any_single_substitution_is_detected(
    key_id: int, kind: CodeKind, counter: int, position: int, shift: int
) -> None:
    serial = RING.key(key_id).seal(kind, counter)
    symbol = ALPHABET[(ALPHABET.index(serial.value[position]) + shift) % 32]
    assert_substitution_detected(serial, position, symbol)


@pytest.mark.parametrize("serial", SAMPLE_SERIALS, ids=lambda s: s.value)
def test_every_wrong_check_symbol_is_detected(serial: Serial) -> None:
    body = serial.as_human()[:-1]
    for symbol in CHECK_ALPHABET.replace(serial.check_symbol, ""):
        with pytest.raises(CodeCheckError) as info:
            Serial.parse(body + symbol)
        assert str(info.value) == (
            f"Check symbol mismatch in {body + symbol!r}: expected {serial.check_symbol!r}, "
            f"got {symbol!r} (probably a typing mistake)"
        )


def adjacent_transpositions(serial: Serial) -> list[tuple[int, str]]:
    """Every adjacent swap of two different symbols of body + check, in human grouping."""
    compact = serial.value + serial.check_symbol
    out = []
    for i in range(20):
        if compact[i] != compact[i + 1]:
            swapped = compact[:i] + compact[i + 1] + compact[i] + compact[i + 2 :]
            text = "-".join([swapped[0:5], swapped[5:10], swapped[10:15], swapped[15:20]])
            out.append((i, text + "-" + swapped[20]))
    return out


@FAST
@given(key_ids, kinds, counters)
@example(key_id=0, kind=CodeKind.ITEM, counter=0)
def test_adjacent_transpositions_are_detected(key_id: int, kind: CodeKind, counter: int) -> None:
    serial = RING.key(key_id).seal(kind, counter)
    swaps = adjacent_transpositions(serial)
    assert swaps
    for i, text in swaps:
        with pytest.raises(CodeFormatError) as info:
            Serial.parse(text)
        moved_check = text.replace("-", "")[19]
        if i == 19 and moved_check not in ALPHABET:
            # The check symbol moved into the body and is not a serial symbol at all.
            assert type(info.value) is CodeFormatError
            assert str(info.value) == (
                f"Invalid serial {text!r}: expected Crockford base32 symbols ({ALPHABET}), "
                f"got character {moved_check!r} at position 20"
            )
        else:
            assert type(info.value) is CodeCheckError, text


def test_moving_a_hyphen_does_not_change_the_serial() -> None:
    serial = SAMPLE_SERIALS[1]
    text = serial.as_human()
    for i in range(len(text) - 1):
        swapped = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        if "-" in text[i : i + 2]:
            assert Serial.parse(swapped) == serial


def random_well_formed_serials(count: int) -> list[Serial]:
    """Uniform serials with the format flag clear: any key id, any 96-bit payload."""
    data = os.urandom(13 * count)
    return [
        Serial(ref_encode(int.from_bytes(data[i : i + 13], "big") >> 5))
        for i in range(0, len(data), 13)
    ]


def test_random_serials_fail_the_keyed_check() -> None:
    passed = []
    failed = 0
    for serial in random_well_formed_serials(20_000):
        try:
            RING.open(serial)
        except ForgedCodeError as exc:
            assert str(exc) == f"Serial {serial.value} fails the keyed check"
            failed += 1
        else:
            passed.append(serial.value)
    assert passed == []
    assert failed == 20_000


def test_random_serials_naming_unconfigured_keys_are_unknown() -> None:
    ring = Keyring.from_secrets({0: SECRETS[0], 1: SECRETS[1]}, active_key_id=0)
    unknown = 0
    for serial in random_well_formed_serials(2000):
        with pytest.raises(ForgedCodeError) as info:
            ring.open(serial)
        if serial.key_id > 1:
            assert type(info.value) is UnknownKeyError
            assert str(info.value) == f"Code key {serial.key_id} is not configured"
            unknown += 1
        else:
            assert type(info.value) is ForgedCodeError
    assert 1200 < unknown < 1800


# --- keys, capacity and bulk sealing ---


@pytest.mark.parametrize(
    ("start", "count"),
    [(0, 0), (0, 1), (0, 700), (1_000_000, 300), (CODES_PER_KEY - 300, 300)],
)
@pytest.mark.parametrize("kind", list(CodeKind))
def test_seal_range_equals_seal_one_by_one(kind: CodeKind, start: int, count: int) -> None:
    key = RING.key(5)
    serials = key.seal_range(kind, start, count)
    assert serials == [key.seal(kind, c).value for c in range(start, start + count)]
    assert serials == [ref_seal(5, SECRETS[5], kind, c) for c in range(start, start + count)]
    assert len(set(serials)) == count
    for counter, value in zip(range(start, start + count), serials, strict=True):
        assert RING.open(Serial(value)) == CodeIdentity(Serial(value), kind, counter)


def test_serials_are_unique_across_kinds_and_keys() -> None:
    seen: set[str] = set()
    for key_id in (0, 1, 2):
        for kind in CodeKind:
            batch = RING.key(key_id).seal_range(kind, 0, 2000)
            assert seen.isdisjoint(batch)
            seen.update(batch)
    assert len(seen) == 3 * 3 * 2000


@pytest.mark.parametrize(
    ("start", "count", "message"),
    [
        (
            CODES_PER_KEY,
            1,
            "Counters 4294967296..4294967296 do not fit key 2: expected 0..4294967295",
        ),
        (
            CODES_PER_KEY - 1,
            2,
            "Counters 4294967295..4294967296 do not fit key 2: expected 0..4294967295",
        ),
        (0, CODES_PER_KEY + 1, "Counters 0..4294967296 do not fit key 2: expected 0..4294967295"),
        (-1, 1, "Counters -1..-1 do not fit key 2: expected 0..4294967295"),
    ],
)
def test_seal_range_past_capacity(start: int, count: int, message: str) -> None:
    with pytest.raises(CapacityError) as info:
        RING.key(2).seal_range(CodeKind.ITEM, start, count)
    assert str(info.value) == message


def test_seal_past_capacity_and_at_the_last_counter() -> None:
    key = RING.key(2)
    with pytest.raises(CapacityError) as info:
        key.seal(CodeKind.CASE, CODES_PER_KEY)
    assert str(info.value) == (
        "Counters 4294967296..4294967296 do not fit key 2: expected 0..4294967295"
    )
    with pytest.raises(CapacityError):
        key.seal_range(CodeKind.CASE, 0, -1)
    last = key.seal(CodeKind.CASE, CODES_PER_KEY - 1)
    assert key.open(last).counter == CODES_PER_KEY - 1


@pytest.mark.parametrize(
    ("key_id", "secret", "message"),
    [
        (-1, bytes(32), "Invalid key id: expected 0..7, got -1"),
        (8, bytes(32), "Invalid key id: expected 0..7, got 8"),
        (0, bytes(15), "Code key 0 is too short: expected at least 16 bytes, got 15"),
        (3, b"", "Code key 3 is too short: expected at least 16 bytes, got 0"),
    ],
)
def test_bad_key_config(key_id: int, secret: bytes, message: str) -> None:
    with pytest.raises(KeyConfigError) as info:
        CodeKey(key_id, secret)
    assert str(info.value) == message


def test_shortest_secret_and_every_key_id_are_accepted() -> None:
    assert [CodeKey(i, bytes(16)).key_id for i in range(8)] == list(range(8))


def test_key_repr_hides_the_secret() -> None:
    assert repr(RING.key(4)) == "CodeKey(key_id=4)"
    assert SECRETS[4].hex() not in repr(RING.key(4))


@pytest.mark.parametrize(
    ("secrets", "active", "message"),
    [
        (
            {0: SECRETS[0], 1: SECRETS[1]},
            3,
            "Active code key 3 is not configured: expected one of [0, 1]",
        ),
        ({}, 0, "Active code key 0 is not configured: expected one of []"),
    ],
)
def test_bad_keyring(secrets: dict[int, bytes], active: int, message: str) -> None:
    with pytest.raises(KeyConfigError) as info:
        Keyring.from_secrets(secrets, active)
    assert str(info.value) == message


def test_keyring_rejects_a_key_configured_twice() -> None:
    with pytest.raises(KeyConfigError) as info:
        Keyring([CodeKey(2, SECRETS[2]), CodeKey(2, SECRETS[3])], active_key_id=2)
    assert str(info.value) == "Code key 2 is configured twice"


def test_keyring_active_key_and_lookup() -> None:
    ring = Keyring.from_secrets({0: SECRETS[0], 6: SECRETS[6]}, active_key_id=6)
    assert ring.active.key_id == 6
    assert ring.key(0).key_id == 0
    with pytest.raises(UnknownKeyError) as info:
        ring.key(5)
    assert str(info.value) == "Code key 5 is not configured"


def test_serial_of_an_unconfigured_key_is_unknown() -> None:
    ring = Keyring.from_secrets({0: SECRETS[0], 1: SECRETS[1]}, active_key_id=1)
    serial = RING.key(5).seal(CodeKind.ITEM, 42)
    with pytest.raises(UnknownKeyError) as info:
        ring.open(serial)
    assert str(info.value) == "Code key 5 is not configured"


def test_a_key_refuses_serials_naming_another_key() -> None:
    serial = RING.key(2).seal(CodeKind.ITEM, 42)
    with pytest.raises(UnknownKeyError) as info:
        RING.key(1).open(serial)
    assert str(info.value) == f"Serial {serial.value} names key 2, expected key 1"


def test_serials_do_not_open_under_another_secret_with_the_same_key_id() -> None:
    impostor = Keyring.from_secrets({1: hashlib.sha256(b"another secret").digest()}, 1)
    serials = RING.key(1).seal_range(CodeKind.ITEM, 0, 1000)
    for value in serials:
        with pytest.raises(ForgedCodeError) as info:
            impostor.open(Serial(value))
        assert type(info.value) is ForgedCodeError
        assert str(info.value) == f"Serial {value} fails the keyed check"
    assert impostor.key(1).seal_range(CodeKind.ITEM, 0, 1000) != serials


# --- PINs ---


def test_pins() -> None:
    key = RING.key(1)
    serials = key.seal_range(CodeKind.ITEM, 0, 3000)
    pins = key.pins(serials)
    assert len(pins) == 3000
    assert all(re.fullmatch(r"[0-9]{8}", pin) for pin in pins)
    assert pins == [key.pin(Serial(s)) for s in serials]
    assert pins == CodeKey(1, SECRETS[1]).pins(serials)  # derived, not random
    assert pins == [ref_pin(SECRETS[1], s) for s in serials]
    # Uniform over 10**8: 3000 PINs collide about 0.045 times on average; about a tenth
    # start with 0, which proves the zero padding.
    assert len(set(pins)) >= 2997
    assert 200 < sum(pin.startswith("0") for pin in pins) < 420
    other = CodeKey(1, hashlib.sha256(b"another secret").digest()).pins(serials)
    assert sum(a == b for a, b in zip(pins, other, strict=True)) <= 2
    assert key.pins([]) == []


# --- format errors, with exact messages ---

A_SERIAL = RING.key(1).seal(CodeKind.ITEM, 7).value
A_CHECK = ref_check(A_SERIAL)
GROUPS = "-".join([A_SERIAL[0:5], A_SERIAL[5:10], A_SERIAL[10:15], A_SERIAL[15:20]])
WRONG_CHECK = "*" if A_CHECK != "*" else "~"
BAD_GTIN = "09506000134353"
FLAGGED = "G" + A_SERIAL[1:]

PARSE_ERRORS = [
    (
        "https://[::1/c/x",
        CodeFormatError,
        "Invalid code URL 'https://[::1/c/x': Invalid IPv6 URL",
    ),
    ("", CodeFormatError, "Empty code: expected a URL, a GS1 element string or a serial"),
    (" \t\n", CodeFormatError, "Empty code: expected a URL, a GS1 element string or a serial"),
    ("x" * 513, CodeFormatError, "Code text too long: expected at most 512 characters, got 513"),
    (
        "ABC",
        CodeFormatError,
        "Invalid serial 'ABC': expected 20 symbols (or 21 with a check symbol), got 3",
    ),
    (
        A_SERIAL[:19],
        CodeFormatError,
        f"Invalid serial {A_SERIAL[:19]!r}: expected 20 symbols (or 21 with a check symbol), "
        "got 19",
    ),
    (
        A_SERIAL + "00",
        CodeFormatError,
        f"Invalid serial {A_SERIAL + '00'!r}: expected 20 symbols (or 21 with a check symbol), "
        "got 22",
    ),
    (
        "0000U000000000000000",
        CodeFormatError,
        "Invalid serial '0000U000000000000000': expected Crockford base32 symbols "
        f"({ALPHABET}), got character 'U' at position 5",
    ),
    (
        "000-00#00000000000000",
        CodeFormatError,
        "Invalid serial '000-00#00000000000000': expected Crockford base32 symbols "
        f"({ALPHABET}), got character '#' at position 6",
    ),
    (
        GROUPS + "-#",
        CodeFormatError,
        f"Invalid check symbol in {GROUPS + '-#'!r}: expected one of {CHECK_ALPHABET!r}, got '#'",
    ),
    (
        GROUPS + "-" + WRONG_CHECK,
        CodeCheckError,
        f"Check symbol mismatch in {GROUPS + '-' + WRONG_CHECK!r}: expected {A_CHECK!r}, "
        f"got {WRONG_CHECK!r} (probably a typing mistake)",
    ),
    (
        f"{RESOLVER}/x/{A_SERIAL}",
        CodeFormatError,
        f"Unrecognized code URL '{RESOLVER}/x/{A_SERIAL}': expected a path /c/<serial> or "
        "/01/<GTIN>/21/<serial>",
    ),
    (
        f"{RESOLVER}/c/",
        CodeFormatError,
        f"Unrecognized code URL '{RESOLVER}/c/': expected a path /c/<serial> or "
        "/01/<GTIN>/21/<serial>",
    ),
    (
        f"{RESOLVER}/c/{A_SERIAL}/extra",
        CodeFormatError,
        f"Unrecognized code URL '{RESOLVER}/c/{A_SERIAL}/extra': expected a path /c/<serial> "
        "or /01/<GTIN>/21/<serial>",
    ),
    (
        f"{RESOLVER}/c/{A_SERIAL[:10]}",
        CodeFormatError,
        f"Invalid serial {A_SERIAL[:10]!r}: expected 20 symbols (or 21 with a check symbol), "
        "got 10",
    ),
    (
        f"{RESOLVER}/01/{BAD_GTIN}/21/{A_SERIAL}",
        CodeFormatError,
        f"Invalid code '{RESOLVER}/01/{BAD_GTIN}/21/{A_SERIAL}': Invalid GTIN check digit for "
        f"'{BAD_GTIN}': Expected 2, got 3.",
    ),
    (
        f"{RESOLVER}/01/{GTIN}",
        CodeFormatError,
        f"Invalid code '{RESOLVER}/01/{GTIN}': expected GTIN (AI 01) and serial (AI 21)",
    ),
    (
        f"(01){BAD_GTIN}(21){A_SERIAL}",
        CodeFormatError,
        f"Invalid code '(01){BAD_GTIN}(21){A_SERIAL}': Invalid GTIN check digit for "
        f"'{BAD_GTIN}': Expected 2, got 3.",
    ),
    (
        f"(01){GTIN}(10)LOT7",
        CodeFormatError,
        f"Invalid code '(01){GTIN}(10)LOT7': expected GTIN (AI 01) and serial (AI 21)",
    ),
    (
        f"\x1d01{GTIN}10LOT7",
        CodeFormatError,
        # The leading GS is whitespace to str.strip(), so the message shows the text without it.
        f"Invalid code '01{GTIN}10LOT7': expected GTIN (AI 01) and serial (AI 21)",
    ),
    (
        f"]d2\x1d01{GTIN}10LOT7",
        CodeFormatError,
        f"Invalid code ']d2\\x1d01{GTIN}10LOT7': expected GTIN (AI 01) and serial (AI 21)",
    ),
    (
        FLAGGED,
        UnsupportedCodeVersionError,
        "Unsupported serial format: expected format 1 (first symbol 0-F), got first symbol 'G'",
    ),
    (
        "Z" + A_SERIAL[1:].lower(),
        UnsupportedCodeVersionError,
        "Unsupported serial format: expected format 1 (first symbol 0-F), got first symbol 'Z'",
    ),
    (
        human(FLAGGED),
        UnsupportedCodeVersionError,
        "Unsupported serial format: expected format 1 (first symbol 0-F), got first symbol 'G'",
    ),
    (
        code_url(RESOLVER, FLAGGED, GTIN),
        UnsupportedCodeVersionError,
        "Unsupported serial format: expected format 1 (first symbol 0-F), got first symbol 'G'",
    ),
]


@pytest.mark.parametrize(("text", "error", "message"), PARSE_ERRORS)
def test_parse_code_errors(text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(CodeFormatError) as info:
        parse_code(text)
    assert type(info.value) is error
    assert str(info.value) == message


def test_element_string_with_a_short_serial_names_the_serial() -> None:
    with pytest.raises(CodeFormatError) as info:
        parse_code(f"(01){GTIN}(21)ABC")
    assert str(info.value) == (
        "Invalid serial 'ABC': expected 20 symbols (or 21 with a check symbol), got 3"
    )


def test_last_format_1_first_symbol_is_accepted() -> None:
    assert Serial.parse("F" + "0" * 19).value == "F" + "0" * 19
    assert Serial.parse("F" + "0" * 19).key_id == 7


# --- bulk Crockford encoding and decoding (what seal_range and pins run on) ---


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 2**100 - 1), max_size=60))
@example(values=[])
@example(values=[0, 2**100 - 1, 1, 2**99, 2**99 - 1])
def test_bulk_encoding_and_decoding_equal_one_at_a_time(values: list[int]) -> None:
    records = b"".join(v.to_bytes(15, "big") for v in values)
    symbols = [ref_encode(v) for v in values]
    assert _crockford.encode_100_many(records) == symbols
    assert [_crockford.encode_100(v) for v in values] == symbols
    assert _crockford.decode_100_many(symbols) == b"".join(v.to_bytes(16, "big") for v in values)
    assert [_crockford.decode(s) for s in symbols] == values


def outcome(run: Callable[[], object]) -> tuple[object, ...]:
    try:
        return ("ok", run())
    except Exception as exc:  # the comparison is the point: same class, same message
        return ("error", type(exc), str(exc))


GOOD = GOLDEN[0][3]


@pytest.mark.parametrize(
    "serials",
    [
        [GOOD.lower()],
        [GOOD[:-1] + "U"],
        [GOOD, GOOD[:-1] + "I"],
        [GOOD[:-1] + "L", GOOD[:-1] + "O"],
        ["_" + GOOD[1:]],
        [" " + GOOD[1:]],
        ["+" + GOOD[1:]],
        ["-" + GOOD[1:]],
        ["\u0661" + GOOD[1:]],  # an Arabic-Indic digit: int() would read it as 1
        ["é" + GOOD[1:]],
        [GOOD[:19], GOOD + "0"],  # right total length, wrong lengths: decoded one by one
        [GOOD + "0000000"],  # too long for 16 bytes
        [GOOD[:5]],
        [""],
    ],
)
def test_bulk_decoding_fails_exactly_like_one_at_a_time(serials: list[str]) -> None:
    expected = outcome(lambda: b"".join(_crockford.decode(s).to_bytes(16, "big") for s in serials))
    assert outcome(lambda: _crockford.decode_100_many(serials)) == expected
    if expected[0] == "error":
        assert outcome(lambda: RING.key(1).pins(serials)) == expected


# --- the Feistel permutation ---

FEISTEL = Feistel96(hashlib.sha256(b"feistel test").digest()[:16])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 400).flatmap(lambda n: st.binary(min_size=12 * n, max_size=12 * n)))
def test_feistel_decrypt_inverts_encrypt(data: bytes) -> None:
    sealed = FEISTEL.encrypt(data)
    assert len(sealed) == len(data)
    assert FEISTEL.decrypt(sealed) == data
    if data:
        assert sealed != data


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=12, max_size=12), min_size=1, max_size=40))
def test_feistel_bulk_equals_block_by_block_and_the_reference(blocks: list[bytes]) -> None:
    bulk = FEISTEL.encrypt(b"".join(blocks))
    one_by_one = [FEISTEL.encrypt(b) for b in blocks]
    assert bulk == b"".join(one_by_one)
    key = hashlib.sha256(b"feistel test").digest()[:16]
    assert one_by_one == [ref_feistel(key, b) for b in blocks]
    assert [FEISTEL.decrypt(b) for b in one_by_one] == blocks
    assert [ref_feistel(key, b, decrypt=True) for b in one_by_one] == blocks


def test_feistel_is_a_permutation_on_a_large_buffer() -> None:
    data = os.urandom(12 * 20_000)
    sealed = FEISTEL.encrypt(data)
    assert FEISTEL.decrypt(sealed) == data
    blocks = {sealed[i : i + 12] for i in range(0, len(sealed), 12)}
    assert len(blocks) == len({data[i : i + 12] for i in range(0, len(data), 12)})


def test_feistel_depends_on_the_key() -> None:
    data = bytes(12 * 10)
    other = Feistel96(bytes(16))
    assert FEISTEL.encrypt(data) != other.encrypt(data)
    assert FEISTEL.encrypt(b"") == b""
    assert FEISTEL.decrypt(b"") == b""


@pytest.mark.parametrize("size", [1, 11, 13, 23, 25, 12 * 1000 + 1])
def test_feistel_rejects_partial_blocks(size: int) -> None:
    for run in (FEISTEL.encrypt, FEISTEL.decrypt):
        with pytest.raises(ValueError) as info:
            run(bytes(size))
        assert str(info.value) == f"expected a multiple of 12 bytes, got {size}"

"""check_code: the one way any text becomes a checked code or a typed refusal."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.codes import CodeKind, Keyring, check_code, check_codes, code_url, parse_code
from protocols.errors import (
    CodeError,
    CodeFormatError,
    ForgedCodeError,
    UnknownKeyError,
    WrongKindError,
)

KEYRING = Keyring.from_secrets({0: secrets.token_bytes(32)}, 0)
OTHER = Keyring.from_secrets({0: secrets.token_bytes(32)}, 0)
ITEM = KEYRING.active.seal(CodeKind.ITEM, 7).value
CASE = KEYRING.active.seal(CodeKind.CASE, 8).value
GTIN = "09506000134352"


def test_every_printed_form_checks_to_the_same_code() -> None:
    forms = [
        ITEM,
        code_url("https://y.example.cn", ITEM),
        code_url("https://y.example.cn", ITEM, GTIN),
        f"(01){GTIN}(21){ITEM}",
        parse_code(ITEM).serial.as_human(),
        f" {ITEM.lower()}\n",
    ]
    for form in forms:
        checked = check_code(form, KEYRING)
        assert (checked.serial, checked.kind) == (ITEM, CodeKind.ITEM), form
    assert check_code(code_url("https://y.cn", ITEM, GTIN), KEYRING).gtin == GTIN


def test_without_a_keyring_only_the_format_is_checked() -> None:
    checked = check_code(OTHER.active.seal(CodeKind.ITEM, 1).value)
    assert (checked.identity, checked.kind) == (None, None)


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("", CodeFormatError, "Empty code: expected a URL, a GS1 element string or a serial"),
        (
            "]Q3https://[",
            CodeFormatError,
            "Invalid GS1 element string ']Q3https://[': Invalid IPv6 URL",
        ),
        (
            b"\xff\xfe",
            CodeFormatError,
            "Invalid code: expected UTF-8 text, got 'utf-8' codec "
            "can't decode byte 0xff in position 0: invalid start byte",
        ),
        (
            OTHER.active.seal(CodeKind.ITEM, 1).value,
            ForgedCodeError,
            f"Serial {OTHER.active.seal(CodeKind.ITEM, 1).value} fails the keyed check",
        ),
    ],
)
def test_refusals_are_typed_with_exact_messages(
    text: str | bytes, error: type[CodeError], message: str
) -> None:
    with pytest.raises(error) as caught:
        check_code(text, KEYRING)
    assert str(caught.value) == message


def test_a_serial_of_a_key_not_configured_is_forged() -> None:
    two = Keyring.from_secrets({2: secrets.token_bytes(32)}, 2)
    with pytest.raises(UnknownKeyError, match="Code key 2 is not configured"):
        check_code(two.active.seal(CodeKind.ITEM, 1).value, KEYRING)


def test_kind_check() -> None:
    assert check_code(CASE, KEYRING, kinds={CodeKind.CASE, CodeKind.PALLET}).kind is CodeKind.CASE
    with pytest.raises(WrongKindError) as caught:
        check_code(ITEM, KEYRING, kinds={CodeKind.CASE, CodeKind.PALLET})
    assert str(caught.value) == f"Code {ITEM} is a item code: expected case or pallet"


def test_the_kind_check_needs_the_keyring() -> None:
    with pytest.raises(ValueError, match="needs a keyring"):
        check_code(ITEM, kinds={CodeKind.ITEM})


# Any input at all: a typed refusal or a code, nothing else (no ValueError, no crash).

PRINTED_PIECES = st.sampled_from(
    [
        "https://",
        "http://",
        "]Q3",
        "]d2",
        "]C1",
        "(01)",
        "(21)",
        "\x1d",
        "/c/",
        "/01/",
        "/21/",
        "[",
        "]",
        "%",
        "%zz",
        "?",
        "#",
        "01",
        GTIN,
        ITEM,
        "-",
        ":",
        "@",
        " ",
        "\u0130",
        "ß",
    ]
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.one_of(PRINTED_PIECES, st.text(max_size=30)), max_size=8).map("".join))
def test_any_text_gives_a_code_or_a_code_error(text: str) -> None:
    try:
        checked = check_code(text, KEYRING)
    except CodeError:
        return
    assert checked.identity is not None


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_give_a_code_or_a_code_error(data: bytes) -> None:
    try:
        checked = check_code(data, KEYRING)
    except CodeError:
        return
    assert checked.identity is not None


TWO_KEYS = Keyring.from_secrets({0: secrets.token_bytes(32), 3: secrets.token_bytes(32)}, 3)
SOME_CODES = [
    *(TWO_KEYS.key(0).seal(CodeKind.ITEM, n).value for n in range(3)),
    *(TWO_KEYS.key(3).seal(CodeKind.CASE, n).value for n in range(3)),
    OTHER.active.seal(CodeKind.ITEM, 1).value,  # forged: another brand's key
    KEYRING.key(0).seal(CodeKind.ITEM, 1).value,
]


def _one_by_one(text: str | bytes) -> tuple[str, object]:
    try:
        checked = check_code(text, TWO_KEYS)
    except CodeError as exc:
        return type(exc).__name__, str(exc)
    return "ok", (checked.serial, checked.kind, checked.gtin)


def _in_bulk(result: object) -> tuple[str, object]:
    if isinstance(result, CodeError):
        return type(result).__name__, str(result)
    return "ok", (result.serial, result.kind, result.gtin)  # type: ignore[attr-defined]


@given(
    st.lists(
        st.one_of(
            st.sampled_from(SOME_CODES),
            st.sampled_from(SOME_CODES).map(lambda s: s[:-1] + ("0" if s[-1] != "0" else "1")),
            st.text(max_size=30),
            st.binary(max_size=30),
        ),
        max_size=20,
    )
)
@settings(max_examples=200, deadline=None)
def test_bulk_check_answers_what_one_by_one_checks_answer(texts: list[str | bytes]) -> None:
    """check_codes runs the keyed check in one cipher pass, with the same outcomes, in order."""
    assert [_in_bulk(r) for r in check_codes(texts, TWO_KEYS)] == [_one_by_one(t) for t in texts]

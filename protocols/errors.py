"""Errors raised by the shared contract. Every message says what was expected and what was found."""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class of every error raised by :mod:`protocols`."""


class CodeError(ProtocolError):
    """A code could not be accepted."""


class CodeFormatError(CodeError):
    """The text is not any printed form of a Yima code (wrong length, alphabet, URL shape...)."""


class CodeCheckError(CodeFormatError):
    """The human-typed check character does not match: almost always a typing mistake."""


class UnsupportedCodeVersionError(CodeFormatError):
    """The serial carries a format version this software does not know."""


class ForgedCodeError(CodeError):
    """The serial is well formed but fails the keyed check: it was never issued by us."""


class UnknownKeyError(ForgedCodeError):
    """The serial names a key id that is not configured (forged, or a key we do not hold)."""


class WrongKindError(CodeError):
    """A genuine code of another kind than the one expected (an item code where a case goes)."""


class KeyConfigError(ProtocolError):
    """A code key is configured wrongly (too short, id out of range, duplicate)."""


class CapacityError(ProtocolError):
    """A key has no counters left for the requested number of codes."""


class MessageError(ProtocolError):
    """An MQTT payload could not be accepted."""


class MessageDecodeError(MessageError):
    """The payload is not UTF-8 JSON or not a JSON object."""


class MessageVersionError(MessageError):
    """The payload names a schema version this software does not speak."""


class MissingFieldError(MessageError):
    """A required field is absent."""


class FieldTypeError(MessageError):
    """A field has the wrong type or an invalid value."""


class UnknownFieldError(MessageError):
    """A field is present that the schema does not define."""


class OversizedMessageError(MessageError):
    """The payload or its batch is larger than the contract allows."""


class TopicError(ProtocolError):
    """A topic does not match the Yima topic shape."""

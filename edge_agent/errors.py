"""Errors raised by the edge agent. Every message says what was expected and what was found."""

from __future__ import annotations


class EdgeError(Exception):
    """Base class of every error raised by :mod:`edge_agent`."""


class ConfigError(EdgeError):
    """The station's configuration is missing, unreadable or invalid."""


class DecodeError(EdgeError):
    """An image could not be handed to a barcode decoder (wrong type, shape or backend)."""


class BackendUnavailableError(DecodeError):
    """The requested decoder backend is not installed on this machine."""


class CameraError(EdgeError):
    """A camera, video file or stream could not be opened."""


class OutboxError(EdgeError):
    """The outbox file could not be opened or holds something it cannot read."""

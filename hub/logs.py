"""Log output of a hub process: readable lines, or JSON lines for a log collector."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_MESSAGE = 4000

# Attributes every LogRecord has; anything else was passed as ``extra=`` and is kept.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonLines(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the
    exception if any, and the ``extra=`` fields of the call."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage()[:MAX_MESSAGE],
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)[-MAX_MESSAGE:]
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        return json.dumps(out, ensure_ascii=False, default=repr)


def configure(level: str, log_format: str = "text") -> None:
    """Set up the root logger once per process (``log_format`` text or json)."""
    root = logging.getLogger()
    root.setLevel(level)
    formatter: logging.Formatter = (
        JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(formatter)

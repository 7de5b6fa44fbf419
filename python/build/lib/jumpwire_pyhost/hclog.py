"""Logs as hclog JSON lines on stderr, which the exporter re-logs with their levels."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

_LEVELS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "error",
}

# Attributes every LogRecord has; anything else was passed in `extra` and is
# logged as a key/value pair.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class HclogFormatter(logging.Formatter):
    """Formats a record as one hclog JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        level = _LEVELS.get(record.levelno) or ("trace" if record.levelno < logging.DEBUG else "error")
        entry: dict[str, Any] = {
            "@level": level,
            "@message": record.getMessage(),
            "@module": record.name,
            "@timestamp": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        for k, v in vars(record).items():
            if k not in _STANDARD and not k.startswith("_"):
                entry[k] = v if isinstance(v, str | int | float | bool) or v is None else repr(v)
        return json.dumps(entry, ensure_ascii=False)


def setup(level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Sends every log record of the process to stderr as hclog JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(HclogFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)

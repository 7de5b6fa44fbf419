"""Logs as hclog JSON lines on stderr, which the exporter re-logs with their levels."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
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
    """Formats a record as one hclog JSON line.

    A driver may log on every call (upstream's MockPower does): the
    timestamp's seconds are formatted once a second, and only the keys a
    record has beyond the standard ones are looked at."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def _timestamp(self, created: float) -> str:
        # Rounded as datetime.fromtimestamp rounds.
        frac, whole = math.modf(created)
        second, micros = int(whole), round(frac * 1e6)
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._stamp}.{micros:06d}Z"

    def format(self, record: logging.LogRecord) -> str:
        level = _LEVELS.get(record.levelno) or ("trace" if record.levelno < logging.DEBUG else "error")
        entry: dict[str, Any] = {
            "@level": level,
            "@message": record.getMessage(),
            "@module": record.name,
            "@timestamp": self._timestamp(record.created),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        attrs = vars(record)
        for k in attrs.keys() - _STANDARD:
            if not k.startswith("_"):
                v = attrs[k]
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

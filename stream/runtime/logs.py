"""Structured logs: one JSON object per line on stderr (``CORRIDOR_LOG_FORMAT=text`` for humans)."""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime

import orjson


class JsonFormatter(logging.Formatter):
    """time, level, logger, message (and the exception, if any) as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def setup_logging(level: str | None = None) -> None:
    """Configure the root logger once for a Corridor process."""
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("CORRIDOR_LOG_FORMAT", "json") == "text":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("CORRIDOR_LOG_LEVEL", "info")).upper())

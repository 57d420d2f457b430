"""Structured logs: one line per event, as `key=value` text or as JSON lines (`--log-json`).

Every log call names an event ("job.done") and passes fields, so logs can be grepped by event and
parsed by machines; the same lines go to stderr and to <data-dir>/server.log.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import time
from pathlib import Path
from typing import Any

LOGGER_NAME = "strata.server"


def log_event(log: logging.Logger, event: str, level: int = logging.INFO, exc_info: bool = False,
              **fields: Any) -> None:
    """Log `event` with structured `fields` (values should be short; long text is truncated)."""
    log.log(level, event, extra={"strata_fields": fields}, exc_info=exc_info)


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def _short(value: Any, limit: int = 500) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "..."
    return value


class TextFormatter(logging.Formatter):
    """`2025-01-02T03:04:05.678Z INFO job.done job=ab12 kind=echo seconds=0.12`."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "strata_fields", {})
        parts = [_timestamp(record), record.levelname, record.getMessage()]
        for key, value in fields.items():
            value = _short(value)
            text = json.dumps(value) if isinstance(value, str) and (not value or " " in value or "=" in value) \
                else str(value)
            parts.append(f"{key}={text}")
        line = " ".join(parts)
        if record.exc_info:
            # Tracebacks are the exception to one-line-per-event: they are for humans.
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: {"ts", "level", "event", ...fields, "traceback"?}."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {"ts": _timestamp(record), "level": record.levelname, "event": record.getMessage()}
        for key, value in getattr(record, "strata_fields", {}).items():
            data[key] = _short(value)
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def setup_logging(level: str = "INFO", json_lines: bool = False, log_file: Path | None = None) -> logging.Logger:
    """Configure the server logger (idempotent: handlers are replaced, not stacked)."""
    log = logging.getLogger(LOGGER_NAME)
    log.setLevel(level.upper())
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    formatter: logging.Formatter = JsonFormatter() if json_lines else TextFormatter()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        handlers.append(logging.handlers.RotatingFileHandler(log_file, maxBytes=10 << 20, backupCount=3,
                                                             encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
        log.addHandler(handler)
    return log

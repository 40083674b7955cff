"""Log records as one JSON object per line (the default), or text for humans.

Fields passed with ``extra=`` become keys of the JSON object (and ``key=value`` pairs in
text), so the per-RPC line is queryable without parsing its message. Exception
tracebacks are kept out unless the record's logger asked for them: their text may quote
input, and input may be a secret.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any

from bucketvault.errors import InvalidArgument

FORMATS = ("json", "text")
# HTTP client libraries log request and response headers at DEBUG and INFO.
QUIET_LOGGERS = (
    "azure.core.pipeline.policies.http_logging_policy",
    "azure",
    "botocore",
    "boto3",
    "urllib3",
    "google.auth",
)

# Attributes every LogRecord has: anything else came from extra=.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then the extras."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_extras(record))
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """time level logger message key=value ..."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The standard line, the extras appended."""
        line = super().format(record)
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return line


def configure_logging(env: Mapping[str, str], stream: IO[str] | None = None) -> None:
    """The root logger for ``bucketvault serve``: BUCKETVAULT_LOG_FORMAT (json | text,
    default json) at BUCKETVAULT_LOG_LEVEL (default INFO); HTTP client libraries at
    WARNING."""
    fmt = env.get("BUCKETVAULT_LOG_FORMAT", "").strip().lower() or "json"
    if fmt not in FORMATS:
        raise InvalidArgument(
            "BUCKETVAULT_LOG_FORMAT must be json or text", reason="INVALID_CONFIG"
        )
    level = env.get("BUCKETVAULT_LOG_LEVEL", "").strip().upper() or "INFO"
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


__all__ = ["FORMATS", "QUIET_LOGGERS", "JsonFormatter", "TextFormatter", "configure_logging"]

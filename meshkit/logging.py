"""Log lines for machines (JSON) or for people (console), carrying the request's ids."""

from __future__ import annotations

import json
import logging
import os
import sys
import zlib
from datetime import UTC, datetime
from typing import Any, TextIO

from meshkit.context import correlation_id_var, request_id_var
from meshkit.settings import LogFormat
from meshkit.telemetry import trace_ids

# Attributes every LogRecord has; anything else was passed through `extra=` and is logged.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """What the caller passed through `extra=`."""
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _STANDARD_ATTRS and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: easy to grep, and to ship to any log store."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (request_id := request_id_var.get()) is not None:
            entry["request_id"] = request_id
        if (correlation_id := correlation_id_var.get()) is not None:
            entry["correlation_id"] = correlation_id
        if (ids := trace_ids()) is not None:
            entry["trace_id"], entry["span_id"] = ids
        entry.update(_extras(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


# The processes of `make run` share one terminal: every prefix is padded to the longest name,
# notification_service, so that the messages line up as `docker compose` shows them.
PREFIX_WIDTH = 20

# ANSI foreground colours. The mesh's processes get one each, so that no two of them look
# alike; any other process gets one picked from its name.
_PALETTE = (36, 33, 32, 35, 34, 96, 93, 92, 95, 94)
_SERVICE_COLOURS = {
    "user_service": 36,
    "product_service": 33,
    "order_service": 32,
    "payment_service": 35,
    "notification_service": 34,
    "gateway": 96,
    "mail_sink": 93,
}
_LEVEL_COLOURS = {"DEBUG": "2", "WARNING": "33", "ERROR": "31", "CRITICAL": "1;31"}
# Ids are 32 hex digits; this many tell the requests on one screen apart.
_SHORT_ID = 8


def colour_wanted(stream: TextIO) -> bool:
    """Colour for a terminal, as https://no-color.org and FORCE_COLOR ask tools to decide."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class ConsoleFormatter(logging.Formatter):
    """`service | 07:48:01 INFO  message key=value`: one line a record, for a person to read.

    A traceback follows on lines of their own, each under the same prefix, so that it cannot
    be taken for another process's when several share a terminal.
    """

    def __init__(self, service: str, *, colour: bool = False) -> None:
        super().__init__()
        self.colour = colour
        prefix = f"{service.ljust(PREFIX_WIDTH)} |"
        if colour:
            code = _SERVICE_COLOURS.get(
                service, _PALETTE[zlib.crc32(service.encode()) % len(_PALETTE)]
            )
            prefix = f"\x1b[{code}m{prefix}\x1b[0m"
        self.prefix = prefix + " "

    def format(self, record: logging.LogRecord) -> str:
        # Local time: what a person compares with the clock on their screen.
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        level = f"{record.levelname:<5}"
        if self.colour and (code := _LEVEL_COLOURS.get(record.levelname)):
            level = f"\x1b[{code}m{level}\x1b[0m"
        parts = [when, level, record.getMessage()]
        parts += [f"{key}={_shown(value)}" for key, value in _extras(record).items()]
        request_id, correlation_id = request_id_var.get(), correlation_id_var.get()
        if request_id is not None:
            parts.append(f"req={request_id[:_SHORT_ID]}")
        # A request that starts a flow carries its own id as correlation id: said once.
        if correlation_id is not None and correlation_id != request_id:
            parts.append(f"corr={correlation_id[:_SHORT_ID]}")
        lines = " ".join(parts).splitlines() or [""]
        if record.exc_info:
            lines += self.formatException(record.exc_info).splitlines()
        if record.stack_info:
            lines += self.formatStack(record.stack_info).splitlines()
        return "\n".join(self.prefix + line for line in lines)


def _shown(value: Any) -> str:
    """A value as `key=value` shows it: bare when that cannot be misread, else quoted."""
    if isinstance(value, str):
        plain = value and not any(c.isspace() or c in "\"'=" for c in value)
        return value if plain else json.dumps(value)
    return json.dumps(value, default=str)


def configure_logging(
    service: str, level: str = "INFO", log_format: LogFormat = LogFormat.JSON
) -> None:
    """Send every logger's records to stderr in `log_format`; idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format is LogFormat.CONSOLE:
        handler.setFormatter(ConsoleFormatter(service, colour=colour_wanted(sys.stderr)))
    else:
        handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries that log every connection at INFO drown the access log.
    for noisy in ("aio_pika", "aiormq", "uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def command_log_level(level: str) -> str:
    """The level a one-off command logs at: warnings and errors only, so that its own result
    is what a person reads, unless DEBUG asks for everything its libraries say too."""
    if logging.getLevelName(level) <= logging.DEBUG:
        return level
    return str(logging.getLevelName(max(logging.WARNING, logging.getLevelName(level))))

"""How Polku logs: readable lines on a terminal, one JSON object per line in production.

`configure_logging` is called once per process (`polku` commands, the pipeline process).
With ``POLKU_LOG_FORMAT=json`` every record becomes one line such as::

    {"time":"2025-05-04T09:12:03.120Z","level":"WARNING","logger":"polku.pipeline.runner",
     "message":"poison event set aside","event_id":"m-81f2","offset":1207,"consumer":"identity"}

(on one line), so a log collector can index by the fields that callers pass with
``logger.warning("...", extra={"event_id": ..., "offset": ...})``. A hand-written formatter
of a few lines over orjson (already a dependency) does this; a logging library would add a
dependency for no feature we use.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from polku.settings import Settings

__all__ = ["JsonFormatter", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (ISO 8601, UTC), level, logger, message, every
    `extra` field, and the exception's traceback as `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        try:
            line = orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS)
        except (TypeError, orjson.JSONEncodeError):  # e.g. an int beyond 64 bits
            line = orjson.dumps({k: v if isinstance(v, str) else repr(v) for k, v in entry.items()})
        return line.decode()


class _PolkuHandler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs, told apart from handlers set up by others."""


def configure_logging(settings_or_format: Settings | str, verbose: bool = False) -> None:
    """Send every log record to stderr in the configured format (`text` or `json`).

    Like `logging.basicConfig`, it leaves logging alone when someone else (a host program,
    pytest) has already given the root logger handlers; calling it again replaces only its
    own handler. `verbose` logs debug messages; otherwise Alembic logs warnings only.
    """
    log_format = (
        settings_or_format.log_format
        if isinstance(settings_or_format, Settings)
        else settings_or_format
    )
    if log_format not in ("text", "json"):
        raise ValueError(f"log format must be text or json, got {log_format!r}")
    logging.getLogger("alembic").setLevel(logging.NOTSET if verbose else logging.WARNING)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _PolkuHandler)]:
        root.removeHandler(old)
        old.close()
    if root.handlers:
        return
    handler = _PolkuHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)

"""Log lines: text or JSON (the ``log:`` section), each carrying the request id of its call.

``configure_logging`` installs one handler on the root logger with
:class:`RequestIdFilter` (the current request id, or ``-`` outside calls),
:class:`OwnDebugOnly` and the chosen formatter:

- ``text``: ``2026-01-02 10:11:12,345 INFO cagw.access [4f…]: Enroll grpc ...``
- ``json``: one object per line: ``time`` (UTC, ISO 8601), ``level``,
  ``logger``, ``message``, ``request_id``, the line's own ``fields`` (an
  access line's method, status, duration ...), and ``exception`` when any.

Two loggers are the gateway's records of work: ``cagw.access`` (one line per
call, :func:`log_access`) and ``cagw.orders`` (one line per order state change,
:mod:`service.observability.orders`). Debug lines of other libraries are
never written, whatever the level (:class:`OwnDebugOnly`): theirs carry request
data (a database driver logs each statement with its parameters, CSRs
included; HTTP libraries log headers), which the gateway's own lines never do.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from service.config.settings import LogSettings
from service.observability.requestid import current_request_id

__all__ = [
    "ACCESS_LOG",
    "JsonFormatter",
    "OwnDebugOnly",
    "RequestIdFilter",
    "TEXT_FORMAT",
    "configure_logging",
    "log_access",
]

ACCESS_LOG = "cagw.access"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
_OWN_LOGGERS = ("service", "cagw")

_access = logging.getLogger(ACCESS_LOG)


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every record (the current call's, or ``-``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id() or "-"
        return True


class OwnDebugOnly(logging.Filter):
    """Drops DEBUG records of loggers that are not the gateway's (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.INFO:
            return True
        return any(record.name == own or record.name.startswith(own + ".") for own in _OWN_LOGGERS)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; see the module docstring."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id() or "-",
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            document.update({str(key): value for key, value in fields.items() if str(key) not in document})
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)


def configure_logging(settings: LogSettings, *, level: str | None = None,
                      stream: TextIO | None = None) -> logging.Handler:
    """Replace the root logger's handlers by one in the configured format; ``level`` (the command
    line's ``--log-level``) wins over ``settings.level``. Returns the handler."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(OwnDebugOnly())
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if settings.format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, (level or settings.level).upper()))
    return handler


def log_access(*, method: str, transport: str, client: str, ca: str, status: str, duration: float,
               peer: str = "") -> None:
    """The access line of one call (``duration`` in seconds)."""
    fields = {"method": method, "transport": transport, "client": client, "ca": ca, "status": status,
              "duration_ms": round(duration * 1000, 1), "peer": peer}
    _access.info("%s %s client=%s ca=%s status=%s %.1fms", method, transport, client, ca or "-", status,
                 duration * 1000, extra={"fields": fields})

"""Structured logs: one JSON object per line, carrying the request id of the request being served.

``python -m service`` (and ``eoc-ntk serve``) log this way unless ``--log-format text`` is given::

    {"time": "2026-01-01T12:00:00.123Z", "level": "INFO", "logger": "eoc_ntk.access",
     "message": "POST /v1/spectra 200", "request_id": "3f2a...", "method": "POST",
     "pid": 4242, "route": "/v1/spectra", "status": 200, "duration_ms": 12.3}
"""
from __future__ import annotations

import contextvars
import json
import logging
import time

__all__ = ["JsonFormatter", "RequestIdFilter", "request_id_var", "log_config"]

#: The id of the request being served in this context (set by :class:`service.metrics.RequestContext`).
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("eoc_ntk_request_id", default=None)

_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime", "color_message"}


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (``None`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """A JSON object per record: time, level, logger, message, request_id and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
            "pid": record.process,  # which API process (--workers N) wrote it
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out:
                out[key] = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def log_config(level: str = "info", fmt: str = "json") -> dict:
    """A ``logging.config.dictConfig`` for uvicorn and the service: JSON (default) or plain text."""
    formatter = ({"()": "service.logs.JsonFormatter"} if fmt == "json"
                 else {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"})
    handler = {"class": "logging.StreamHandler", "formatter": "default", "filters": ["request_id"],
               "stream": "ext://sys.stderr"}
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "service.logs.RequestIdFilter"}},
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "eoc_ntk": {"handlers": ["default"], "level": level, "propagate": False},
        },
    }

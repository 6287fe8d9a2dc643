"""Structured logs: one JSON object per line, carrying the request id of the request being served.

The formatter and the request id are the job layer's (:mod:`jobs.logs`): the workers and the
job processes write the same fields.

``python -m service`` (and ``eoc-ntk serve``) log this way unless ``--log-format text`` is given::

    {"time": "2026-01-01T12:00:00.123Z", "level": "INFO", "logger": "eoc_ntk.access",
     "message": "POST /v1/spectra 200", "request_id": "3f2a...", "method": "POST",
     "pid": 4242, "route": "/v1/spectra", "status": 200, "duration_ms": 12.3}
"""
from __future__ import annotations

from jobs.logs import TEXT_FORMAT, JsonFormatter, RequestIdFilter, request_id_var

__all__ = ["JsonFormatter", "RequestIdFilter", "request_id_var", "log_config"]


def log_config(level: str = "info", fmt: str = "json") -> dict:
    """A ``logging.config.dictConfig`` for uvicorn and the service: JSON (default) or plain text."""
    formatter = {"()": "jobs.logs.JsonFormatter"} if fmt == "json" else {"format": TEXT_FORMAT}
    handler = {"class": "logging.StreamHandler", "formatter": "default", "filters": ["request_id"],
               "stream": "ext://sys.stderr"}
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "jobs.logs.RequestIdFilter"}},
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "eoc_ntk": {"handlers": ["default"], "level": level, "propagate": False},
        },
    }

"""Structured logs of every process: one JSON object per line, carrying the request id.

The API (:mod:`service.logs`), the workers (``eoc-ntk worker``) and the job processes (an RQ
work horse, a job process of the embedded API) write the same fields::

    {"time": "2026-01-01T12:00:00.123Z", "level": "INFO", "logger": "eoc_ntk.jobs",
     "message": "job spectra-3f2a... finished in 0.412 s", "request_id": "3f2a...", "pid": 4242,
     "job_id": "spectra-3f2a...", "op": "spectra", "status": "finished", "seconds": 0.412}

``request_id`` is the id of the request being served (:data:`request_id_var`): in the API the
request's ``X-Request-ID``; in a job's process the id of the request that submitted the job,
which travels with the job (:class:`jobs.observe.JobContext`).
"""
from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from dataclasses import dataclass

__all__ = ["JsonFormatter", "RequestIdFilter", "request_id_var", "LogSetup", "TEXT_FORMAT", "FORMATS"]

#: The id of the request being served, or of the request that submitted the running job.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("eoc_ntk_request_id", default=None)

#: The line of ``--log-format text``.
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
#: The values of ``--log-format``.
FORMATS = ("json", "text")

_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime", "color_message"}


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (``None`` outside a request or a job)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """A JSON object per record: time, level, logger, message, request_id, pid and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
            "pid": record.process,  # which process (API process, worker, work horse, job process) wrote it
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out:
                out[key] = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


@dataclass(frozen=True)
class LogSetup:
    """How a process logs: ``level`` (a :mod:`logging` level) and ``fmt`` (``"json"`` or ``"text"``).

    A worker applies its own (``eoc-ntk worker --log-format``); the API hands its own to its job
    processes (:meth:`of_this_process`), so that their lines look like the API's."""

    level: int = logging.INFO
    fmt: str = "json"

    def __post_init__(self):
        if self.fmt not in FORMATS:
            raise ValueError(f"log format must be one of {FORMATS}, got {self.fmt!r}")

    def apply(self) -> None:
        """Log every record of this process (the root logger, so RQ's too) to stderr in this setup."""
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter() if self.fmt == "json" else logging.Formatter(TEXT_FORMAT))
        handler.addFilter(RequestIdFilter())
        root = logging.getLogger()
        for old in list(root.handlers):
            root.removeHandler(old)
        root.addHandler(handler)
        root.setLevel(self.level)
        # The API's configuration gives the project's loggers handlers of their own: here the root's serve.
        own = logging.getLogger("eoc_ntk")
        own.handlers.clear()
        own.propagate = True
        own.setLevel(logging.NOTSET)

    @classmethod
    def of_this_process(cls) -> LogSetup:
        """The setup of the project's loggers (``eoc_ntk``) here: its level, JSON unless its handler writes text."""
        logger = logging.getLogger("eoc_ntk")
        handlers = logger.handlers or logging.getLogger().handlers
        text = any(h.formatter is not None and not isinstance(h.formatter, JsonFormatter) for h in handlers)
        return cls(logger.getEffectiveLevel(), "text" if text else "json")

"""Domain errors of the service and their one translation to HTTP.

Handlers and helpers raise the small exception classes below (never ``HTTPException``);
:func:`install_error_handlers` turns them, request validation errors, errors of the numerical
core (:class:`~eoc_ntk.core.errors.InvalidParameterError`, via :func:`core_errors`), an unavailable
store (:class:`~jobs.store.StoreUnavailable`), Redis outages and anything
unexpected into one JSON shape::

    {"error": {"code": "invalid_input", "message": "...", "field": "model.depth"}}

Every Redis error is a 503 with ``Retry-After``, never a 500: ``store_full`` when Redis is out
of memory (an ``OOM`` reply under ``maxmemory-policy noeviction``), ``unavailable`` for a lost
connection or any other refusal.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from redis.exceptions import OutOfMemoryError, RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from eoc_ntk.core.errors import InvalidParameterError
from jobs.store import StoreUnavailable

from .head import allowed_methods

__all__ = [
    "ServiceError", "InvalidInput", "SyncTooLong", "BadRequest", "NotFound", "Conflict", "Timeout", "Gone",
    "UnsupportedMediaType", "NotAcceptable", "Unauthorized", "TooManyJobs", "BodyTooLarge", "BodyTimeout",
    "BodiesInFlightFull", "BodyInvalid",
    "CLIENT_CLOSED", "core_errors", "validation_message", "install_error_handlers", "is_out_of_memory",
    "STORE_RETRY_AFTER", "ERROR_CODES",
]

log = logging.getLogger("eoc_ntk.service")

#: Every ``error.code`` the service sends, in an answer or in a failed job (the OpenAPI document's
#: enum; a test walks the code base for codes missing here).
ERROR_CODES = (
    "bad_request", "canceled", "conflict", "corrupt_record", "dask_unavailable", "dataset_missing", "gone",
    "http_error", "internal_error", "invalid_input", "malformed_json", "method_not_allowed", "not_acceptable",
    "not_found", "payload_too_large", "request_timeout", "store_full", "sync_too_long", "timeout", "too_many_jobs",
    "unauthorized", "unavailable", "unsupported_media_type", "worker_failure", "worker_lost", "worker_stopped",
)

#: Seconds a client is told to wait (``Retry-After``) when the store is down or full.
STORE_RETRY_AFTER = 5


def is_out_of_memory(exc: BaseException | None) -> bool:
    """True when ``exc`` (or an exception it was raised from) is Redis's ``OOM`` refusal."""
    while exc is not None:
        if isinstance(exc, OutOfMemoryError) or (isinstance(exc, RedisError) and str(exc).startswith("OOM")):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _store_error(exc: BaseException, message: str) -> JSONResponse:
    """The 503 of a store that is down (``unavailable``) or full (``store_full``)."""
    headers = {"Retry-After": str(STORE_RETRY_AFTER)}
    if is_out_of_memory(exc):
        log.warning("store full: %s", exc)
        return JSONResponse(error_body("store_full", "the store (Redis) is out of memory and refuses writes; retry "
                                                     "later (its operator can raise maxmemory or free space)"),
                            status_code=503, headers=headers)
    log.warning("store unavailable: %s", exc)
    return JSONResponse(error_body("unavailable", message), status_code=503, headers=headers)


class ServiceError(Exception):
    """Base of the errors a client can be told about."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.headers = headers or {}


class InvalidInput(ServiceError):
    """Well-formed request whose values are refused (limits, the core's checks)."""

    status, code = 422, "invalid_input"


class SyncTooLong(InvalidInput):
    """A synchronous computation predicted above ``EOC_NTK_SYNC_MAX_SECONDS``: send it as a job."""

    code = "sync_too_long"


class BadRequest(ServiceError):
    """Body that cannot be parsed (malformed CSV or .npy, bad encoding)."""

    status, code = 400, "bad_request"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Conflict(ServiceError):
    status, code = 409, "conflict"


class Timeout(ServiceError):
    """A synchronous computation ran past the job timeout."""

    status, code = 504, "timeout"


class Gone(ServiceError):
    """A job that finished, but whose result expired from the cache."""

    status, code = 410, "gone"


class UnsupportedMediaType(ServiceError):
    status, code = 415, "unsupported_media_type"


class NotAcceptable(ServiceError):
    status, code = 406, "not_acceptable"


class Unauthorized(ServiceError):
    """No valid API key, while API keys are configured."""

    status, code = 401, "unauthorized"

    def __init__(self, message: str, **kwargs):
        super().__init__(message, **kwargs)
        self.headers.setdefault("WWW-Authenticate", 'Bearer realm="eoc-ntk"')


class TooManyJobs(ServiceError):
    """An API key already has its most queued or running jobs."""

    status, code = 429, "too_many_jobs"

    def __init__(self, message: str, *, retry_after: int = 5, **kwargs):
        super().__init__(message, **kwargs)
        self.headers.setdefault("Retry-After", str(retry_after))


class BodyTooLarge(StarletteHTTPException):
    """Raised while a body is streamed in past the size limit (an ``HTTPException`` so that
    FastAPI's body parsing lets it through)."""

    field = "body"

    def __init__(self, message: str):
        super().__init__(413, message, headers={"Connection": "close"})


class BodyTimeout(StarletteHTTPException):
    """The request body did not arrive within ``EOC_NTK_BODY_TIMEOUT`` seconds (408, connection closed)."""

    field = "body"

    def __init__(self, message: str):
        super().__init__(408, message, headers={"Connection": "close"})


class BodiesInFlightFull(StarletteHTTPException):
    """The bytes of request bodies held by the API would pass ``EOC_NTK_MAX_INFLIGHT_BYTES``
    (503 with ``Retry-After``, connection closed)."""

    field = "body"

    def __init__(self, message: str, retry_after: int = 5):
        super().__init__(503, message, headers={"Retry-After": str(retry_after), "Connection": "close"})


class BodyInvalid(StarletteHTTPException):
    """A JSON body that fails its schema or is not JSON, validated off the event loop
    (:mod:`service.jsonbody`): ``errors`` are pydantic's, located under ``body``, answered exactly
    as FastAPI's :class:`RequestValidationError` is."""

    def __init__(self, errors: list[dict]):
        super().__init__(422, "invalid body")
        self.errors = errors


#: Status logged and counted for a request whose client went away before the answer (nginx's 499).
CLIENT_CLOSED = 499


@contextmanager
def core_errors(field: str | None = None, fields: Mapping[str, str] | None = None) -> Iterator[None]:
    """Translate the core's :class:`InvalidParameterError` into :class:`InvalidInput`.

    The request field is ``fields[exc.param]`` when the refused parameter is listed there,
    else ``field``: the core says which argument it refused, nothing is read from the message."""
    try:
        yield
    except InvalidParameterError as exc:
        raise InvalidInput(str(exc), field=(fields or {}).get(exc.param, field)) from exc


def error_body(code: str, message: str, field: str | None = None, **extra) -> dict:
    """The JSON body of every error answer."""
    err = {"code": code, "message": message}
    if field is not None:
        err["field"] = field
    err.update(extra)
    return {"error": err}


def _loc_to_field(loc) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    # Drop pydantic's union-member tags (e.g. "ActivationAB") from the path.
    parts = [p for p in parts if not p[:1].isupper()]
    return ".".join(parts) or (str(loc[0]) if loc else None)


_MATRICES = ("x", "x2")
#: The accepted form of each text field checked against a pattern (service.patterns), in words.
_FORMS = {
    "job_id": "malformed job id: job ids look like 'spectra-' followed by 32 hex digits, as in a 202 answer",
    "dataset_id": "dataset ids are 32 hex digits, as POST /v1/datasets answers",
    "x2_dataset_id": "dataset ids are 32 hex digits, as POST /v1/datasets answers",
    "labels_id": "labels ids are 32 hex digits, as POST /v1/labels answers",
    "activation": "give relu, abs or linear (any case), leaky_relu:SLOPE, or A,B (two numbers, not both zero)",
    "activations": "give activations such as \"relu,abs\" or \"relu;leaky_relu:0.1;0.3,0.7\"",
    "depths": "give depths >= 1 such as \"1:100\", \"1:200:10\" or \"1,2,5\"",
}


def validation_message(err: Mapping[str, Any]) -> str:
    """One pydantic error as a sentence naming the field (and the fix where the cause is known)."""
    field = _loc_to_field(err.get("loc", ()))
    msg = err.get("msg", "invalid value")
    if err.get("type") == "json_invalid":
        ctx = err.get("ctx") or {}
        return f"request body is not valid JSON ({ctx.get('error', msg)})"
    parts = (field or "").split(".")
    if err.get("type") == "string_pattern_mismatch":  # the grammar in words, not the regular expression
        shown = repr(err.get("input"))[:80]
        last = parts[-1] if not parts[-1].isdigit() else parts[-2] if len(parts) > 1 else ""
        return f"{field}: {shown} is malformed; {_FORMS.get(last, 'see the OpenAPI document for its form')}"
    if len(parts) == 3 and parts[0] in _MATRICES and isinstance(err.get("input"), (list, dict)):
        return (f"{parts[0]} must be a 2-D array, a list of points each a list of numbers; {field} is a "
                f"{'list' if isinstance(err.get('input'), list) else 'object'}, not a number "
                f"(3-D data? flatten each point into one row)")
    if parts[-1:] == ["activation"] or (len(parts) >= 2 and parts[-2] == "activations"):
        return (f"{field}: {msg}; give a name such as \"relu\", {{\"name\": \"leaky_relu\", \"slope\": 0.1}} "
                "or {\"a\": 0.5, \"b\": 0.5}")
    return f"{field}: {msg}" if field else msg


def install_error_handlers(app: FastAPI) -> None:
    """Register the single mapping from errors to HTTP answers."""

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError):
        return JSONResponse(error_body(exc.code, exc.message, exc.field), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return _validation_answer(exc.errors())

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        if isinstance(exc, BodyInvalid):
            return _validation_answer(exc.errors)
        code = getattr(exc, "code", None) or {404: "not_found", 405: "method_not_allowed", 408: "request_timeout",
                                              413: "payload_too_large", 503: "unavailable"}.get(exc.status_code,
                                                                                                "http_error")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:  # every method of the path (a path may have one route per method)
            headers = {**(headers or {}), "Allow": allowed_methods(request.app.openapi(), request.url.path)}
        return JSONResponse(error_body(code, str(exc.detail), getattr(exc, "field", None)), status_code=exc.status_code,
                            headers=headers)

    def _validation_answer(errors: Sequence[Any]) -> JSONResponse:
        first = errors[0] if errors else {}
        details = [
            {"field": _loc_to_field(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
            for e in errors[:20]
        ]
        field = _loc_to_field(first.get("loc", ())) if first.get("type") != "json_invalid" else "body"
        status = 400 if first.get("type") == "json_invalid" else 422
        code = "malformed_json" if status == 400 else "invalid_input"
        return JSONResponse(error_body(code, validation_message(first), field, details=details), status_code=status)

    @app.exception_handler(StoreUnavailable)
    async def _store_unavailable(request: Request, exc: StoreUnavailable):
        return _store_error(exc, str(exc))

    @app.exception_handler(RedisError)  # every Redis error: lost connection, timeout, lock, OOM, ...
    async def _redis_error(request: Request, exc: RedisError):
        return _store_error(exc, "the job store (Redis) does not answer; retry later")

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, exc: ClientDisconnect):
        # Nobody reads this answer; the status is for the access log and the metrics, without a traceback.
        return Response(status_code=CLIENT_CLOSED)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal_error", "internal error; the incident was logged"), status_code=500)

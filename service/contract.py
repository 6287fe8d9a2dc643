"""What each operation declares in the OpenAPI document beyond its body: the statuses it can
answer, their headers and examples, and the optional API key.

Every route passes ``**operation(...)`` to its decorator, so that the document lists exactly the
statuses the route can produce (plus ``default``, the error schema for anything else), the headers
it sends with each (``X-Request-ID`` on every answer; ``Location`` and ``Retry-After`` on 202;
``ETag`` and ``Cache-Control`` on cacheable answers and 304; ``Retry-After`` on 429 and 503;
``WWW-Authenticate`` on 401) and an example of every body.
"""
from __future__ import annotations

from typing import Any

from .schemas import ErrorOut, JobOut

__all__ = ["operation", "IMAGE_OK", "REQUEST_ID", "RETRY_AFTER", "ERROR_EXAMPLES", "SECURITY", "COMPUTE_ERRORS",
           "UPLOAD_ERRORS",
           "LOOKUP_ERRORS"]


def _header(description: str, *, required: bool = False, pattern: str | None = None) -> dict:
    schema: dict[str, Any] = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    return {"description": description, "required": required, "schema": schema}


REQUEST_ID = _header("The request's id: the client's X-Request-ID when it is 1 to 128 characters of "
                     "[A-Za-z0-9._:-], else a new one; it is on every log line of the request.", required=True)
_LOCATION = _header("The job resource to poll (the same as `links.self`).", required=True)
_POLL = _header("Seconds to wait before polling the job (absent once it has finished).", pattern=r"^[0-9]+$")
_PREFERENCE = _header("`respond-async` (RFC 7240): the request is answered as a job.")
RETRY_AFTER = _RETRY = _header("Seconds to wait before trying again.", pattern=r"^[0-9]+$")
_ETAG = _header("A weak validator of the answer (the result's content hash); send it back in If-None-Match.")
_CACHE_CONTROL = _header("`private, max-age=<seconds>`: the answer may be kept that long.")
_NO_STORE = _header("`no-store`: figures are drawn on each request.")
_AUTHENTICATE = _header('`Bearer realm="eoc-ntk"`.', required=True)
_CACHE_HEADERS = {"ETag": _ETAG, "Cache-Control": _CACHE_CONTROL}

#: The API key is optional while the service runs without keys (the default); a deployment with
#: EOC_NTK_API_KEYS requires one (X-API-Key or a bearer token) and answers 401 without it.
SECURITY: list[dict[str, list[str]]] = [{}]

#: An example body of each error status.
ERROR_EXAMPLES: dict[int | str, tuple[str, str, str | None]] = {
    400: ("malformed_json", "request body is not valid JSON (expected value at line 1 column 1)", "body"),
    401: ("unauthorized", "a valid API key is required (X-API-Key or Authorization: Bearer)", None),
    404: ("not_found", "unknown dataset_id '0123456789abcdef0123456789abcdef' (expired, never uploaded, or "
                       "not yours); upload it with POST /v1/datasets", "dataset_id"),
    406: ("not_acceptable", "application/x-npy needs exactly one kind", "Accept"),
    408: ("request_timeout", "the request body did not arrive in full within 30 s (EOC_NTK_BODY_TIMEOUT)", "body"),
    409: ("conflict", "job spectra-0123456789abcdef0123456789abcdef is running; its result exists once it has "
                     "finished", "job_id"),
    410: ("gone", "job spectra-0123456789abcdef0123456789abcdef finished, but its result is no longer stored "
                 "(expired or evicted); submit the request again to recompute it", None),
    413: ("payload_too_large", "request body is over the limit of 268435456 bytes (EOC_NTK_MAX_BODY_BYTES)", "body"),
    415: ("unsupported_media_type", "Content-Type 'text/plain' is not supported here; send application/json",
          "Content-Type"),
    422: ("invalid_input", "model.depth: Input should be greater than or equal to 1", "model.depth"),
    429: ("too_many_jobs", "this API key already has 4 jobs queued or running, the limit "
                           "(EOC_NTK_MAX_JOBS_PER_KEY); wait for one to end or cancel one", None),
    503: ("unavailable", "the job store (Redis) does not answer; retry later", None),
    504: ("timeout", "the computation ran past its time limit of 600 s (EOC_NTK_JOB_TIMEOUT); send it with "
                    "'Prefer: respond-async' to run it as a job", None),
    "default": ("internal_error", "internal error; the incident was logged", None),
}


def _error(status: int | str) -> dict:
    code, message, field = ERROR_EXAMPLES[status]
    example = {"error": {"code": code, "message": message, **({"field": field} if field else {})}}
    headers = {"X-Request-ID": REQUEST_ID}
    if status in (429, 503):
        headers["Retry-After"] = {**_RETRY, "required": status == 429}
    if status == 401:
        headers["WWW-Authenticate"] = _AUTHENTICATE
    description = "Any other error (the same body)." if status == "default" else None
    out = {"model": ErrorOut, "headers": headers, "content": {"application/json": {"example": example}}}
    return {**out, "description": description} if description else out


#: The 200 of a figure: PNG or SVG bytes, never JSON.
IMAGE_OK = {"description": "The figure, in the format asked for (`format=png`, the default, `svg` or `pdf`).",
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}},
                        "image/svg+xml": {"schema": {"type": "string", "format": "binary"}},
                        "application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            "headers": {"Cache-Control": _NO_STORE}}

_JOB_EXAMPLE = {"job_id": "spectra-0123456789abcdef0123456789abcdef", "op": "spectra", "status": "queued",
                "progress": 0.0, "status_url": "/v1/jobs/spectra-0123456789abcdef0123456789abcdef",
                "links": {"self": "/v1/jobs/spectra-0123456789abcdef0123456789abcdef",
                          "result": "/v1/jobs/spectra-0123456789abcdef0123456789abcdef/result",
                          "plot": "/v1/jobs/spectra-0123456789abcdef0123456789abcdef/plot"}}
_ACCEPTED: dict[str, Any] = {
    "model": JobOut,
    "description": "Accepted as a job: always with `Prefer: respond-async` (finished already when the result was "
                   "cached), else when the request is predicted to take long. Poll `Location`.",
    "headers": {"Location": _LOCATION, "Retry-After": _POLL, "Preference-Applied": _PREFERENCE},
    "content": {"application/json": {"example": _JOB_EXAMPLE}}}
_NOT_MODIFIED = {"description": "Not modified: the If-None-Match header names the current answer (no body).",
                 "headers": _CACHE_HEADERS}


#: The error statuses of a computation (body parsing, limits, the data, the job limit, the store, the time limit).
COMPUTE_ERRORS = (400, 401, 404, 408, 409, 413, 415, 422, 429, 503, 504)
#: The error statuses of an upload.
UPLOAD_ERRORS = (400, 401, 408, 413, 415, 422, 503)
#: The error statuses of reading something stored by id or by its question.
LOOKUP_ERRORS = (401, 404, 422, 503)


def operation(*statuses: int, ok: dict | None = None, ok_status: int = 200, accepted: bool = False,
              cacheable: bool = False, conditional: bool = False, request_body: dict | None = None,
              secured: bool = True, more: dict | None = None) -> dict:
    """``responses`` and ``openapi_extra`` of one route (pass as ``**operation(...)``).

    ``statuses``: the error statuses the route can answer; ``ok``: its success answer (description,
    content, example: merged with the response model's schema); ``accepted``: it may answer 202 with
    a job; ``cacheable``: its success carries ETag and Cache-Control; ``conditional``: it answers 304
    to If-None-Match; ``more``: other answers (with their own model); ``request_body``: an
    ``openapi_extra`` request body (raw uploads)."""
    success = dict(ok or {})
    success["headers"] = {"X-Request-ID": REQUEST_ID, **success.get("headers", {}),
                          **(_CACHE_HEADERS if cacheable else {})}
    responses: dict[int | str, dict] = {ok_status: success}
    if accepted:
        responses[202] = {**_ACCEPTED, "headers": {"X-Request-ID": REQUEST_ID, **_ACCEPTED["headers"]}}
    if conditional:
        responses[304] = {**_NOT_MODIFIED, "headers": {"X-Request-ID": REQUEST_ID, **_CACHE_HEADERS}}
    errors: list[int | str] = [*sorted(set(statuses)), "default"]
    for status in errors:
        responses[status] = _error(status)
    for status, answer in (more or {}).items():
        responses[status] = {**answer, "headers": {"X-Request-ID": REQUEST_ID, **answer.get("headers", {})}}
    extra: dict[str, Any] = {"security": SECURITY} if secured else {}
    if request_body is not None:
        extra["requestBody"] = request_body
    return {"responses": responses, "openapi_extra": extra or None}

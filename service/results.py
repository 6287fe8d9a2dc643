"""Stored results to responses: JSON answers (rendered once, see :mod:`jobs.answers`) with their
ETag and caching headers, or raw .npy."""
from __future__ import annotations

import io

import numpy as np
from fastapi import Response

from jobs.answers import answer_doc, with_cache
from jobs.codec import StoredValue
from jobs.store import CachedAnswer

from .config import Settings
from .errors import NotAcceptable

__all__ = ["result_body", "answer_response", "json_response", "cache_headers", "etag_matches", "npy_bytes",
           "kernel_for_npy", "NPY", "JSON"]

NPY = "application/x-npy"
JSON = "application/json"


def result_body(spec: dict, value: StoredValue, cache: str) -> dict:
    """The JSON answer of ``spec`` as a dict (the figures draw from it); the bytes of an answer
    come from :func:`answer_response`."""
    return {**answer_doc(spec, value), "cache": cache}


def cache_headers(etag: str, max_age: int, settings: Settings) -> dict[str, str]:
    """ETag (weak: answers of one result differ in their ``cache`` field only) and
    ``Cache-Control: private, max-age`` (a finished result never changes for its key); with API
    keys, the answer varies with the key."""
    headers = {"ETag": f'W/"{etag}"', "Cache-Control": f"private, max-age={max_age}"}
    if settings.api_key_list:
        headers["Vary"] = "X-API-Key, Authorization"
    return headers


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """True when an ``If-None-Match`` header names ``etag`` (weak comparison) or is ``*``."""
    if not if_none_match:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/").strip('"') == etag:
            return True
    return False


def json_response(body: bytes, etag: str, max_age: int, settings: Settings, if_none_match: str | None = None,
                  status_code: int = 200) -> Response:
    """``body`` as it is, with its caching headers; 304 without a body when ``If-None-Match`` names it."""
    headers = cache_headers(etag, max_age, settings)
    if etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, status_code=status_code, media_type=JSON, headers=headers)


def answer_response(answer: CachedAnswer, cache: str, settings: Settings, if_none_match: str | None = None) -> Response:
    """A rendered answer with ``cache`` spliced in, its ETag the result's content hash."""
    return json_response(with_cache(answer.body, cache), answer.etag, settings.cache_ttl, settings, if_none_match)


def kernel_for_npy(spec: dict, value: StoredValue) -> np.ndarray:
    """The single kernel of a kernels result, for ``Accept: application/x-npy``."""
    if spec["op"] != "kernels" or len(spec["kinds"]) != 1:
        raise NotAcceptable("application/x-npy is available for /v1/kernels results with exactly one kind; "
                            "ask for application/json", field="Accept")
    return value.arrays[spec["kinds"][0]]


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()

"""The one JSON path: every JSON body is capped and parsed once, off the event loop.

A JSON body is refused with 413 when it is over ``EOC_NTK_MAX_JSON_BYTES`` (declared, streamed
in, or read: :class:`JSONTooLarge`); large data go to ``POST /v1/datasets`` as ``.npy`` or CSV.
Below the cap it is parsed and validated in a worker thread, at most
``EOC_NTK_UPLOAD_CONCURRENCY`` bodies at once: its numeric arrays (``x``, ``x2``, ``y``) straight
into NumPy arrays of the narrowest exact dtype, in chunks (:mod:`service.json_numbers`), the
rest, a few small fields, by
``Model.model_validate_json`` (pydantic holds the interpreter lock for the call and builds a
Python object per value: small once the arrays are out). See ``bench/README.md``.

Routers built with ``route_class=JSONRoute`` hand FastAPI the validated model instance, so
FastAPI does not parse or validate the body again; a refusal is answered as FastAPI answers
its own validation errors (400 ``malformed_json`` naming ``body``, 422 naming the field).
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

import anyio
from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from .errors import BodyInvalid, BodyTooLarge
from .json_numbers import CONTEXT_KEY, Cut, body_position, cut_arrays, unread_refusals

__all__ = ["JSONRoute", "JSONTooLarge", "read_body", "media_type", "is_json_media", "check_json_size",
           "validate_json", "json_too_large_message"]

M = TypeVar("M", bound=BaseModel)


def media_type(content_type: str | None, default: str = "") -> str:
    """The media type of a ``Content-Type`` header, lower case, without its parameters."""
    return (content_type or default).split(";")[0].strip().lower()


def is_json_media(media: str) -> bool:
    """``application/json`` or any ``+json`` type."""
    return media == "application/json" or media.endswith("+json")


def json_too_large_message(limit: int) -> str:
    """The refusal of a JSON body over ``limit`` bytes, naming the upload route."""
    return (f"a JSON body may hold at most {limit} bytes (EOC_NTK_MAX_JSON_BYTES); send large data as .npy or CSV "
            "to POST /v1/datasets (labels as .npy to POST /v1/labels) and refer to them by dataset_id (labels_id)")


class JSONTooLarge(BodyTooLarge):
    """A JSON body over ``EOC_NTK_MAX_JSON_BYTES`` (413, field ``body``)."""

    def __init__(self, limit: int):
        super().__init__(json_too_large_message(limit))


def check_json_size(body: bytes | bytearray, limit: int) -> None:
    """:class:`JSONTooLarge` when ``body`` is over ``limit`` bytes."""
    if len(body) > limit:
        raise JSONTooLarge(limit)


def validate_json(model: type[M], body: bytes | bytearray, limit: int, context: dict | None = None) -> M:
    """``body`` parsed and validated by ``model.model_validate_json`` (call it from a worker thread);
    ``context``: pydantic's validation context (the configured limits some validators read).

    Raises
    ------
    JSONTooLarge
        ``body`` is over ``limit`` bytes (nothing is parsed).
    BodyInvalid
        Not JSON (error type ``json_invalid``: 400) or not valid for ``model`` (422); the
        errors are pydantic's, located under ``body`` as FastAPI locates its own, or, for a long
        array the fast reader does not read, the reader's
        (:func:`service.json_numbers.unread_refusals`).
    """
    check_json_size(body, limit)
    cut = cut_arrays(body)
    refusals = unread_refusals(cut, body)
    if refusals:  # refused before pydantic builds a Python object per value of a long array
        raise BodyInvalid(refusals)
    try:
        return model.model_validate_json(cut.body, context={**(context or {}), CONTEXT_KEY: cut.arrays})
    except ValidationError as exc:
        raise BodyInvalid([_located(dict(e), body, cut) for e in exc.errors(include_url=False)[:20]]) from None


_NESTING = ("the body nests arrays or objects too deeply; x must be a 2-D array "
            "(a list of points, each a list of numbers)")
_NOT_UTF8 = "the body is not UTF-8 text; send JSON encoded as UTF-8"


def _located(err: dict, body: bytes | bytearray, cut: Cut) -> dict:
    """A pydantic error as FastAPI reports a body's: ``loc`` under ``body``; a JSON syntax error
    without its input (the raw body), placed in the body as sent, its cause said where it is
    known (nesting, encoding)."""
    out = {**err, "loc": ("body", *err.get("loc", ()))}
    if err.get("type") == "json_invalid":
        out["input"] = {}
        reason = str((err.get("ctx") or {}).get("error", ""))
        if "recursion limit" in reason:
            out["ctx"] = {"error": _NESTING}
        elif not _is_utf8(body):
            out["ctx"] = {"error": _NOT_UTF8}
        else:
            out["ctx"] = {**(err.get("ctx") or {}), "error": body_position(cut, body, reason)}
            out["msg"] = body_position(cut, body, str(err.get("msg", "")))
    return out


def _is_utf8(body: bytes | bytearray) -> bool:
    try:
        bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def read_body(request: Request) -> bytearray:
    """The request body in one buffer of its own, grown as the chunks arrive, never sized by the
    declared ``Content-Length`` (a client that declares 64 MiB and sends nothing costs nothing)."""
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
    return buf


def _settings(request: Request):
    return request.app.state.engine.settings


class JSONRequest(Request):
    """A request whose ``json()`` is the body validated against ``body_model`` in a worker thread."""

    body_model: type[BaseModel] | None = None

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            media = media_type(self.headers.get("content-type"), default="application/json")
            limit = _settings(self).max_json_bytes
            declared = self.headers.get("content-length", "")
            if is_json_media(media) and declared.isdigit() and int(declared) > limit:
                raise JSONTooLarge(limit)  # refused before a byte of it is read
            self._body = await read_body(self)
        return self._body

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            limit = _settings(self).max_json_bytes
            check_json_size(body, limit)
            if self.body_model is None:
                raise TypeError("a JSONRoute needs a pydantic model as its body")
            context = {"max_sweep_depths": _settings(self).max_sweep_depths}
            self._json = await anyio.to_thread.run_sync(validate_json, self.body_model, body, limit, context,
                                                        limiter=self.app.state.upload_slots)
        return self._json


class JSONRoute(APIRoute):
    """An APIRoute whose handlers see :class:`JSONRequest`: one capped, off-loop parse of the body."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()
        annotation = getattr(getattr(self.body_field, "field_info", None), "annotation", None)
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None

        async def json_handler(request: Request) -> Response:
            req = JSONRequest(request.scope, request.receive)
            req.body_model = model
            return await handler(req)

        return json_handler

"""FastAPI routes whose JSON bodies are parsed by orjson, large ones in a child process.

FastAPI parses a JSON body with ``json.loads`` before validating it; for the inline data
of a computation (1000 x 784 numbers, 15.9 MB) that took 0.30 s, longer than the spectrum
itself (``bench/bench_service.py``). Routers built with ``route_class=FastJSONRoute`` get
:class:`FastJSONRequest`, whose ``json()`` uses :func:`service.jsonparse.loads` (orjson,
0.05 s, with the standard library's answers for what orjson refuses). Bodies over
:data:`OFF_LOOP_BYTES` are parsed and validated in a child process
(:mod:`service.jsonchild`): neither the event loop nor the interpreter lock waits for them.
"""
from __future__ import annotations

from typing import Any, Callable

import anyio
from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from . import jsonchild
from .jsonparse import OFF_LOOP_BYTES, loads, loads_large, request_loads

__all__ = ["FastJSONRequest", "FastJSONRoute", "read_body", "loads", "loads_large", "OFF_LOOP_BYTES"]


def _parse_and_validate(body: bytes, model: type[BaseModel] | None) -> Any:
    """The parsed body, as an instance of ``model`` when it validates (FastAPI then takes the
    instance as it is, without validating it again on the event loop), else as parsed (FastAPI
    validates it and reports the errors as usual)."""
    parsed = request_loads(body)
    if model is not None:
        try:
            return model.model_validate(parsed)
        except ValidationError:
            pass
    return parsed


async def read_body(request: Request) -> bytearray:
    """The request body in one buffer of its own, grown as the chunks arrive (realloc: no second
    copy), never by the declared ``Content-Length``: a client that declares 64 MiB and sends
    nothing costs nothing. Not ``request.body()``: Starlette joins a list of chunks into it, twice
    the body for a moment. A ``bytearray``, which every parser here takes."""
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
    return buf


class FastJSONRequest(Request):
    """A request whose ``json()`` uses orjson; bodies over :data:`OFF_LOOP_BYTES` are parsed (and
    validated against ``body_model``) in a worker thread, so the event loop keeps serving."""

    body_model: type[BaseModel] | None = None

    async def body(self) -> bytes:
        """The body, read once by :func:`read_body`."""
        if not hasattr(self, "_body"):
            self._body = await read_body(self)
        return self._body

    def _settings(self):
        engine = getattr(getattr(self.scope.get("app"), "state", None), "engine", None)
        return getattr(engine, "settings", None)

    def _workers(self) -> int:
        """EOC_NTK_UPLOAD_CONCURRENCY: the most large JSON bodies parsed at once."""
        return getattr(self._settings(), "upload_concurrency", 2)

    def _max_n(self) -> int | None:
        """EOC_NTK_MAX_N: a matrix of more rows is refused once parsed, before it is validated."""
        return getattr(self._settings(), "max_n", None)

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            if len(body) > OFF_LOOP_BYTES and self.body_model is not None:
                # In a child process: neither the event loop nor the interpreter lock waits for it.
                self._json = await anyio.to_thread.run_sync(jsonchild.parse, body, self.body_model, self._workers(),
                                                         self._max_n())
            elif len(body) > OFF_LOOP_BYTES:
                self._json = await anyio.to_thread.run_sync(_parse_and_validate, body, self.body_model)
            else:
                self._json = request_loads(body)
        return self._json


class FastJSONRoute(APIRoute):
    """An APIRoute whose handlers see :class:`FastJSONRequest`."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()
        annotation = getattr(getattr(self.body_field, "field_info", None), "annotation", None)
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None

        async def fast_json_handler(request: Request) -> Response:
            fast = FastJSONRequest(request.scope, request.receive)
            fast.body_model = model
            return await handler(fast)

        return fast_json_handler

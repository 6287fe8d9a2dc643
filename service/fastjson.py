"""JSON request bodies parsed by orjson (about 6x faster than the standard library).

FastAPI parses a JSON body with ``json.loads`` before validating it; for the inline data
of a computation (1000 x 784 numbers, 15.9 MB) that took 0.30 s, longer than the spectrum
itself (``bench/bench_service.py``). Routers built with ``route_class=FastJSONRoute`` get
:class:`FastJSONRequest`, whose ``json()`` uses orjson (0.05 s) and falls back to the
standard library for anything orjson refuses (``NaN``, numbers that overflow, other
encodings), so such bodies get exactly the answer they got before: accepted, or refused
with the same message (e.g. "x contains NaN ..." from the data checks). The one
difference: integers beyond 64 bits become floats (a depth of 10^30 is then refused as
"not a valid integer" instead of as over the depth limit; a 4xx naming the field either way).
"""
from __future__ import annotations

import json
from typing import Any, Callable

import anyio
from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

try:
    import orjson
except ImportError:  # optional speed-up: the standard library is always correct
    orjson = None
try:
    from pydantic_core import from_json
except ImportError:  # pydantic < 2.5
    from_json = None

__all__ = ["FastJSONRequest", "FastJSONRoute", "loads", "OFF_LOOP_BYTES"]

#: Bodies longer than this are parsed in a worker thread, never on the event loop (a 39 MB
#: body with a NaN, which orjson refuses, takes seconds in the standard library).
OFF_LOOP_BYTES = 1 << 20


def loads(body: bytes) -> Any:
    """``json.loads(body)``, the same result, faster for large documents."""
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # NaN, 1e400, UTF-16 ...: pydantic's parser (2.5x faster), else the standard library
    if from_json is not None and isinstance(body, (bytes, bytearray)):
        try:
            return from_json(body, allow_inf_nan=True)
        except ValueError:
            pass  # let the standard library decide, with its messages
    return json.loads(body)


def _request_loads(body: bytes) -> Any:
    """:func:`loads`, where bodies that are not JSON text at all (bad UTF-8, nesting deeper than
    the parser's recursion limit) raise :class:`json.JSONDecodeError` too, with a message that
    says so: FastAPI then answers them as malformed JSON naming the body (not a bare 400)."""
    try:
        return loads(body)
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError(f"the body is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                   "send JSON encoded as UTF-8", "", 0) from exc
    except RecursionError as exc:
        raise json.JSONDecodeError("the body nests arrays or objects too deeply; x must be a 2-D array "
                                   "(a list of points, each a list of numbers)", "", 0) from exc


def _parse_and_validate(body: bytes, model: type[BaseModel] | None) -> Any:
    """The parsed body, as an instance of ``model`` when it validates (FastAPI then takes the
    instance as it is, without validating it again on the event loop), else as parsed (FastAPI
    validates it and reports the errors as usual)."""
    parsed = _request_loads(body)
    if model is not None:
        try:
            return model.model_validate(parsed)
        except ValidationError:
            pass
    return parsed


class FastJSONRequest(Request):
    """A request whose ``json()`` uses orjson; bodies over :data:`OFF_LOOP_BYTES` are parsed (and
    validated against ``body_model``) in a worker thread, so the event loop keeps serving."""

    body_model: type[BaseModel] | None = None

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            if len(body) > OFF_LOOP_BYTES:
                self._json = await anyio.to_thread.run_sync(_parse_and_validate, body, self.body_model)
            else:
                self._json = _request_loads(body)
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

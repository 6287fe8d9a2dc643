"""Large JSON bodies parsed and validated in a child process, so that the API's interpreter lock stays free.

orjson and pydantic each hold the interpreter lock for the whole of one call: in a worker
thread of the API a valid 18 MB body kept ``/healthz`` waiting 7 s (at load 9) and grew the
process by 20x the body in Python lists and floats. Here the child parses (by orjson alone,
:func:`service.jsonparse.loads_large`) and validates the body against the route's model, and
sends back plain data only:

- the document without its matrices, as JSON (small), with a placeholder for each matrix;
- the matrices ``x`` and ``x2`` as raw float64 files next to the body's (their shapes sent);
- or the refusal: a message and field, or pydantic's errors reduced to plain values.

The body goes to the child, and the matrices come back, through files in a private
temporary folder (``tempfile.mkdtemp``, mode 0700, deleted at once): a pipe would hold a
pickled copy in the API process on each side (the 21 MB body with a NaN then grew the API by
3.0x its size; by files, 1x).

The API process validates the small document again (cheap) and puts the arrays in their
fields: the route receives the model instance, ``x`` a float64 array instead of a list of
lists (``engine.resolve`` checks either the same way). Nothing built from the client's input
is pickled: what crosses the process boundary is bytes, strings, numbers and tuples of them.

The children are ``spawn``-ed (children of the API process itself, not of the jobs' fork
server, whose children are jobs), started with the API (:func:`warm_up`, which hides their
1-3 s of imports), niced, and live as long as the API process; at most
``EOC_NTK_UPLOAD_CONCURRENCY`` of them: bodies beyond that wait, so the memory of parsing is
bounded by that many bodies at once. A child that dies (out of memory) is answered 503 and
the pool is rebuilt for the next body.
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Mapping

import numpy as np
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from eoc_ntk import check_data
from eoc_ntk.core.errors import InvalidParameterError
from jobs.lifeline import exit_when_ended

from .errors import BodyInvalid, BodyRefused
from .jsonparse import request_loads
from .malloc import pin_mmap_threshold

try:
    import orjson
except ImportError:  # optional speed-up
    orjson = None  # type: ignore[assignment]

__all__ = ["parse", "warm_up", "ARRAY_FIELDS"]

#: Fields sent back as raw float64 bytes (the large matrices of a request).
ARRAY_FIELDS = ("x", "x2")
_PLACEHOLDER = [[0.0]]
_POOL: list[ProcessPoolExecutor] = []
_LOCK = threading.Lock()


def _pool(workers: int) -> ProcessPoolExecutor:
    with _LOCK:
        if not _POOL:
            _POOL.append(ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_child_init, initargs=(os.getpid(),)))
        return _POOL[0]


def warm_up(workers: int = 2) -> None:
    """Start a child now (in a daemon thread), so that the first large body does not wait for
    its start and imports (1-3 s on a loaded machine). The children live as long as the
    process (the executor joins them at exit)."""
    threading.Thread(target=lambda: _pool(workers).submit(_ready).result(), name="eoc-ntk-json-child",
                     daemon=True).start()


def _ready() -> bool:
    return True  # the child's imports (this module's) are done once it answers


def parse(body: bytes, model: type[BaseModel], workers: int = 2, max_n: int | None = None) -> BaseModel:
    """``body`` as an instance of ``model``, parsed and validated in a child process.

    Called from a worker thread of the API (it waits for the child). ``max_n``
    (``EOC_NTK_MAX_N``): a matrix of more rows is refused as soon as the body is parsed, before
    the seconds of validating and converting its numbers.

    Raises
    ------
    BodyRefused
        A non-finite literal (see :func:`service.jsonparse.loads_large`), a ragged matrix, or one
        of more than ``max_n`` rows.
    BodyInvalid
        The body fails the model's validation.
    json.JSONDecodeError
        The body is not JSON (FastAPI answers it as malformed JSON).
    """
    pool = _pool(workers)
    folder = tempfile.mkdtemp(prefix="eoc-ntk-json-")  # private (0700); files live in the page cache, not here
    path = os.path.join(folder, "body")
    try:
        with open(path, "wb") as fh:
            fh.write(body)
        kind, *rest = pool.submit(_child, path, model, max_n).result()
        if kind == "ok":
            rest[1] = [(name, shape, np.fromfile(f"{path}.{name}", dtype="<f8").reshape(shape))
                       for name, shape in rest[1]]
    except (BrokenProcessPool, MemoryError, OSError) as exc:  # OSError: no room for the temporary files
        if isinstance(exc, BrokenProcessPool):
            with _LOCK:
                if _POOL and _POOL[0] is pool:
                    _POOL.clear()
        raise StarletteHTTPException(503, "the JSON parser ran out of memory or disk, or stopped; retry later, or "
                                          "send the data as .npy to POST /v1/datasets",
                                     headers={"Retry-After": "5"}) from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if kind == "refused":
        raise BodyRefused(rest[0], field=rest[1])
    if kind == "malformed":
        raise json.JSONDecodeError(rest[0], "", rest[1])
    if kind == "invalid":
        raise BodyInvalid(rest[0])
    doc, arrays = rest
    instance = model.model_validate(_loads(doc))  # the small rest, matrices as placeholders
    for name, _, arr in arrays:
        setattr(instance, name, arr)
    return instance


def _loads(doc: bytes):
    return orjson.loads(doc) if orjson is not None else json.loads(doc)


def _dumps(doc) -> bytes:
    return orjson.dumps(doc) if orjson is not None else json.dumps(doc).encode()


# --- The child's side ------------------------------------------------------------------------

#: Niceness of the children: on a busy machine the API's event loop runs before a parse.
CHILD_NICE = 5


def _child_init(api_pid: int) -> None:
    exit_when_ended(api_pid)  # an API killed outright (even while this child starts) leaves no parser behind
    pin_mmap_threshold()
    with contextlib.suppress(OSError):
        os.nice(CHILD_NICE)


def _child(path: str, model: type[BaseModel], max_n: int | None = None) -> tuple:
    """In the child: read the body from ``path``, parse, validate, write the matrices next to
    it (``path.x``, raw float64); only plain data is returned."""
    with open(path, "rb") as fh:
        body = fh.read()
    try:
        parsed = request_loads(body)
    except BodyRefused as exc:
        return ("refused", str(exc.detail), exc.field)
    except json.JSONDecodeError as exc:
        return ("malformed", exc.msg, exc.pos)
    try:
        model.model_validate(parsed)
    except ValidationError as exc:
        return ("invalid", [_plain(e) for e in exc.errors()[:20]])
    too_many = _over_max_n(parsed, max_n)
    if too_many is not None:  # before converting it, and before it crosses to the API process
        return ("refused", *too_many)
    arrays = []
    if isinstance(parsed, dict):
        for name in ARRAY_FIELDS:
            value = parsed.get(name)
            if not isinstance(value, list) or not value:
                continue
            try:
                arr = np.array(value, dtype=np.float64)  # validated numbers: only a ragged list fails
            except ValueError:
                try:
                    check_data(value, name=name)  # the core's message for it
                except InvalidParameterError as exc:
                    return ("refused", str(exc), name)
                raise
            parsed[name] = _PLACEHOLDER
            arr.tofile(f"{path}.{name}")
            arrays.append((name, arr.shape))
    return ("ok", _dumps(parsed), arrays)


def _over_max_n(parsed, max_n: int | None) -> tuple[str, str] | None:
    """``(message, field)`` for a validated, rectangular matrix of more than ``max_n`` rows (the
    order of a small body's checks: the schema, then a ragged matrix, then the limit)."""
    if max_n is None or not isinstance(parsed, dict):
        return None
    for name in ARRAY_FIELDS:
        rows = parsed.get(name)
        if isinstance(rows, list) and len(rows) > max_n and len({len(row) for row in rows}) == 1:
            return f"{name} has n = {len(rows)} points, over the limit {max_n} (EOC_NTK_MAX_N)", name
    return None


def _plain(err: Mapping[str, Any]) -> dict[str, Any]:
    """A pydantic error as plain values: the input reduced to its kind (a list or an object
    matters to :func:`service.errors.validation_message`), the context as text."""
    value = err.get("input")
    out: dict[str, Any] = {
           "type": str(err.get("type", "")), "loc": [p if isinstance(p, int) else str(p) for p in err.get("loc", ())],
           "msg": str(err.get("msg", "")),
           "input": [] if isinstance(value, list) else {} if isinstance(value, dict) else None}
    if err.get("ctx"):
        out["ctx"] = {str(k): str(v) for k, v in err["ctx"].items()}
    return out

"""Turning an engine :class:`~service.engine.Answer` into an HTTP response."""
from __future__ import annotations

from fastapi import Response
from fastapi.concurrency import run_in_threadpool

from jobs.specs import sweeps_spec
from jobs.states import JobStatus

from ..engine import Answer, Data, Engine
from ..errors import NotFound
from ..jobdoc import job_body, status_url
from ..labels import labels_id_from, resolve_labels
from ..results import NPY, answer_response, kernel_for_npy, npy_bytes
from ..schemas import SweepsIn
from ..specs import build_model, check_sweep_size

#: Seconds a client is told to wait before it polls an accepted job that has not finished.
POLL_AFTER = 1


def accepted(engine: Engine, job_id: str, principal: str | None) -> Response:
    """202 with the job resource (finished already when the answer was cached) and its ``Location``
    (blocking: reads the job's state)."""
    view = engine.job(job_id, principal)
    headers = {"Location": status_url(job_id), "Preference-Applied": "respond-async"}
    if view.status != JobStatus.finished:
        headers["Retry-After"] = str(POLL_AFTER)
    return Response(job_body(engine, view, principal), status_code=202, media_type="application/json", headers=headers)


def result_response(engine: Engine, spec: dict, answer: Answer, npy: bool) -> Response:
    if npy:
        assert answer.value is not None  # a result, not a job
        return Response(npy_bytes(kernel_for_npy(spec, answer.value)), media_type=NPY,
                        headers={"X-Cache": answer.cache})
    return answer_response(engine.rendered(spec, answer), answer.cache, engine.settings)


async def cached_response(engine: Engine, spec: dict, dataset_id: str, principal: str | None,
                          if_none_match: str | None = None, *, missing: str | None = None,
                          required: bool = False) -> Response | None:
    """The cached answer of ``spec`` (``"cache": "hit"``; 304 when ``If-None-Match`` names it):
    one store look-up from the event loop, else (answer not rendered yet, store trouble) from the
    stored result in a thread. When nothing is cached: :class:`NotFound` with the message
    ``missing``, or None without one. ``required``: a store outage is a 503."""
    found = await engine.hot_answer(spec, principal, dataset_id)
    if found is None:
        found = await run_in_threadpool(engine.answer_of, spec, principal, dataset_id, required=required)
    if found is None:
        if missing is None:
            return None
        raise NotFound(missing, field="dataset_id")
    return answer_response(found, "hit", engine.settings, if_none_match)


async def respond(engine: Engine, spec: dict, pinned: list[Data], prefer_async: bool,
                  npy: bool = False, principal: str | None = None, callback_url: str | None = None) -> Response:
    """Answer from the cache, as a job (202), or computed now, in a worker thread; always a job
    with a ``callback_url``."""
    answer = await run_in_threadpool(engine.answer, spec, pinned, prefer_async, principal, callback_url)
    if answer.job_id is not None:
        return await run_in_threadpool(accepted, engine, answer.job_id, principal)
    return await run_in_threadpool(result_response, engine, spec, answer, npy)


async def sweep_request(body: SweepsIn, engine: Engine, principal: str | None) -> tuple[dict, Data, list[Data]]:
    """A checked sweep request (of ``/v1/sweeps`` or ``/v1/plots/sweep``): its spec, its data, and
    what the answer pins (the data, and the labels when ``y`` or ``labels_id`` is given)."""
    settings = engine.settings
    check_sweep_size(body.depths, body.activations, settings)
    models = [build_model(max(body.depths), act, body.sigma_w, body.sigma_b, settings, f"activations.{i}")
              for i, act in enumerate(body.activations)]
    data = await run_in_threadpool(engine.resolve, body.x, body.dataset_id, "x", principal)
    spec = sweeps_spec(data.dataset_id, body.depths, models)
    if body.y is None and body.labels_id is None:
        return spec, data, [data]
    labels = await run_in_threadpool(resolve_labels, engine, body.y, body.labels_id, data, principal)
    return {**spec, "labels_id": labels_id_from(labels)}, data, [data, labels]

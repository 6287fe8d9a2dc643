"""Labels and what they mean for training (docs/learning.md): ``POST /v1/labels``,
``POST /v1/dynamics`` and ``POST /v1/learning-curves``, answered from the cache, now, or as a job (202)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from jobs.specs import dynamics_spec, learning_curves_spec

from ..contract import COMPUTE_ERRORS, UPLOAD_ERRORS, operation
from ..deps import EngineDep, PreferAsync, PrincipalDep, require_json
from ..engine import Data, Engine
from ..errors import InvalidInput
from ..jsonbody import JSONRoute
from ..labels import labels_id_from, labels_id_of, parse_labels_upload, resolve_labels
from ..schema_rules import DATA_NUMBER, ROWS_SCHEMA
from ..schemas import DynamicsIn, DynamicsOut, LabelsOut, LearningCurveOut, LearningCurvesIn
from ..specs import model_from_request
from .common import respond

router = APIRouter(prefix="/v1", tags=["labels"], route_class=JSONRoute)
_JSON_ONLY = [Depends(require_json)]

_LABELS_BODY = {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "required": ["y"], "additionalProperties": False,
                                    "properties": {"y": {"anyOf": [
                                        {"type": "array", "minItems": 1, "items": DATA_NUMBER}, ROWS_SCHEMA]}}},
                         "example": {"y": [1.0, -0.5, 0.25]}},
    "application/x-npy": {"schema": {"type": "string", "format": "binary",
                                     "description": "numpy.save(f, y): labels of shape (n,) or (n, k)."}},
}}


@router.post("/labels", status_code=201, response_model=LabelsOut,
             **operation(*UPLOAD_ERRORS, ok_status=201, request_body=_LABELS_BODY))
async def upload_labels(request: Request, engine: EngineDep, who: PrincipalDep):
    """Store labels (JSON `{"y": [...]}` or .npy, shape (n,) or (n, k)); the id is a hash of their content.

    They are checked against the data's n when a computation uses them."""
    body = await request.body()
    y = await run_in_threadpool(parse_labels_upload, request.headers.get("content-type"), body, engine.settings)
    labels_id = labels_id_of(y)
    await run_in_threadpool(lambda: engine.storage.put_labels(labels_id, y, owner=who))
    return LabelsOut(labels_id=labels_id, n=y.shape[0], shape=list(y.shape))


async def _labelled(body, engine, who):
    """The model, the data and the labels of a request with labels, checked against each other."""
    model = model_from_request(body.model, engine.settings)
    data = await run_in_threadpool(engine.resolve, body.x, body.dataset_id, "x", who)
    labels = await run_in_threadpool(resolve_labels, engine, body.y, body.labels_id, data, who)
    return model, data, labels


async def dynamics_request(body: DynamicsIn, engine: Engine, who: str | None) -> tuple[dict, list[Data]]:
    """A checked dynamics request (of ``/v1/dynamics`` or ``/v1/plots/dynamics``): spec and pinned data."""
    model, data, labels = await _labelled(body, engine, who)
    steps = body.steps if body.steps is not None else (0, 1, 10, 100, 1000, 10000)
    spec = dynamics_spec(data.dataset_id, labels_id_from(labels), model, body.learning_rate, steps, body.init)
    return spec, [data, labels]


async def learning_curves_request(body: LearningCurvesIn, engine: Engine,
                                  who: str | None) -> tuple[dict, list[Data]]:
    """A checked learning-curve request (of ``/v1/learning-curves`` or ``/v1/plots/learning-curve``)."""
    model, data, labels = await _labelled(body, engine, who)
    n = data.x.shape[0]
    for i, m in enumerate(body.sizes):
        if m > n - 1:
            raise InvalidInput(f"sizes[{i}] = {m} leaves no test point: the data have n = {n} points, so every "
                               f"size must be in [1, {n - 1}]", field="sizes")
    spec = learning_curves_spec(data.dataset_id, labels_id_from(labels), model, body.sizes, body.ridge,
                                body.splits, body.seed)
    return spec, [data, labels]


@router.post("/dynamics", response_model=DynamicsOut, dependencies=_JSON_ONLY,
             **operation(*COMPUTE_ERRORS, accepted=True, cacheable=True))
async def dynamics(body: DynamicsIn, engine: EngineDep, prefer_async: PreferAsync, who: PrincipalDep):
    """Exact training loss of the infinite-width network under full-batch gradient descent
    (`eoc_ntk.dynamics`): `L_t = (1/2n) sum_i (1 - eta lambda_i)^(2t) |V_i^T y|^2`, the largest rate at
    which the linearised, infinite-width model converges, `2 / lambda_max(K/n)`, per-direction fit times and
    the unreachable share of `|y|^2`. Scale-free: at any input scale the loss is that of the unscaled data;
    rates and eigenvalues outside float64 are null, with their power of two in `scaled`."""
    spec, pinned = await dynamics_request(body, engine, who)
    return await respond(engine, spec, pinned, prefer_async, principal=who, callback_url=body.callback_url)


@router.post("/learning-curves", response_model=LearningCurveOut, dependencies=_JSON_ONLY,
             **operation(*COMPUTE_ERRORS, accepted=True, cacheable=True))
async def learning_curves(body: LearningCurvesIn, engine: EngineDep, prefer_async: PreferAsync, who: PrincipalDep):
    """Estimate of the held-out test MSE of NTK regression per training-set size (eigenlearning for a finite
    pool, sampled without replacement), next to the measured test MSE of `splits` random subsets of each size
    tested on the rest, with its standard deviation over the splits (`eoc_ntk.learning_curve`)."""
    spec, pinned = await learning_curves_request(body, engine, who)
    return await respond(engine, spec, pinned, prefer_async, principal=who, callback_url=body.callback_url)

"""Kernels, spectra and depth sweeps: answered from the cache, now, or as a job (202)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.concurrency import run_in_threadpool

from eoc_ntk import MAX_DEPTH
from eoc_ntk.core.activations import parse_activations
from jobs.dask_engine import DASK, NUMPY, engine_for
from jobs.specs import kernels_spec, spectra_spec, sweeps_spec

from ..contract import COMPUTE_ERRORS, LOOKUP_ERRORS, operation
from ..deps import EngineDep, PreferAsync, PrincipalDep, WantsNpy, require_json
from ..errors import InvalidInput, NotAcceptable, NotFound, core_errors
from ..jsonbody import JSONRoute
from ..patterns import ACTIVATION_PATTERN, ACTIVATIONS_PATTERN, DEPTHS_PATTERN
from ..results import answer_response
from ..schema_rules import depths_from_text
from ..schemas import (
    DATASET_ID_PATTERN,
    ActivationAB,
    KernelsIn,
    KernelsOut,
    SpectraIn,
    SpectrumOut,
    SweepOut,
    SweepsIn,
)
from ..specs import build_model, check_kernel_kinds, check_kernel_size, check_sweep_size, model_from_request
from .common import cached_response, respond, sweep_request

router = APIRouter(prefix="/v1", tags=["compute"], route_class=JSONRoute)
_JSON_ONLY = [Depends(require_json)]
IfNoneMatch = Annotated[str | None, Header(description="An ETag of an earlier answer: 304 (no body) while the "
                                                        "cached result is still that one.")]
_KERNELS_OK = {"description": "One matrix per requested kind (shape (n, n2), unnormalised); raw .npy with "
                              "`Accept: application/x-npy` and one kind.",
               "content": {"application/x-npy": {"schema": {"type": "string", "format": "binary"}}}}
_CACHED_OK = {"description": "The cached answer (`\"cache\": \"hit\"`)."}


@router.post("/kernels", response_model=KernelsOut, dependencies=_JSON_ONLY,
             **operation(*COMPUTE_ERRORS, 406, ok=_KERNELS_OK, accepted=True, cacheable=True))
async def kernels(body: KernelsIn, engine: EngineDep, prefer_async: PreferAsync, npy: WantsNpy, who: PrincipalDep):
    """Kernel matrices K(x, x2) of the requested kinds (ntk, nngp, icd, angle)."""
    if npy and len(set(body.kinds)) != 1:
        raise NotAcceptable("application/x-npy needs exactly one kind", field="Accept")
    model = model_from_request(body.model, engine.settings)
    check_kernel_kinds(model, body.kinds)
    data = await run_in_threadpool(engine.resolve, body.x, body.dataset_id, "x", who)
    pinned = [data]
    if body.x2 is not None or body.x2_dataset_id is not None:
        other = await run_in_threadpool(engine.resolve, body.x2, body.x2_dataset_id, "x2", who)
        pinned.append(other)
    check_kernel_size(data.x.shape[0], pinned[-1].x.shape[0], engine.settings)
    if len(pinned) > 1 and pinned[1].x.shape[1] != data.x.shape[1]:
        raise InvalidInput(f"x2 has {pinned[1].x.shape[1]} features but x has {data.x.shape[1]}; "
                           "both must have the same width m0", field="x2")
    spec = kernels_spec(data.dataset_id, pinned[1].dataset_id if len(pinned) > 1 else None, model, body.kinds)
    return await respond(engine, spec, pinned, prefer_async, npy, who, body.callback_url)


@router.post("/spectra", response_model=SpectrumOut, dependencies=_JSON_ONLY,
             **operation(*COMPUTE_ERRORS, accepted=True, cacheable=True))
async def spectra(body: SpectraIn, engine: EngineDep, prefer_async: PreferAsync, who: PrincipalDep):
    """Eigenvalues of the NTK matrix K/n, condition number, singularity and the ICD analysis."""
    model = model_from_request(body.model, engine.settings)
    if body.dataset_id is not None and not prefer_async and body.callback_url is None:
        # A repeated question by id is answered from its rendered answer, without loading the data
        # or the result (one store look-up per engine the spectrum may have run on); anything else
        # takes the full path below.
        for spec in _spectra_specs(engine.settings, body.dataset_id, model):
            found = await engine.hot_answer(spec, who, body.dataset_id)
            if found is not None:
                return answer_response(found, "hit", engine.settings)
    data = await run_in_threadpool(engine.resolve, body.x, body.dataset_id, "x", who)
    spec = spectra_spec(data.dataset_id, model, engine_for(engine.settings, "spectra", data.x.shape[0]))
    return await respond(engine, spec, [data], prefer_async, principal=who, callback_url=body.callback_url)


def _spectra_specs(settings, dataset_id: str, model) -> list[dict]:
    """The specs a cached spectrum of ``dataset_id`` under ``model`` may have: computed on one machine
    or (with a Dask scheduler configured) on the cluster, whose spec differs (its engine)."""
    engines = (NUMPY, DASK) if settings.dask_configured else (NUMPY,)
    return [spectra_spec(dataset_id, model, name) for name in engines]


@router.get("/spectra", response_model=SpectrumOut,
            **operation(*LOOKUP_ERRORS, ok=_CACHED_OK, cacheable=True, conditional=True))
async def cached_spectrum(
    engine: EngineDep,
    who: PrincipalDep,
    dataset_id: Annotated[str, Query(pattern=DATASET_ID_PATTERN)],
    depth: Annotated[int, Query(ge=1, le=MAX_DEPTH)],
    a: float | None = None,
    b: float | None = None,
    activation: Annotated[str | None, Query(
        min_length=1, max_length=200, pattern=ACTIVATION_PATTERN,
        description="Instead of a and b: relu, abs, linear (any case), leaky_relu:SLOPE or A,B; or a smooth "
                    "activation: erf, tanh, gelu, silu (swish).")] = None,
    sigma_w: Annotated[float | None, Query(ge=1e-150, le=1e150)] = None,
    sigma_b: Annotated[float, Query(ge=0.0, le=1e150)] = 0.0,
    if_none_match: IfNoneMatch = None,
):
    """A spectrum computed before, without sending the data again (404 if not cached).

    The activation is given either as `activation` (`relu`, `leaky_relu:0.1`, `0.3,0.7`) or as `a` and `b`.
    The answer carries an ETag (the result's content hash) and `Cache-Control: private, max-age`.
    """
    if activation is not None and (a is not None or b is not None):
        raise InvalidInput("give the activation either as activation=... or as a and b, not both", field="activation")
    if activation is None and (a is None or b is None):
        raise InvalidInput(f"{'a' if a is None else 'b'} is required: give both a and b, or activation=relu "
                           "(or leaky_relu:0.1, or A,B)", field="a" if a is None else "b")
    act: str | ActivationAB
    if activation is not None:
        act = activation
    else:
        assert a is not None and b is not None  # both given, checked above
        act = ActivationAB.model_construct(a=a, b=b)
    model = build_model(depth, act, sigma_w, sigma_b, engine.settings)
    for spec in _spectra_specs(engine.settings, dataset_id, model):
        found = await cached_response(engine, spec, dataset_id, who, if_none_match, required=True)
        if found is not None:
            return found
    raise NotFound("no cached spectrum for this dataset and model; compute it with POST /v1/spectra",
                   field="dataset_id")


@router.post("/sweeps", response_model=SweepOut, dependencies=_JSON_ONLY,
             **operation(*COMPUTE_ERRORS, accepted=True, cacheable=True))
async def sweeps(body: SweepsIn, engine: EngineDep, prefer_async: PreferAsync, who: PrincipalDep):
    """Extreme eigenvalues and condition number of K/n for every activation at every depth."""
    spec, _, pinned = await sweep_request(body, engine, who)
    return await respond(engine, spec, pinned, prefer_async, principal=who, callback_url=body.callback_url)


@router.get("/sweeps", response_model=SweepOut,
            **operation(*LOOKUP_ERRORS, ok=_CACHED_OK, cacheable=True, conditional=True))
async def cached_sweep(
    engine: EngineDep,
    who: PrincipalDep,
    dataset_id: Annotated[str, Query(pattern=DATASET_ID_PATTERN)],
    depths: Annotated[str, Query(min_length=1, max_length=1000, pattern=DEPTHS_PATTERN,
                                 description='Depths as in POST /v1/sweeps: "1:100", "1:200:10", "1,2,5".')],
    activations: Annotated[str, Query(min_length=1, max_length=1000, pattern=ACTIVATIONS_PATTERN,
                                      description='Activations in the order of the sweep: "relu,abs", '
                                                  '"relu;leaky_relu:0.1;0.3,0.7", "relu,tanh,gelu".')],
    sigma_w: Annotated[float | None, Query(ge=1e-150, le=1e150)] = None,
    sigma_b: Annotated[float, Query(ge=0.0, le=1e150)] = 0.0,
    if_none_match: IfNoneMatch = None,
):
    """A sweep computed before (404 if it is not cached); never computes. ETag and caching headers as
    `GET /v1/spectra`."""
    try:
        depth_list = depths_from_text(depths, engine.settings.max_sweep_depths)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="depths") from None
    with core_errors("activations"):
        acts = parse_activations(activations)
    check_sweep_size(depth_list, acts, engine.settings)
    models = [build_model(max(depth_list), act, sigma_w, sigma_b, engine.settings, f"activations.{i}")
              for i, act in enumerate(acts)]
    spec = sweeps_spec(dataset_id, depth_list, models)
    return await cached_response(engine, spec, dataset_id, who, if_none_match,
                                 missing="no cached sweep for this dataset, these depths and activations; compute it "
                                         "with POST /v1/sweeps")

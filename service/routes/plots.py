"""Plots of spectra, sweeps, training dynamics and learning curves as PNG or SVG: computed on request,
or of a finished job.

A figure's size is checked first (inches, dpi and pixels: :func:`eoc_ntk.plots.check_size`), and
it is rendered in a child process of the jobs' fork server (:func:`jobs.local.call_in_child`),
at most ``EOC_NTK_WORKERS`` at once: never in the API process, whose event loop and interpreter
lock stay free while it renders.
"""
from __future__ import annotations

import json
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from eoc_ntk import MAX_DEPTH, plots
from eoc_ntk.core.activations import parse_activations
from jobs.errors import JobTimedOut
from jobs.local import call_in_child
from jobs.specs import spectra_spec
from jobs.states import JobStatus

from ..contract import COMPUTE_ERRORS, IMAGE_OK, LOOKUP_ERRORS, operation
from ..deps import EngineDep, PreferAsync, PrincipalDep, require_json
from ..engine import Engine
from ..errors import Conflict, InvalidInput, NotAcceptable, NotFound, Timeout, core_errors
from ..jsonbody import JSONRoute
from ..patterns import ACTIVATIONS_PATTERN
from ..results import result_body
from ..schemas import DATASET_ID_PATTERN, DynamicsIn, LearningCurvesIn, SpectraIn, SweepsIn
from ..specs import build_model, check_sweep_size, model_from_request
from .common import accepted, sweep_request
from .jobs import JobId
from .learning import dynamics_request, learning_curves_request

router = APIRouter(tags=["plots"], route_class=JSONRoute)

Format = Annotated[Literal["png", "svg", "pdf"],
                   Query(description="Image format: `png` (default, 300 dpi), `svg` (text as text) or `pdf`.")]
Width = Annotated[float | None, Query(ge=plots.MIN_INCHES, le=plots.MAX_INCHES,
                                      description="Figure width in inches (default 7.5).")]
Height = Annotated[float | None, Query(ge=plots.MIN_INCHES, le=plots.MAX_INCHES,
                                       description="Figure height in inches (default 4.2).")]
Dpi = Annotated[int | None, Query(ge=plots.MIN_DPI, le=plots.MAX_DPI, description="Dots per inch (default 300).")]
#: A figure computed on request: PNG, SVG or PDF bytes (never JSON), or a job (202).
_FIGURE_ROUTE = {"response_class": Response, **operation(*COMPUTE_ERRORS, 406, ok=IMAGE_OK, accepted=True)}


#: Operations that have a plot.
_DRAWN = ("spectra", "sweeps", "dynamics", "learning_curves")
_NO_PLOT = "plots exist for spectra, sweeps, dynamics and learning-curves results, not for kernels"


_SIZE_FIELDS = {"width": "width", "height": "height", "dpi": "dpi"}


def figure_size(width: float | None, height: float | None, dpi: int | None) -> dict:
    """The size arguments, refused (422 naming the field) when the figure is over its limits."""
    with core_errors(fields=_SIZE_FIELDS):
        plots.check_size(width, height, dpi)
    return {"width": width, "height": height, "dpi": dpi}


async def render(request: Request, kind: str, doc, fmt: str, size: dict) -> Response:
    """``doc`` drawn as a figure of ``kind`` (:func:`eoc_ntk.plots.render_result`) in a child process."""
    settings = request.app.state.engine.settings
    payload = json.dumps(doc).encode()
    try:
        with core_errors():
            data = await anyio.to_thread.run_sync(
                call_in_child, plots.render_result, (kind, payload, fmt, size["width"], size["height"], size["dpi"]),
                settings.job_timeout, limiter=request.app.state.render_slots)
    except JobTimedOut as exc:
        raise Timeout(f"the figure was not rendered within {settings.job_timeout} s (EOC_NTK_JOB_TIMEOUT)") from exc
    except ValueError as exc:  # e.g. a diverged training loss: nothing positive and finite on a log axis
        raise InvalidInput(f"this result cannot be drawn ({exc}); its values are in the JSON answer of the same "
                           "request", field=None) from exc
    return Response(data, media_type=plots.FORMATS[fmt], headers={"Cache-Control": "no-store"})


async def draw(request: Request, spec: dict, body: dict, fmt: str, size: dict) -> Response:
    """Render the result ``body`` of ``spec`` (spectra: eigenvalues; sweeps: condition numbers;
    dynamics: the training loss; learning curves: test MSE vs size)."""
    if spec["op"] not in _DRAWN:
        raise NotAcceptable(_NO_PLOT, field="job_id")
    if spec["op"] == "spectra" and body.get("eigenvalues") is None:
        raise NotAcceptable("this spectrum ran on the Dask cluster (\"engine\": \"dask\"), which computes "
                            "lambda_min and lambda_max only, not the eigenvalues a spectrum plot draws", field="job_id")
    result = {**body, "model": spec["model"]} if spec["op"] in ("dynamics", "learning_curves") else body
    return await render(request, spec["op"], result, fmt, size)


async def _answer(request: Request, engine: Engine, spec: dict, pinned, prefer_async: bool, fmt: str,
                  who: str | None, size: dict, callback_url: str | None = None) -> Response:
    answer = await run_in_threadpool(engine.answer, spec, pinned, prefer_async, who, callback_url)
    if answer.job_id is not None:
        return await run_in_threadpool(accepted, engine, answer.job_id, who)
    assert answer.value is not None  # a result, since no job was made
    body = await run_in_threadpool(result_body, spec, answer.value, answer.cache)
    return await draw(request, spec, body, fmt, size)


@router.post("/v1/plots/spectrum", dependencies=[Depends(require_json)], **_FIGURE_ROUTE)
async def plot_spectrum(request: Request, body: SpectraIn, engine: EngineDep, prefer_async: PreferAsync,
                        who: PrincipalDep,
                        format: Format = "png", width: Width = None, height: Height = None, dpi: Dpi = None):
    """Sorted eigenvalues of K/n on a log scale (202 with a job for large requests)."""
    size = figure_size(width, height, dpi)
    model = model_from_request(body.model, engine.settings)
    data = await run_in_threadpool(engine.resolve, body.x, body.dataset_id, "x", who)
    spec = spectra_spec(data.dataset_id, model)
    return await _answer(request, engine, spec, [data], prefer_async, format, who, size, body.callback_url)


@router.post("/v1/plots/sweep", dependencies=[Depends(require_json)], **_FIGURE_ROUTE)
async def plot_sweep(request: Request, body: SweepsIn, engine: EngineDep, prefer_async: PreferAsync, who: PrincipalDep,
                     format: Format = "png", width: Width = None, height: Height = None, dpi: Dpi = None):
    """Condition number of K/n vs depth per activation, with each distinct depth limit dashed once and
    singular depths marked."""
    size = figure_size(width, height, dpi)
    spec, _, pinned = await sweep_request(body, engine, who)
    return await _answer(request, engine, spec, pinned, prefer_async, format, who, size, body.callback_url)


@router.post("/v1/plots/dynamics", dependencies=[Depends(require_json)], **_FIGURE_ROUTE)
async def plot_dynamics(request: Request, body: DynamicsIn, engine: EngineDep, prefer_async: PreferAsync,
                        who: PrincipalDep,
                        format: Format = "png", width: Width = None, height: Height = None, dpi: Dpi = None):
    """Predicted training loss vs gradient-descent step (the body of POST /v1/dynamics; 202 with a job
    for large requests)."""
    size = figure_size(width, height, dpi)
    spec, pinned = await dynamics_request(body, engine, who)
    return await _answer(request, engine, spec, pinned, prefer_async, format, who, size, body.callback_url)


@router.post("/v1/plots/learning-curve", dependencies=[Depends(require_json)], **_FIGURE_ROUTE)
async def plot_learning_curve(request: Request, body: LearningCurvesIn, engine: EngineDep, prefer_async: PreferAsync,
                              who: PrincipalDep, format: Format = "png", width: Width = None,
                              height: Height = None, dpi: Dpi = None):
    """Predicted and measured test MSE vs training-set size (the body of POST /v1/learning-curves; 202
    with a job for large requests)."""
    size = figure_size(width, height, dpi)
    spec, pinned = await learning_curves_request(body, engine, who)
    return await _answer(request, engine, spec, pinned, prefer_async, format, who, size, body.callback_url)


@router.get("/v1/jobs/{job_id}/plot", response_class=Response,
            **operation(*LOOKUP_ERRORS, 406, 409, 410, 504, ok=IMAGE_OK))
async def job_plot(request: Request, job_id: JobId, engine: EngineDep, who: PrincipalDep, format: Format = "png",
                   width: Width = None, height: Height = None, dpi: Dpi = None):
    """The plot of a finished spectra, sweeps, dynamics or learning-curves job (409 while it has not finished)."""
    size = figure_size(width, height, dpi)
    view = await run_in_threadpool(engine.job, job_id, who)
    if view.status != JobStatus.finished:
        raise Conflict(f"job {job_id} is {view.status.value}; its plot exists once it has finished", field="job_id")
    if view.spec.get("op") not in _DRAWN:
        raise NotAcceptable(_NO_PLOT, field="job_id")
    body = await run_in_threadpool(lambda: result_body(view.spec, engine.job_result(view), "miss"))
    return await draw(request, view.spec, body, format, size)


@router.get("/v1/plots/eigenvalues", response_class=Response, **operation(*LOOKUP_ERRORS, 504, ok=IMAGE_OK))
async def cached_eigenvalues_plot(
    request: Request,
    engine: EngineDep,
    who: PrincipalDep,
    dataset_id: Annotated[str, Query(pattern=DATASET_ID_PATTERN)],
    depth: Annotated[int, Query(ge=1, le=MAX_DEPTH, description="The one depth whose spectra are drawn.")],
    activations: Annotated[str, Query(min_length=1, max_length=1000, pattern=ACTIVATIONS_PATTERN,
                                      description='Activations as in GET /v1/sweeps: "relu,abs", '
                                                  '"relu;leaky_relu:0.1;0.3,0.7".')],
    sigma_w: Annotated[float | None, Query(ge=1e-150, le=1e150)] = None,
    sigma_b: Annotated[float, Query(ge=0.0, le=1e150)] = 0.0,
    format: Format = "png",
    width: Width = None,
    height: Height = None,
    dpi: Dpi = None,
):
    """Sorted eigenvalues of K/n at one depth, one curve per activation, from spectra computed before
    (`POST /v1/spectra`); 404 naming the first one not cached; never computes."""
    size = figure_size(width, height, dpi)
    if depth > engine.settings.max_depth:
        raise InvalidInput(f"depth {depth} is over the limit {engine.settings.max_depth} (EOC_NTK_MAX_DEPTH)",
                           field="depth")
    with core_errors("activations"):
        acts = parse_activations(activations)
    check_sweep_size([depth], acts, engine.settings)
    specs = [spectra_spec(dataset_id, build_model(depth, act, sigma_w, sigma_b, engine.settings, f"activations.{i}"))
             for i, act in enumerate(acts)]
    spectra = await run_in_threadpool(_cached_spectra, engine, specs, dataset_id, depth, who)
    return await render(request, "eigenvalues", spectra, format, size)


def _cached_spectra(engine: Engine, specs: list[dict], dataset_id: str, depth: int, who: str | None) -> list[dict]:
    """The cached results of ``specs``; 404 naming the first one not cached."""
    spectra = []
    for i, spec in enumerate(specs):
        value = engine.cached_for(spec, dataset_id, who, required=True)
        if value is None:
            label = plots.activation_label(spec["model"])
            raise NotFound(f"no cached spectrum of activation {i + 1} ({label}) at depth {depth} for this dataset; "
                           "compute it with POST /v1/spectra", field=f"activations.{i}")
        spectra.append(result_body(spec, value, "hit"))
    return spectra

"""The FastAPI application: routers, the error mapping, the body-size and body-time limits and the engine."""
from __future__ import annotations

import time
from contextlib import asynccontextmanager
from importlib import metadata

import anyio
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from jobs import tracing
from jobs.durations import RedisDurations
from jobs.local import preload

from .access import install_cors
from .config import Settings, get_settings
from .document import serve_with_limits
from .engine import Engine
from .errors import BodiesInFlightFull, BodyTimeout, BodyTooLarge, error_body, install_error_handlers
from .head import HeadAsGet
from .jsonbody import is_json_media, json_too_large_message, media_type
from .metrics import Metrics, RequestContext
from .metrics import router as metrics_router
from .routes import compute, datasets, health, jobs, learning, listings, plots
from .web import router as web_router

__all__ = ["create_app", "API_VERSION"]

try:
    API_VERSION = metadata.version("eoc-ntk")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    API_VERSION = "0.1.0"

DESCRIPTION = """Infinite-width NTK of an MLP with activation `phi(s) = a*s + b*|s|` on your data: kernels,
eigenvalues of K/n, condition number, the inverse-cosine-distance (ICD) approximation and bounds.

Data go inline (`x`) or by `dataset_id` from `POST /v1/datasets`. Results are cached by
dataset hash and canonical hyperparameters. Large requests, or any with `Prefer: respond-async`,
are answered `202` with a job to poll at `/v1/jobs/{job_id}`. Errors are
`{"error": {"code", "message", "field"}}`."""


class BodyLimit:
    """ASGI middleware bounding what request bodies cost before any route sees them.

    - 413 to a body over ``limit`` bytes, or over ``json_limit`` when it is declared JSON
      (``EOC_NTK_MAX_BODY_BYTES``, ``EOC_NTK_MAX_JSON_BYTES``), declared or streamed;
    - 408 (connection closed) to a body not in full within ``timeout`` seconds of the request's
      start (a ``Content-Length`` larger than what is sent, a client that trickles its body);
    - 503 with ``Retry-After`` to a body that would take the bytes held for the bodies of
      unfinished requests past ``inflight_limit`` (``EOC_NTK_MAX_INFLIGHT_BYTES``): refused at
      once when its declared length does not fit, else as soon as a chunk does not. A request's
      bytes count from their arrival until its answer is sent.
    """

    def __init__(self, app, limit: int, timeout: float = 30.0, json_limit: int | None = None,
                 inflight_limit: int | None = None):
        self.app = app
        self.limit = limit
        self.timeout = timeout
        self.json_limit = limit if json_limit is None else json_limit
        self.inflight_limit = inflight_limit
        #: Bytes of request bodies held now (one event loop: no lock needed).
        self.inflight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        is_json = is_json_media(media_type(headers.get(b"content-type", b"").decode("latin-1")))
        limit = min(self.limit, self.json_limit) if is_json else self.limit
        declared = headers.get(b"content-length")
        declared = int(declared) if declared is not None and declared.isdigit() else None
        if declared is not None and declared > limit:
            body = error_body("payload_too_large", self._too_large(is_json, declared), "body")
            return await JSONResponse(body, status_code=413, headers={"Connection": "close"})(scope, receive, send)
        if declared and not self._fits(declared):
            exc = self._full()
            body = error_body("unavailable", exc.detail, "body")
            return await JSONResponse(body, status_code=503, headers=exc.headers)(scope, receive, send)
        seen = held = 0
        complete = False
        deadline = time.monotonic() + self.timeout

        async def limited_receive():
            nonlocal seen, held, complete
            if complete:  # the body is in: later receives wait for a disconnect, without a deadline
                return await receive()
            with anyio.move_on_after(max(0.0, deadline - time.monotonic())) as waited:
                message = await receive()
            if waited.cancelled_caught:
                raise BodyTimeout(f"the request body did not arrive in full within {self.timeout:g} s "
                                  "(EOC_NTK_BODY_TIMEOUT); send the whole body at once, with a correct Content-Length")
            if message["type"] == "http.request":
                size = len(message.get("body", b""))
                seen += size
                if seen > limit:
                    # An HTTPException passes FastAPI's body parsing untouched, to the error handlers.
                    raise BodyTooLarge(self._too_large(is_json, seen))
                if not self._fits(size):
                    raise self._full()
                self.inflight += size
                held += size
                complete = not message.get("more_body", False)
            return message

        try:
            await self.app(scope, limited_receive, send)
        finally:
            self.inflight -= held

    def _fits(self, size: int) -> bool:
        return self.inflight_limit is None or self.inflight + size <= self.inflight_limit

    def _full(self) -> BodiesInFlightFull:
        return BodiesInFlightFull(f"the API holds {self.inflight} bytes of request bodies, and this body does not fit "
                                  f"its budget of {self.inflight_limit} bytes (EOC_NTK_MAX_INFLIGHT_BYTES); retry "
                                  "in a few seconds")

    def _too_large(self, is_json: bool, size: int) -> str:
        if is_json and size <= self.limit:
            return json_too_large_message(self.json_limit)
        return f"request body is over the limit of {self.limit} bytes (EOC_NTK_MAX_BODY_BYTES)"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    # Figures render in the jobs' child processes: matplotlib is imported once, by their fork server.
    preload(["eoc_ntk.plots", "matplotlib.figure", "matplotlib.backends.backend_agg"])
    tracing.configure("eoc-ntk-api")  # off unless the OTEL_* variables and the [otel] extra ask for it
    metrics = Metrics()
    engine = Engine(settings, observers=[metrics])
    metrics.watch_queue(engine.queue_counts)
    metrics.watch_webhooks(engine.callbacks.counts)
    if engine.redis is not None:  # one histogram for the deployment, kept in Redis (jobs.durations)
        metrics.share_job_durations(RedisDurations(engine.redis))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await engine.aclose()
        engine.close()
        tracing.flush()  # uvicorn ends on SIGTERM by the signal itself, which runs no exit handler

    app = FastAPI(title="eoc-ntk", version=API_VERSION, description=DESCRIPTION, lifespan=lifespan)
    app.state.engine = engine
    serve_with_limits(app, settings)  # the document states this deployment's limits
    #: Uploads and JSON bodies parsed at once (bounds the memory of parsing; see EOC_NTK_UPLOAD_CONCURRENCY).
    app.state.upload_slots = anyio.CapacityLimiter(settings.upload_concurrency)
    #: Figures rendered at once, each in a child process (see service.routes.plots).
    app.state.render_slots = anyio.CapacityLimiter(settings.workers)
    install_error_handlers(app)
    for module in (datasets, compute, jobs, health, plots, learning, listings):
        app.include_router(module.router)
    app.state.metrics = metrics
    app.include_router(metrics_router)
    app.include_router(web_router)
    app.add_middleware(HeadAsGet)  # innermost: HEAD is GET less the body, after every check
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, timeout=settings.body_timeout,
                       json_limit=settings.max_json_bytes, inflight_limit=settings.max_inflight_bytes)
    install_cors(app, settings)
    app.add_middleware(RequestContext, metrics=app.state.metrics)  # outermost: every answer gets an id
    return app

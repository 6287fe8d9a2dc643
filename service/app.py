"""The FastAPI application: routers, the error mapping, the body-size and body-time limits and the engine."""
from __future__ import annotations

import time
from contextlib import asynccontextmanager
from importlib import metadata

import anyio
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from jobs.settings import Settings, get_settings

from . import jsonchild
from .access import install_cors
from .engine import Engine
from .errors import BodyTimeout, BodyTooLarge, error_body, install_error_handlers
from .head import HeadAsGet
from .malloc import pin_mmap_threshold
from .metrics import Metrics, RequestContext
from .metrics import router as metrics_router
from .routes import compute, datasets, health, jobs, learning, plots
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
    """ASGI middleware answering 413 to bodies over ``limit`` bytes, declared or streamed, and 408
    (connection closed) to bodies not in full within ``timeout`` seconds of the request's start
    (a ``Content-Length`` larger than what is sent, a client that trickles its body)."""

    def __init__(self, app, limit: int, timeout: float = 30.0):
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            body = error_body("payload_too_large", self._message(), "body")
            return await JSONResponse(body, status_code=413, headers={"Connection": "close"})(scope, receive, send)
        seen = 0
        complete = False
        deadline = time.monotonic() + self.timeout

        async def limited_receive():
            nonlocal seen, complete
            if complete:  # the body is in: later receives wait for a disconnect, without a deadline
                return await receive()
            with anyio.move_on_after(max(0.0, deadline - time.monotonic())) as waited:
                message = await receive()
            if waited.cancelled_caught:
                raise BodyTimeout(f"the request body did not arrive in full within {self.timeout:g} s "
                                  "(EOC_NTK_BODY_TIMEOUT); send the whole body at once, with a correct Content-Length")
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # An HTTPException passes FastAPI's body parsing untouched, to the error handlers.
                    raise BodyTooLarge(self._message())
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, limited_receive, send)

    def _message(self) -> str:
        return f"request body is over the limit of {self.limit} bytes (EOC_NTK_MAX_BODY_BYTES)"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    pin_mmap_threshold()  # a request's large buffers are freed to the system (see service.malloc)
    metrics = Metrics()
    engine = Engine(settings, observers=[metrics])
    metrics.watch_queue(engine.queue_counts)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        jsonchild.warm_up(settings.upload_concurrency)  # the parser of large JSON bodies, ready before one comes
        yield
        await engine.aclose()
        engine.close()

    app = FastAPI(title="eoc-ntk", version=API_VERSION, description=DESCRIPTION, lifespan=lifespan)
    app.state.engine = engine
    #: Uploads parsed at once (bounds the memory of parsing; see EOC_NTK_UPLOAD_CONCURRENCY).
    app.state.upload_slots = anyio.CapacityLimiter(settings.upload_concurrency)
    install_error_handlers(app)
    for module in (datasets, compute, jobs, health, plots, learning):
        app.include_router(module.router)
    app.state.metrics = metrics
    app.include_router(metrics_router)
    app.include_router(web_router)
    app.add_middleware(HeadAsGet)  # innermost: HEAD is GET less the body, after every check
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, timeout=settings.body_timeout)
    install_cors(app, settings)
    app.add_middleware(RequestContext, metrics=app.state.metrics)  # outermost: every answer gets an id
    return app

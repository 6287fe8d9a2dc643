"""``python -m service [--host H] [--port P] [--workers N]``: run the API (embedded mode unless REDIS_URL is set)."""
from __future__ import annotations

import argparse

import uvicorn

from .app import create_app
from .config import get_settings
from .logs import log_config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    parser.add_argument("--log-format", choices=("json", "text"), default="json",
                        help="json (default): one JSON object per line with the request id; text: plain lines")
    parser.add_argument("--workers", type=int, default=None,
                        help="API processes (default EOC_NTK_API_WORKERS, 1); more than 1 needs Redis mode (REDIS_URL)")
    args = parser.parse_args(argv)

    settings = get_settings()
    workers = settings.api_workers if args.workers is None else args.workers
    if workers < 1:
        parser.error(f"--workers must be at least 1, not {workers}")
    if workers > 1 and settings.embedded:
        # Each process would have its own memory cache and its own jobs: a job accepted by one
        # process could not be polled through another, and hits would depend on the process.
        parser.error(f"--workers {workers} (or EOC_NTK_API_WORKERS) needs Redis mode: set REDIS_URL, where the "
                     "processes share the cache and the jobs; embedded mode runs one API process")
    # Access lines come from the app (with the request id), not from uvicorn's own access log.
    # limit_concurrency caps the connections and requests served at once (503 beyond it), so a
    # flood of half-sent bodies cannot hold unbounded memory; each of them ends after
    # EOC_NTK_BODY_TIMEOUT anyway (408, see service.app.BodyLimit).
    # Several processes (uvicorn's workers) each build the app from the environment (the factory).
    app = create_app(settings) if workers == 1 else "service.app:create_app"
    uvicorn.run(app, factory=workers > 1, workers=workers, host=args.host, port=args.port, log_level=args.log_level,
                access_log=False, log_config=log_config(args.log_level, args.log_format),
                limit_concurrency=settings.limit_concurrency)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

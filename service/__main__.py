"""``python -m service [--host H] [--port P]``: run the API (embedded mode unless REDIS_URL is set)."""
from __future__ import annotations

import argparse

import uvicorn

from jobs.settings import get_settings

from .app import create_app
from .logs import log_config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    parser.add_argument("--log-format", choices=("json", "text"), default="json",
                        help="json (default): one JSON object per line with the request id; text: plain lines")
    args = parser.parse_args(argv)

    settings = get_settings()
    # Access lines come from the app (with the request id), not from uvicorn's own access log.
    # limit_concurrency caps the connections and requests served at once (503 beyond it), so a
    # flood of half-sent bodies cannot hold unbounded memory; each of them ends after
    # EOC_NTK_BODY_TIMEOUT anyway (408, see service.app.BodyLimit).
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                log_config=log_config(args.log_level, args.log_format),
                limit_concurrency=settings.limit_concurrency)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

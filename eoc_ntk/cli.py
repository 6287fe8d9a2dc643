"""The ``eoc-ntk`` console script: ``eoc-ntk serve`` (the API) and ``eoc-ntk worker`` (an RQ worker).

The service's dependencies (FastAPI, Redis, RQ) are imported only inside the subcommands,
so the core stays importable without them.
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _serve(args) -> int:
    from service.__main__ import main as serve_main

    serve_main(["--host", args.host, "--port", str(args.port), "--log-level", args.log_level])
    return 0


def _worker(args) -> int:
    from workers.worker import run_worker

    run_worker(args.redis_url, burst=args.burst, name=args.name, log_level=args.log_level)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="eoc-ntk", description="Infinite-width NTK spectra at the edge of chaos.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the REST API (same as python -m service)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=_serve)

    worker = sub.add_parser("worker", help="run an RQ worker on REDIS_URL")
    worker.add_argument("--redis-url", default=None, help="default: the REDIS_URL environment variable")
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    worker.add_argument("--name", default=None, help="worker name (default: generated)")
    worker.add_argument("--log-level", default="INFO")
    worker.set_defaults(func=_worker)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

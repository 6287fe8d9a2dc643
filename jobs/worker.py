"""The RQ worker: serves the queue named in the settings on ``REDIS_URL``, JSON only.

Run it as ``eoc-ntk worker`` or ``python -m jobs``; start as many as you like, on as many
machines as you like, against one Redis. ``eoc-ntk worker --check`` tells whether a worker
of this host is registered with a recent heartbeat (the Docker healthcheck).
"""
from __future__ import annotations

import argparse
import logging
import socket
import sys
import time
from datetime import datetime, timezone

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.serializers import JSONSerializer

from . import rq_queue  # noqa: F401 - NumPy/SciPy, the core and the job code imported once, before forking horses
from .settings import get_settings

__all__ = ["main", "run_worker", "check_worker", "RECONNECT_MAX_SECONDS"]

#: Longest wait between two attempts to reach Redis again.
RECONNECT_MAX_SECONDS = 2.0


def _redis_url(redis_url: str | None) -> str:
    url = redis_url or get_settings().redis_url
    if not url:
        raise SystemExit("REDIS_URL is not set: a worker serves the queue of a Redis-mode API "
                         "(embedded mode needs no worker)")
    return url


def run_worker(redis_url: str | None = None, *, burst: bool = False, name: str | None = None,
               log_level: str = "INFO") -> bool:
    """Work jobs until stopped (or, with ``burst``, until the queue is empty)."""
    settings = get_settings()
    url = _redis_url(redis_url)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log = logging.getLogger("eoc_ntk.jobs")
    conn = Redis.from_url(url)
    while True:
        queue = Queue(settings.queue_name, connection=conn, serializer=JSONSerializer)
        worker = Worker([queue], connection=conn, serializer=JSONSerializer, name=name)
        worker.max_connection_wait_time = RECONNECT_MAX_SECONDS
        try:
            worked = worker.work(burst=burst, logging_level=log_level.upper())
        except (RedisError, ValueError) as exc:  # e.g. at registration while Redis restarts
            log.warning("worker lost Redis (%s); reconnecting in %s s", exc, RECONNECT_MAX_SECONDS)
            worked = False
        if burst or _stop_requested(worker):
            return worked
        # RQ's loop gives up on some Redis errors (heartbeats, registry upkeep): start it again, so
        # that a Redis restart never needs a worker restart.
        log.warning("worker loop ended without a stop request (Redis restarted?); restarting it")
        time.sleep(1.0)
        if _stop_requested(worker):
            return worked


def _stop_requested(worker) -> bool:
    """True once the worker was asked to stop (SIGTERM/SIGINT: RQ records when)."""
    return bool(getattr(worker, "_stop_requested", False) or getattr(worker, "_shutdown_requested_date", None))


def check_worker(redis_url: str | None = None, host: str | None = None) -> tuple[bool, str]:
    """(True, why) when a worker of ``host`` (default: this one) is registered in Redis with a
    heartbeat younger than its TTL; (False, why) otherwise, or when Redis does not answer."""
    host = host or socket.gethostname()
    try:
        conn = Redis.from_url(_redis_url(redis_url), socket_timeout=5, socket_connect_timeout=2)
        workers = [w for w in Worker.all(connection=conn) if w.hostname == host]
    except RedisError as exc:
        return False, f"Redis does not answer ({exc})"
    now = datetime.now(timezone.utc)
    for w in workers:
        beat = w.last_heartbeat
        if beat is not None and beat.tzinfo is None:
            beat = beat.replace(tzinfo=timezone.utc)
        if beat is not None and (now - beat).total_seconds() <= w.worker_ttl:
            return True, f"worker {w.name} on {host}: last heartbeat {(now - beat).total_seconds():.0f} s ago"
    return False, f"no worker of host {host} is registered with a recent heartbeat"


def main(argv=None) -> int:
    """``eoc-ntk worker`` / ``python -m jobs``: run a worker, or ``--check`` one."""
    parser = argparse.ArgumentParser(prog="eoc-ntk worker", description="Run an RQ worker on REDIS_URL.")
    parser.add_argument("--redis-url", default=None, help="default: the REDIS_URL environment variable")
    parser.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    parser.add_argument("--name", default=None, help="worker name (default: generated)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--check", action="store_true",
                        help="exit 0 when a worker of this host is registered with a recent heartbeat, else 1")
    args = parser.parse_args(argv)
    if args.check:
        ok, why = check_worker(args.redis_url)
        print(why, file=sys.stdout if ok else sys.stderr)
        return 0 if ok else 1
    run_worker(args.redis_url, burst=args.burst, name=args.name, log_level=args.log_level)
    return 0

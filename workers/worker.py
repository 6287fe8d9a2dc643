"""The RQ worker: serves the queue named in the settings on ``REDIS_URL``, JSON only.

Run it as ``eoc-ntk worker`` or ``python -m workers``; start as many as you like, on as
many machines as you like, against one Redis.
"""
from __future__ import annotations

import logging
import time

__all__ = ["run_worker", "RECONNECT_MAX_SECONDS"]

#: Longest wait between two attempts to reach Redis again.
RECONNECT_MAX_SECONDS = 2.0


def run_worker(redis_url: str | None = None, *, burst: bool = False, name: str | None = None,
               log_level: str = "INFO") -> bool:
    """Work jobs until stopped (or, with ``burst``, until the queue is empty)."""
    from redis import Redis
    from redis.exceptions import RedisError
    from rq import Queue, Worker
    from rq.serializers import JSONSerializer

    # Import NumPy/SciPy, the core and the storage code once, before forking work horses.
    import service.specs  # noqa: F401
    import service.store  # noqa: F401
    import workers.tasks  # noqa: F401
    from service.config import get_settings

    settings = get_settings()
    url = redis_url or settings.redis_url
    if not url:
        raise SystemExit("REDIS_URL is not set: a worker serves the queue of a Redis-mode API "
                         "(embedded mode needs no worker)")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log = logging.getLogger("eoc_ntk.workers")
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

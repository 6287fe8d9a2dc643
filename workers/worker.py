"""The RQ worker: serves the queue named in the settings on ``REDIS_URL``, JSON only.

Run it as ``eoc-ntk worker`` or ``python -m workers``; start as many as you like, on as
many machines as you like, against one Redis.
"""
from __future__ import annotations

import logging

__all__ = ["run_worker"]


def run_worker(redis_url: str | None = None, *, burst: bool = False, name: str | None = None,
               log_level: str = "INFO") -> bool:
    """Work jobs until stopped (or, with ``burst``, until the queue is empty)."""
    from redis import Redis
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
    conn = Redis.from_url(url)
    queue = Queue(settings.queue_name, connection=conn, serializer=JSONSerializer)
    worker = Worker([queue], connection=conn, serializer=JSONSerializer, name=name)
    return worker.work(burst=burst, logging_level=log_level.upper())

"""The API's side of job webhooks: check a ``callback_url``, register it, show it, count deliveries.

The deliveries themselves are the job layer's (:mod:`jobs.webhooks`): in embedded mode a
dispatcher thread beside the job pool of this process (started here, woken as each job ends),
in Redis mode the delivery process of every worker (:mod:`jobs.webhook_worker`). Nothing here
runs on the event loop: the engine calls it from its worker threads.
"""
from __future__ import annotations

import logging

from redis.exceptions import RedisError

from jobs.store import Storage
from jobs.webhook_guard import CallbackRefused, Target, check_callback
from jobs.webhooks import Dispatcher, MemoryCounts, RedisCounts, ViewOf, callback_record, register

from .config import Settings
from .errors import InvalidInput

__all__ = ["Callbacks"]

log = logging.getLogger("eoc_ntk.service")


class Callbacks:
    """Webhooks of one engine (``redis``: its client in Redis mode, None in embedded mode)."""

    def __init__(self, settings: Settings, storage: Storage, redis, view_of: ViewOf):
        self.settings = settings
        self.storage = storage
        self.redis = redis
        self.dispatcher: Dispatcher | None = None
        if redis is None and settings.webhooks_enabled:
            self.dispatcher = Dispatcher(storage, settings, view_of, MemoryCounts()).start()

    def check(self, url: str) -> Target:
        """The checked target of ``url`` (:class:`InvalidInput` naming ``callback_url`` when refused)."""
        try:
            return check_callback(url, self.settings)
        except CallbackRefused as exc:
            raise InvalidInput(str(exc), field="callback_url") from None

    def register(self, job_id: str, waiter: str, target: Target) -> None:
        register(self.storage, job_id, waiter, target)
        self.job_ended()

    def record(self, job_id: str, waiter: str) -> dict | None:
        """The webhook ``waiter`` registered on ``job_id`` (None when none, or the store is away)."""
        if not self.settings.webhooks_enabled:
            return None
        try:
            return callback_record(self.storage, job_id, waiter)
        except RedisError as exc:
            log.warning("webhook record of job %s unavailable: %s", job_id, exc)
            return None

    def counts(self) -> dict[str, int] | None:
        """Delivery attempts by outcome (this process's in embedded mode, every worker's in Redis
        mode); None when Redis does not answer."""
        if self.dispatcher is not None:
            return self.dispatcher.counts.read()
        if self.redis is None:
            return MemoryCounts().read()
        try:
            return RedisCounts(self.redis).read()
        except RedisError:
            return None

    def job_ended(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.wake()

    def close(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop()

"""Where datasets and results live: an in-memory LRU (embedded mode) or Redis.

Both back ends store the verified byte format of :mod:`jobs.codec` under the key names
of :mod:`jobs.keys`. :class:`Storage` is what the API and the workers use: a value that
fails verification is deleted and reported as a miss, so it is recomputed and never served.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Protocol

import numpy as np
from redis.exceptions import RedisError

from . import keys
from .codec import CorruptValue, StoredValue, decode, encode
from .settings import Settings

__all__ = ["ByteStore", "MemoryStore", "RedisStore", "Storage", "StoreUnavailable", "labels_store_id"]

log = logging.getLogger("eoc_ntk.jobs")


class StoreUnavailable(RuntimeError):
    """The store (Redis) does not answer where an answer is needed; the caller should retry later
    (the service answers 503)."""


class ByteStore(Protocol):
    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes, ttl: int) -> None: ...
    def delete(self, key: str) -> None: ...
    def ping(self) -> bool: ...
    def add_member(self, key: str, member: str, ttl: int) -> None: ...
    def members(self, key: str) -> set[str]: ...
    def remove_member(self, key: str, member: str) -> None: ...


class MemoryStore:
    """Thread-safe LRU of byte strings with a total byte budget and per-key TTLs."""

    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self.used = 0
        self._items: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._sets: dict[str, tuple[set[str], float]] = {}  # small bookkeeping sets, outside the budget
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[1] < time.monotonic():
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return item[0]

    def set(self, key: str, value: bytes, ttl: int) -> None:
        with self._lock:
            if key in self._items:
                self._drop(key)
            if len(value) > self.budget:
                return  # larger than the whole cache: not kept
            while self.used + len(value) > self.budget:
                self._drop(next(iter(self._items)))
            self._items[key] = (value, time.monotonic() + ttl)
            self.used += len(value)

    def delete(self, key: str) -> None:
        with self._lock:
            if key in self._items:
                self._drop(key)

    def ping(self) -> bool:
        return True

    def add_member(self, key: str, member: str, ttl: int) -> None:
        with self._lock:
            now = time.monotonic()
            if len(self._sets) > 10_000:  # forget expired sets now and then
                for k in [k for k, (_, exp) in self._sets.items() if exp < now]:
                    del self._sets[k]
            current = self._sets.get(key)
            members = current[0] if current is not None and current[1] >= now else set()
            members.add(member)
            self._sets[key] = (members, now + ttl)

    def members(self, key: str) -> set[str]:
        with self._lock:
            current = self._sets.get(key)
            if current is None or current[1] < time.monotonic():
                return set()
            return set(current[0])

    def remove_member(self, key: str, member: str) -> None:
        with self._lock:
            current = self._sets.get(key)
            if current is not None:
                current[0].discard(member)

    def _drop(self, key: str) -> None:
        value, _ = self._items.pop(key)
        self.used -= len(value)


class RedisStore:
    """Byte strings in Redis with TTLs."""

    def __init__(self, connection):
        self.conn = connection

    def get(self, key: str) -> bytes | None:
        return self.conn.get(key)

    def set(self, key: str, value: bytes, ttl: int) -> None:
        self.conn.set(key, value, ex=ttl)

    def delete(self, key: str) -> None:
        self.conn.delete(key)

    def ping(self) -> bool:
        return bool(self.conn.ping())

    def add_member(self, key: str, member: str, ttl: int) -> None:
        with self.conn.pipeline() as pipe:
            pipe.sadd(key, member)
            pipe.expire(key, ttl)
            pipe.execute()

    def members(self, key: str) -> set[str]:
        return {m.decode() if isinstance(m, bytes) else m for m in self.conn.smembers(key)}

    def remove_member(self, key: str, member: str) -> None:
        self.conn.srem(key, member)


class Storage:
    """Datasets and results over a :class:`ByteStore`, verified on every read."""

    def __init__(self, store: ByteStore, settings: Settings):
        self.store = store
        self.settings = settings

    def _get(self, key: str) -> StoredValue | None:
        blob = self.store.get(key)
        if blob is None:
            return None
        try:
            return decode(blob)
        except CorruptValue as exc:
            log.warning("discarding stored value %s: %s", key, exc)
            self.store.delete(key)
            return None

    def _set(self, key: str, value: StoredValue) -> None:
        self.store.set(key, encode(value), keys.ttl_for(key, self.settings))

    # Results: a Redis outage degrades to "no cache" (computed, not stored), unless the caller
    # only reads (``required``: GET /v1/spectra must say 503, not "not cached").
    def get_result(self, cache_key: str, *, required: bool = False) -> StoredValue | None:
        try:
            return self._get(keys.result_key(cache_key))
        except RedisError as exc:
            if required:
                raise StoreUnavailable("the result store (Redis) does not answer; retry later") from exc
            log.warning("cache read failed, computing without cache: %s", exc)
            return None

    def put_result(self, cache_key: str, value: StoredValue, *, required: bool = False) -> None:
        try:
            self._set(keys.result_key(cache_key), value)
        except RedisError as exc:
            if required:
                raise
            log.warning("cache write failed, result not cached: %s", exc)

    # Datasets: needed by workers, so an outage is an error the client is told about.
    def put_dataset(self, dataset_id: str, x: np.ndarray, *, required: bool = True, owner: str | None = None) -> bool:
        """Store ``x`` (visible to ``owner``); False if a Redis outage prevented it and ``required`` is false."""
        try:
            self._set(keys.dataset_key(dataset_id), StoredValue(arrays={"x": x}))
            self.grant("dataset", dataset_id, owner)
        except RedisError as exc:
            if required:
                raise StoreUnavailable("the dataset store (Redis) does not answer; retry later") from exc
            log.warning("dataset %s not stored: %s", dataset_id, exc)
            return False
        return True

    def get_dataset(self, dataset_id: str) -> np.ndarray | None:
        try:
            value = self._get(keys.dataset_key(dataset_id))
        except RedisError as exc:
            raise StoreUnavailable("the dataset store (Redis) does not answer; retry later") from exc
        return None if value is None else value.arrays.get("x")

    # Labels: stored as a dataset under "labels:<labels_id>", so that every job backend's dataset
    # fetch reads them (jobs.compute.load_data) and the owners of a labels id are kept as a dataset's.
    def put_labels(self, labels_id: str, y: np.ndarray, *, required: bool = True, owner: str | None = None) -> bool:
        """Store the labels ``y`` (shape (n,) or (n, k)); as :meth:`put_dataset`."""
        return self.put_dataset(labels_store_id(labels_id), y, required=required, owner=owner)

    def get_labels(self, labels_id: str) -> np.ndarray | None:
        return self.get_dataset(labels_store_id(labels_id))

    # Access control: who may see a dataset or a job (``None``: authentication is off).
    def grant(self, kind: str, ident: str, principal: str | None) -> None:
        if principal is not None:
            key = keys.owners_key(kind, ident)
            self.store.add_member(key, principal, keys.ttl_for(key, self.settings))

    def owns(self, kind: str, ident: str, principal: str | None) -> bool:
        if principal is None:
            return True
        try:
            return principal in self.store.members(keys.owners_key(kind, ident))
        except RedisError as exc:
            raise StoreUnavailable("the job store (Redis) does not answer; retry later") from exc

    # Per-key job limit: the jobs each API key has submitted and not yet seen end.
    def track_job(self, principal: str, job_id: str) -> None:
        key = keys.active_jobs_key(principal)
        self.store.add_member(key, job_id, keys.ttl_for(key, self.settings))

    def tracked_jobs(self, principal: str) -> set[str]:
        return self.store.members(keys.active_jobs_key(principal))

    def untrack_job(self, principal: str, job_id: str) -> None:
        self.store.remove_member(keys.active_jobs_key(principal), job_id)

    def ping(self) -> bool:
        try:
            return self.store.ping()
        except RedisError:
            return False

    def write_problem(self) -> str | None:
        """None when the store takes a write (a tiny key with a short TTL), else why not (e.g.
        Redis out of memory under ``maxmemory-policy noeviction``)."""
        key = keys.probe_key()
        try:
            self.store.set(key, b"1", keys.ttl_for(key, self.settings))
        except RedisError as exc:
            return f"the store (Redis) refuses writes: {exc}"
        return None


def labels_store_id(labels_id: str) -> str:
    """The store id of labels: never a dataset id (those are 32 hex digits), so the two never meet."""
    return f"labels:{labels_id}"

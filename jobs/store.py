"""Where datasets and results live: an in-memory LRU (embedded mode) or Redis.

Both back ends store the verified byte format of :mod:`jobs.codec` under the key names
of :mod:`jobs.keys`. :class:`Storage` is what the API and the workers use: a value that
fails verification is deleted and reported as a miss, so it is recomputed and never served.

Next to a result, :meth:`Storage.put_result` keeps its rendered JSON answer
(:mod:`jobs.answers`). A cache hit reads that answer and the caller's rights in one look-up
(:class:`AnswerQuery`: one pipelined round trip in Redis, through :class:`RedisStore` or,
from the event loop, :class:`AsyncRedisStore`).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Set
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from redis.exceptions import RedisError

from . import keys
from .answers import RENDERED_OPS, content_hash, render
from .codec import CorruptValue, StoredValue, decode, decode_body, encode, encode_body
from .index import MemoryIndex, RedisIndex
from .listings import Listings
from .settings import JobSettings

__all__ = ["ByteStore", "MemoryStore", "RedisStore", "AsyncRedisStore", "Storage", "StoreUnavailable",
           "AnswerQuery", "CachedAnswer", "labels_store_id"]

log = logging.getLogger("eoc_ntk.jobs")


class StoreUnavailable(RuntimeError):
    """The store (Redis) does not answer where an answer is needed; the caller should retry later
    (the service answers 503)."""


@dataclass(frozen=True)
class AnswerQuery:
    """What a cache hit reads in one look-up: a rendered answer, the memberships that must all
    hold for the caller to see it, and (Redis, no configured secret) where the secret is kept."""

    key: str
    result_key: str
    checks: tuple[tuple[str, str], ...] = ()
    secret_key: str | None = None


#: What a store answers to an :class:`AnswerQuery`: (the stored answer or None, whether every
#: check holds, the store's secret or None, the stored result's bytes or None).
Fetched = tuple[bytes | None, bool, bytes | None, bytes | None]


@dataclass(frozen=True)
class CachedAnswer:
    """A rendered answer (without its ``cache`` field) and its content hash (the ETag)."""

    etag: str
    body: bytes


class ByteStore(Protocol):
    def get(self, key: str) -> bytes | None: ...
    def exists(self, key: str) -> bool: ...
    def set(self, key: str, value: bytes, ttl: int) -> None: ...
    def delete(self, key: str) -> None: ...
    def ping(self) -> bool: ...
    def add_member(self, key: str, member: str, ttl: int) -> None: ...
    def members(self, key: str) -> Set[str]: ...
    def has_member(self, key: str, member: str) -> bool: ...
    def remove_member(self, key: str, member: str) -> bool: ...
    def shared_secret(self) -> bytes: ...
    def fetch(self, query: AnswerQuery) -> Fetched: ...


class MemoryStore:
    """Thread-safe LRU of byte strings with a total byte budget and per-key TTLs."""

    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self.used = 0
        self._items: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._sets: dict[str, tuple[set[str], float]] = {}  # small bookkeeping sets, outside the budget
        self._lock = threading.Lock()
        self._secret = os.urandom(32)

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

    def exists(self, key: str) -> bool:
        """Whether ``key`` holds a live value (its place in the LRU order unchanged)."""
        with self._lock:
            item = self._items.get(key)
            return item is not None and item[1] >= time.monotonic()

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

    def shared_secret(self) -> bytes:
        """A random secret of this process (embedded mode: nothing outside it reads the store)."""
        return self._secret

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

    def members(self, key: str) -> Set[str]:
        with self._lock:
            current = self._sets.get(key)
            if current is None or current[1] < time.monotonic():
                return set()
            return set(current[0])

    def has_member(self, key: str, member: str) -> bool:
        with self._lock:
            current = self._sets.get(key)
            return current is not None and current[1] >= time.monotonic() and member in current[0]

    def remove_member(self, key: str, member: str) -> bool:
        with self._lock:  # True when it was there: of racing callers one wins, as with SREM
            current = self._sets.get(key)
            found = current is not None and member in current[0] and current[1] >= time.monotonic()
            if current is not None:
                current[0].discard(member)
                if not current[0]:  # as in Redis: an empty set is no key
                    del self._sets[key]
            return found

    def fetch(self, query: AnswerQuery) -> Fetched:
        """The answer of ``query`` (no I/O: cheap enough for the event loop)."""
        allowed = all(self.has_member(k, m) for k, m in query.checks)
        if not allowed:
            return None, False, self._secret, None
        return self.get(query.key), True, self._secret, self.get(query.result_key)

    def _drop(self, key: str) -> None:
        value, _ = self._items.pop(key)
        self.used -= len(value)


class RedisStore:
    """Byte strings in Redis with TTLs."""

    def __init__(self, connection):
        self.conn = connection

    def get(self, key: str) -> bytes | None:
        return self.conn.get(key)

    def exists(self, key: str) -> bool:
        return bool(self.conn.exists(key))

    def set(self, key: str, value: bytes, ttl: int) -> None:
        # redis-py before 5.1 refuses a bytearray (codec.encode's buffer); a view of it is no copy.
        self.conn.set(key, memoryview(value) if isinstance(value, bytearray) else value, ex=ttl)

    def delete(self, key: str) -> None:
        self.conn.delete(key)

    def ping(self) -> bool:
        return bool(self.conn.ping())

    def shared_secret(self) -> bytes:
        """The secret kept in Redis, generated by whichever process asks first (``SET NX``), in
        one round trip."""
        key = keys.store_secret_key()
        with self.conn.pipeline(transaction=False) as pipe:
            pipe.set(key, os.urandom(32).hex(), nx=True)
            pipe.get(key)
            value = pipe.execute()[1]
        if not value:
            raise RedisError("the store secret vanished from Redis")
        return value if isinstance(value, bytes) else value.encode()

    def add_member(self, key: str, member: str, ttl: int) -> None:
        with self.conn.pipeline() as pipe:
            pipe.sadd(key, member)
            pipe.expire(key, ttl)
            pipe.execute()

    def fetch(self, query: AnswerQuery) -> Fetched:
        """The answer of ``query`` in one pipelined round trip."""
        with self.conn.pipeline(transaction=False) as pipe:
            return _unpack(query, _queue(pipe, query).execute())

    def members(self, key: str) -> Set[str]:
        return {m.decode() if isinstance(m, bytes) else m for m in self.conn.smembers(key)}

    def has_member(self, key: str, member: str) -> bool:
        return bool(self.conn.sismember(key, member))

    def remove_member(self, key: str, member: str) -> bool:
        return bool(self.conn.srem(key, member))


def _queue(pipe, query: AnswerQuery):
    for key, member in query.checks:
        pipe.sismember(key, member)
    pipe.get(query.key)
    pipe.get(query.result_key)
    if query.secret_key is not None:
        pipe.get(query.secret_key)
    return pipe


def _unpack(query: AnswerQuery, results: list) -> Fetched:
    n = len(query.checks)
    allowed = all(results[:n])
    secret = results[n + 2] if query.secret_key is not None else None
    if isinstance(secret, str):
        secret = secret.encode()
    return results[n], allowed, secret, results[n + 1]


class AsyncRedisStore:
    """The cache-hit look-up of :class:`RedisStore` for an event loop (``redis.asyncio``): one
    pipelined round trip that never blocks the loop."""

    def __init__(self, connection):
        self.conn = connection  # a redis.asyncio.Redis

    async def fetch(self, query: AnswerQuery) -> Fetched:
        async with self.conn.pipeline(transaction=False) as pipe:
            return _unpack(query, await _queue(pipe, query).execute())


class Storage:
    """Datasets and results over a :class:`ByteStore`, verified on every read."""

    def __init__(self, store: ByteStore, settings: JobSettings):
        self.store = store
        self.settings = settings
        index = RedisIndex(store.conn) if isinstance(store, RedisStore) else MemoryIndex(store.exists, store.has_member)
        self.listings = Listings(index, settings)  #: what a caller lists (GET /v1/datasets, ...)

    def secret(self) -> bytes:
        """The key of the stored values' HMAC: ``EOC_NTK_STORE_SECRET``, else the store's shared
        secret (in Redis, generated at first use; in memory, per process).

        A generated secret is read at every use, not kept: when Redis restarts empty, the
        next process to ask generates a new one and every process signs with it at once (a
        kept copy would make the API and the workers refuse each other's values)."""
        return self._configured_secret() or self.store.shared_secret()

    def _configured_secret(self) -> bytes | None:
        """``EOC_NTK_STORE_SECRET`` as bytes, or None when it is unset."""
        return self.settings.store_secret.encode("utf-8") if self.settings.store_secret else None

    def _get(self, key: str) -> StoredValue | None:
        blob = self.store.get(key)
        if blob is None:
            return None
        try:
            return decode(blob, self.secret())
        except CorruptValue as exc:
            log.warning("discarding stored value %s: %s", key, exc)
            self.store.delete(key)
            return None

    def _set(self, key: str, value: StoredValue) -> None:
        self.store.set(key, encode(value, self.secret()), keys.ttl_for(key, self.settings))

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

    def put_result(self, cache_key: str, value: StoredValue, *, required: bool = False,
                   spec: dict | None = None) -> None:
        """Store ``value``; with its ``spec`` (of an op in :data:`jobs.answers.RENDERED_OPS`) its
        rendered answer too, serialised here once for every later hit."""
        key = keys.result_key(cache_key)
        try:
            secret = self.secret()
            blob = encode(value, secret)
            self.store.set(key, blob, keys.ttl_for(key, self.settings))
        except RedisError as exc:
            if required:
                raise
            log.warning("cache write failed, result not cached: %s", exc)
            return
        self.listings.result_stored(cache_key, spec)
        if spec is not None and spec["op"] in RENDERED_OPS:
            self.put_answer(cache_key, spec, value, blob, secret)

    def put_answer(self, cache_key: str, spec: dict, value: StoredValue, result_blob: bytes | None = None,
                   secret: bytes | None = None) -> CachedAnswer:
        """Render the answer of ``spec`` from ``value`` and keep it, tied to the stored bytes of the
        result (``result_blob``, read when not given) so that it is served only while they are
        (best effort: a store outage only means the next hit renders it again)."""
        body = render(spec, value)
        answer = CachedAnswer(content_hash(body), body)
        key = keys.body_key(cache_key)
        try:
            if result_blob is None:
                result_blob = self.store.get(keys.result_key(cache_key))
            if result_blob:
                blob = encode_body(body, answer.etag, content_hash(result_blob), secret or self.secret())
                self.store.set(key, blob, keys.ttl_for(key, self.settings))
        except RedisError as exc:
            log.warning("answer of %s not stored: %s", cache_key, exc)
        return answer

    def answer_query(self, cache_key: str, principal: str | None, dataset_id: str) -> AnswerQuery:
        """The look-up of a cache hit: the rendered answer of ``cache_key``, visible to ``principal``
        when it has asked for this key before and may see ``dataset_id`` (see
        :meth:`service.engine.Engine._lookup`)."""
        checks = () if principal is None else ((keys.asked_key(principal), cache_key),
                                              (keys.owners_key("dataset", dataset_id), principal))
        secret_key = None if self.settings.store_secret else keys.store_secret_key()
        return AnswerQuery(keys.body_key(cache_key), keys.result_key(cache_key), checks, secret_key)

    def open_answer(self, fetched: Fetched) -> CachedAnswer | None:
        """The verified answer of a fetch; None when it is not visible, not stored or fails its check
        (a later :meth:`put_answer` replaces a corrupt one)."""
        blob, allowed, secret, result_blob = fetched
        if not allowed or blob is None or not result_blob:
            return None
        secret = self._configured_secret() or secret
        if not secret:
            return None  # no secret generated yet: nothing valid can be stored
        try:
            etag, result_digest, body = decode_body(blob, secret)
        except CorruptValue as exc:
            log.warning("ignoring a stored answer: %s", exc)
            return None
        if result_digest != content_hash(result_blob):
            return None  # its result was replaced, damaged or dropped: the slow path decides
        return CachedAnswer(etag, body)

    # Datasets: needed by workers, so an outage is an error the client is told about.
    def put_dataset(self, dataset_id: str, x: np.ndarray, *, required: bool = True, owner: str | None = None) -> bool:
        """Store ``x`` (visible to ``owner``); False if a Redis outage prevented it and ``required`` is false."""
        try:
            self._set(keys.dataset_key(dataset_id), StoredValue(arrays={"x": x}))
            self.grant("dataset", dataset_id, owner)
            if not dataset_id.startswith(labels_store_id("")):  # labels are listed with their dataset
                self.listings.dataset_stored(dataset_id, x.shape, owner)
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

    # Jobs answered from the cache: finished at once, never queued.
    def put_answered_job(self, job_id: str, spec: dict, cache_key: str) -> None:
        """Record ``job_id`` as finished with the result under ``cache_key`` (see :meth:`answered_job`)."""
        self._set(keys.answered_job_key(job_id), StoredValue(doc={"spec": spec, "cache_key": cache_key}))

    def answered_job(self, job_id: str) -> tuple[dict, str] | None:
        """The spec and cache key of a job answered from the cache, or None."""
        try:
            value = self._get(keys.answered_job_key(job_id))
        except RedisError as exc:
            raise StoreUnavailable("the job store (Redis) does not answer; retry later") from exc
        return None if value is None else (value.doc["spec"], value.doc["cache_key"])

    # Per-key job limit: the jobs each API key has submitted and not yet seen end.
    def track_job(self, principal: str, job_id: str) -> None:
        key = keys.active_jobs_key(principal)
        self.store.add_member(key, job_id, keys.ttl_for(key, self.settings))

    def tracked_jobs(self, principal: str) -> Set[str]:
        return self.store.members(keys.active_jobs_key(principal))

    def untrack_job(self, principal: str, job_id: str) -> None:
        self.store.remove_member(keys.active_jobs_key(principal), job_id)

    # Callers of one shared computation (single flight): a DELETE detaches its caller; the
    # computation stops once no caller waits for it.
    def attach(self, job_id: str, waiter: str, *, fresh: bool = False) -> None:
        """Record ``waiter`` as waiting for job ``job_id``; ``fresh``: a new run, whose earlier waiters are gone."""
        key = keys.waiters_key(job_id)
        if fresh:
            for old in self.store.members(key):
                self.store.remove_member(key, old)
        self.store.add_member(key, waiter, keys.ttl_for(key, self.settings))

    def detach(self, job_id: str, waiter: str) -> set[str]:
        """Drop ``waiter`` from job ``job_id``'s callers; returns those still waiting."""
        key = keys.waiters_key(job_id)
        self.store.remove_member(key, waiter)
        return set(self.store.members(key))

    def mark_detached(self, principal: str, job_id: str, detached: bool = True) -> None:
        """Remember (or forget) that ``principal`` canceled job ``job_id`` while others still wait for it."""
        key = keys.detached_key(principal)
        if detached:
            self.store.add_member(key, job_id, keys.ttl_for(key, self.settings))
        else:
            self.store.remove_member(key, job_id)

    def is_detached(self, principal: str, job_id: str) -> bool:
        return self.store.has_member(keys.detached_key(principal), job_id)

    # Each API key's own cache history (keys configured): which cache keys it has asked for.
    def remember_asked(self, principal: str, cache_key: str) -> None:
        key = keys.asked_key(principal)
        self.store.add_member(key, cache_key, keys.ttl_for(key, self.settings))

    def has_asked(self, principal: str, cache_key: str) -> bool:
        try:
            return self.store.has_member(keys.asked_key(principal), cache_key)
        except RedisError as exc:
            raise StoreUnavailable("the job store (Redis) does not answer; retry later") from exc

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

"""Job webhooks: who registered a callback, and its delivery once the job has ended.

A request with ``callback_url`` registers a webhook for its caller (the API key, or
``anonymous`` without keys) on its job (:func:`register`): a record under
:func:`jobs.keys.callback_key` (its URL and the outcome of the attempts, shown on the job
resource as ``callback``) and a member ``"<job_id> <waiter>"`` of the pending set
(:func:`jobs.keys.webhook_pending_key`). A caller has one webhook per job: a later request
of the same caller for the same job replaces it.

A :class:`Dispatcher` looks at the pending webhooks' jobs; once a job is finished, failed or
canceled, it takes each of them off the pending set (one removal wins across every process that
dispatches, so a webhook is delivered once per run) and delivers it in a thread of its own:

- the job resource (:func:`jobs.resource.job_document`) as JSON, ``callback`` telling this
  attempt's number and the previous attempt's status, signed in ``X-EOC-NTK-Signature``
  (:mod:`eoc_ntk.core.webhook_signature`) under ``EOC_NTK_WEBHOOK_SECRET``;
- to the address the SSRF guard checks before every attempt (:mod:`jobs.webhook_guard`), with
  a timeout of ``EOC_NTK_WEBHOOK_TIMEOUT_SECONDS`` and no redirect followed
  (:mod:`jobs.webhook_http`);
- up to ``EOC_NTK_WEBHOOK_ATTEMPTS`` times while the answer is not 2xx or the connection fails,
  waiting ``EOC_NTK_WEBHOOK_BACKOFF_SECONDS`` times 1, 2, 4, ... between attempts; each
  attempt's outcome is written to the record and counted (:class:`Counts`).

A new run of the same job (resubmitted after it ended) registers its callers again. Embedded
mode dispatches in a thread of the API host beside its job pool, woken as each job ends;
Redis mode in a process beside every ``eoc-ntk worker`` (:mod:`jobs.webhook_worker`).
"""
from __future__ import annotations

import http.client
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Protocol

from redis.exceptions import RedisError

from eoc_ntk.core.webhook_signature import SIGNATURE_HEADER, signature_header

from . import keys
from .codec import CorruptValue, StoredValue, decode, encode
from .resource import finished_answer, iso_time, job_document
from .settings import JobSettings
from .states import TERMINAL, JobStatus, JobView
from .store import Storage
from .webhook_guard import CallbackRefused, Target, check_callback
from .webhook_http import post

__all__ = ["register", "callback_record", "Dispatcher", "Counts", "MemoryCounts", "RedisCounts", "OUTCOMES",
           "POLL_SECONDS"]

log = logging.getLogger("eoc_ntk.jobs")

#: The outcomes of one attempt: delivered (2xx), retry (failed, another attempt follows), failed (the last).
OUTCOMES = ("delivered", "retry", "failed")
#: Seconds between two looks at the pending webhooks' jobs.
POLL_SECONDS = 0.2
#: Webhooks delivered at once by one dispatcher.
DELIVERY_THREADS = 8

ViewOf = Callable[[str], "JobView | None"]
#: Of some job ids, those that may have ended (or are unknown): a cheap first look before :data:`ViewOf`.
MayHaveEnded = Callable[[list[str]], set[str]]


class Counts(Protocol):
    def add(self, outcome: str) -> None: ...
    def read(self) -> dict[str, int]: ...


class MemoryCounts:
    """Attempts by outcome in this process (embedded mode)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, outcome: str) -> None:
        with self._lock:
            self._counts[outcome] += 1

    def read(self) -> dict[str, int]:
        with self._lock:
            return {outcome: self._counts[outcome] for outcome in OUTCOMES}


class RedisCounts:
    """Attempts by outcome in a Redis hash shared by every worker, read by the API's ``/metrics``."""

    def __init__(self, connection) -> None:
        self.conn = connection

    def add(self, outcome: str) -> None:
        self.conn.hincrby(keys.webhook_counts_key(), outcome, 1)

    def read(self) -> dict[str, int]:
        raw = self.conn.hgetall(keys.webhook_counts_key())
        found = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
        return {outcome: found.get(outcome, 0) for outcome in OUTCOMES}


def _member(job_id: str, waiter: str) -> str:
    return f"{job_id} {waiter}"


def _save(storage: Storage, job_id: str, waiter: str, record: dict) -> None:
    key = keys.callback_key(job_id, waiter)
    storage.store.set(key, encode(StoredValue(doc=record), storage.secret()), keys.ttl_for(key, storage.settings))


def callback_record(storage: Storage, job_id: str, waiter: str) -> dict | None:
    """The webhook ``waiter`` registered on job ``job_id``: ``{url, attempts, last_status, delivered_at,
    last_error}``, or None (none registered, expired, or failing its signature)."""
    blob = storage.store.get(keys.callback_key(job_id, waiter))
    if blob is None:
        return None
    try:
        return dict(decode(blob, storage.secret()).doc)
    except CorruptValue as exc:
        log.warning("ignoring the webhook record of job %s: %s", job_id, exc)
        return None


def register(storage: Storage, job_id: str, waiter: str, target: Target) -> None:
    """Deliver job ``job_id`` to ``target`` (checked by :func:`jobs.webhook_guard.check_callback`)
    when its current run ends; replaces ``waiter``'s earlier webhook of this job."""
    _save(storage, job_id, waiter, {"url": target.url, "attempts": 0, "last_status": None, "delivered_at": None,
                                    "last_error": None})
    key = keys.webhook_pending_key()
    storage.store.add_member(key, _member(job_id, waiter), keys.ttl_for(key, storage.settings))


class Dispatcher:
    """Delivers the pending webhooks of ended jobs (see the module docstring).

    ``view_of(job_id)`` is the job's current view (None when unknown); :meth:`start` runs the
    loop in a thread, :meth:`wake` makes it look now rather than at its next poll."""

    def __init__(self, storage: Storage, settings: JobSettings, view_of: ViewOf, counts: Counts,
                 poll_seconds: float = POLL_SECONDS, may_have_ended: MayHaveEnded | None = None):
        self.storage = storage
        self.settings = settings
        self.view_of = view_of
        self.may_have_ended = may_have_ended
        self.counts = counts
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(DELIVERY_THREADS, thread_name_prefix="eoc-ntk-webhook")

    def start(self) -> Dispatcher:
        threading.Thread(target=self._loop, name="eoc-ntk-webhooks", daemon=True).start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run(self) -> None:
        """The dispatch loop in this thread, until :meth:`stop`."""
        self._loop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            try:
                self.scan()
            except Exception as exc:  # Redis away, or anything else: look again at the next poll
                log.warning("webhook dispatch failed: %s", exc)

    def scan(self) -> int:
        """Take every pending webhook whose job has ended and start its delivery; returns how many."""
        key = keys.webhook_pending_key()
        pending = sorted(self.storage.store.members(key))
        if not pending:
            return 0
        job_ids = sorted({m.partition(" ")[0] for m in pending})
        worth = set(job_ids) if self.may_have_ended is None else self.may_have_ended(job_ids)
        views: dict[str, JobView | None] = {}
        started = 0
        for member in pending:
            job_id, _, waiter = member.partition(" ")
            if job_id not in worth:
                continue
            if job_id not in views:
                views[job_id] = self.view_of(job_id)
            view = views[job_id]
            if view is not None and view.status not in TERMINAL:
                continue
            if not self.storage.store.remove_member(key, member):
                continue  # another dispatcher took it
            if view is None:
                log.warning("webhook of job %s dropped: the job is no longer known", job_id)
                continue
            self._pool.submit(self._deliver_logged, job_id, waiter)
            started += 1
        return started

    def _deliver_logged(self, job_id: str, waiter: str) -> None:
        try:
            self.deliver(job_id, waiter)
        except Exception:
            log.exception("webhook of job %s failed unexpectedly", job_id)

    def deliver(self, job_id: str, waiter: str) -> str | None:
        """Deliver ``waiter``'s webhook of job ``job_id`` with its retries; the last outcome (None when
        nothing was registered)."""
        record = callback_record(self.storage, job_id, waiter)
        attempts = self.settings.webhook_attempts
        for attempt in range(1, attempts + 1):
            if record is None:
                return None
            view = self.view_of(job_id)
            if view is None:
                return None
            status, error, final = self._attempt(view, {**record, "attempts": attempt})
            ok = status is not None and 200 <= status < 300
            record = {**record, "attempts": attempt, "last_status": status,
                      "delivered_at": iso_time(time.time()) if ok else None, "last_error": None if ok else error}
            outcome = "delivered" if ok else "failed" if final or attempt == attempts else "retry"
            self._note(job_id, waiter, record, outcome)
            log.info("webhook of job %s, attempt %d/%d: %s (%s)", job_id, attempt, attempts, outcome,
                     status if status is not None else error)
            if outcome != "retry":
                return outcome
            if self._stop.wait(self.settings.webhook_backoff_seconds * 2 ** (attempt - 1)):
                return None
        return None

    def _note(self, job_id: str, waiter: str, record: dict, outcome: str) -> None:
        """Count an attempt, then record it (so that a reader who sees the record sees the count); best
        effort: a store outage loses the note, not the delivery."""
        try:
            self.counts.add(outcome)
            _save(self.storage, job_id, waiter, record)
        except (RedisError, OSError) as exc:
            log.warning("webhook of job %s: attempt not recorded (%s)", job_id, exc)

    def _attempt(self, view: JobView, callback: dict) -> tuple[int | None, str | None, bool]:
        """One POST of ``view``: (status or None, the error, whether no further attempt may follow)."""
        result = finished_answer(self.storage, view) if view.status == JobStatus.finished else None
        body = job_document(view, result, callback)
        try:
            target = check_callback(callback["url"], self.settings)
        except CallbackRefused as exc:
            return None, f"refused: {exc}", True
        header = signature_header(body, self.settings.webhook_secret)
        try:
            return post(target, body, {SIGNATURE_HEADER: header}, self.settings.webhook_timeout_seconds), None, False
        except (OSError, http.client.HTTPException) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500], False

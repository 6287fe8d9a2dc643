"""Every Redis key name and every TTL the service and workers use, in one place.

RQ keeps its own keys under ``rq:``; ours all start with :data:`PREFIX`. TTL values are
settings (:mod:`jobs.settings`); :func:`ttl_for` says which one applies to which key.
"""
from __future__ import annotations

from .settings import JobSettings

__all__ = [
    "PREFIX", "key_for", "dataset_key", "result_key", "body_key", "submit_lock_key", "owners_key", "active_jobs_key",
    "admission_lock_key", "answered_job_key", "alive_key", "stop_key", "stop_channel", "probe_key",
    "store_secret_key", "asked_key", "waiters_key", "detached_key", "listing_key", "listing_meta_key", "LISTINGS",
    "callback_key", "webhook_pending_key", "webhook_counts_key", "job_durations_key", "ttl_for", "listing_ttl",
    "SUBMIT_LOCK_SECONDS", "PROBE_SECONDS",
]

PREFIX = "eoc-ntk"
#: The key kind of rendered answers: their format (``answer2``: with ``kind``).
ANSWER_FORMAT = "answer2"
#: Seconds a submission lock may be held (the check-then-enqueue of one job id).
SUBMIT_LOCK_SECONDS = 10
#: Seconds the readiness probe's key lives (``/readyz`` writes it to see that writes succeed).
PROBE_SECONDS = 10


def key_for(kind: str, ident: str) -> str:
    """The one constructor of our key names: ``eoc-ntk:<kind>:<ident>``."""
    return f"{PREFIX}:{kind}:{ident}"


def dataset_key(dataset_id: str) -> str:
    """An uploaded (or inline) dataset, by content hash."""
    return key_for("dataset", dataset_id)


def result_key(cache_key: str) -> str:
    """A computed result, by cache key (see :func:`jobs.specs.cache_key`)."""
    return key_for("result", cache_key)


def body_key(cache_key: str) -> str:
    """A result's rendered JSON answer (see :mod:`jobs.answers`), next to :func:`result_key`.

    The name says the answer's format: a new format (a field added) is stored under a new name,
    so that answers rendered in the old one are rendered again rather than served."""
    return key_for(ANSWER_FORMAT, cache_key)


def submit_lock_key(job_id: str) -> str:
    """Lock around "is this job in flight? else enqueue it" (single flight)."""
    return key_for("lock", job_id)


def owners_key(kind: str, ident: str) -> str:
    """Set of the API-key fingerprints allowed to see a ``dataset`` or a ``job`` (access control)."""
    if kind not in ("dataset", "job"):
        raise ValueError(f"no owners for {kind!r}")
    return key_for("owners", f"{kind}:{ident}")


def active_jobs_key(principal: str) -> str:
    """Set of the job ids an API key has queued or running (per-key job limit)."""
    return key_for("active", principal)


def admission_lock_key(principal: str) -> str:
    """Lock around "count this key's jobs, then submit" (per-key job limit)."""
    return key_for("lock", f"admit:{principal}")


def answered_job_key(job_id: str) -> str:
    """A job answered from the cache (``Prefer: respond-async`` on a cached result): its spec and
    cache key, so that the job resource and its plot exist although no queue ever ran it."""
    return key_for("answered", job_id)


def alive_key(job_id: str) -> str:
    """Heartbeat of a running job, refreshed by its work horse's guard process (abandoned-job detection)."""
    return key_for("alive", job_id)


def stop_key(job_id: str) -> str:
    """Set while a client's cancel of a running job stands: the job's guard ends its work horse
    (:mod:`jobs.horse`), and the worker records the job canceled."""
    return key_for("stop", job_id)


def stop_channel(job_id: str) -> str:
    """The channel on which a cancel of a running job is announced to its guard."""
    return key_for("stop", f"channel:{job_id}")


def probe_key() -> str:
    """The key ``/readyz`` writes to check that the store takes writes (one for all API processes)."""
    return key_for("probe", "ready")


def store_secret_key() -> str:
    """The generated secret of the stored values' HMAC when ``EOC_NTK_STORE_SECRET`` is unset
    (written once with ``SET NX``, no TTL: every API process and worker signs with it)."""
    return key_for("secret", "store")


def asked_key(principal: str) -> str:
    """Set of the cache keys an API key has asked for (its own cache history, see
    :meth:`service.engine.Engine.answer`)."""
    return key_for("asked", principal)


def waiters_key(job_id: str) -> str:
    """Set of the callers waiting for a job's computation (single flight: one computation, several callers)."""
    return key_for("waiters", job_id)


def detached_key(principal: str) -> str:
    """Set of the job ids a caller canceled while others still wait for their computation."""
    return key_for("detached", principal)


def job_durations_key() -> str:
    """The histogram of job durations by operation and final state (:mod:`jobs.durations`): one hash
    that every worker and API process adds to, without TTL (counters, as Prometheus expects)."""
    return key_for("metrics", "job_durations")


def callback_key(job_id: str, waiter: str) -> str:
    """A caller's webhook of a job: its URL and the outcome of the attempts (see :mod:`jobs.webhooks`)."""
    return key_for("callback", f"{job_id}:{waiter}")


def webhook_pending_key() -> str:
    """Set of the webhooks (``"<job_id> <waiter>"``) registered and not yet taken for delivery."""
    return key_for("webhooks", "pending")


def webhook_counts_key() -> str:
    """Hash of webhook attempts by outcome (delivered, retry, failed), for the API's metrics; no TTL."""
    return key_for("webhooks", "counts")


#: The listings kept on write (:mod:`jobs.listings`): ``datasets`` and ``jobs`` per caller,
#: ``results`` per dataset.
LISTINGS = ("datasets", "results", "jobs")


def listing_key(listing: str, owner: str) -> str:
    """Sorted set of a listing's members scored by the microsecond they were (last) written:
    a caller's ``datasets`` or ``jobs``, or a dataset's ``results``."""
    if listing not in LISTINGS:
        raise ValueError(f"no listing {listing!r}")
    return key_for("list", f"{listing}:{owner}")


def listing_meta_key(listing: str, owner: str) -> str:
    """Hash of the members of :func:`listing_key` to their JSON description (same TTL)."""
    if listing not in LISTINGS:
        raise ValueError(f"no listing {listing!r}")
    return key_for("listmeta", f"{listing}:{owner}")


def ttl_for(key: str, settings: JobSettings) -> int:
    """Seconds to keep ``key``."""
    kind, rest = key.split(":", 2)[1:]
    if kind == "dataset":
        return settings.dataset_ttl
    if kind in ("result", ANSWER_FORMAT):
        return settings.cache_ttl
    if kind == "lock":
        return SUBMIT_LOCK_SECONDS
    if kind == "owners":
        return settings.dataset_ttl if rest.startswith("dataset:") else settings.result_ttl
    if kind in ("active", "waiters", "detached", "answered", "callback", "webhooks"):
        return settings.result_ttl
    if kind == "probe":
        return PROBE_SECONDS
    if kind == "asked":
        return settings.cache_ttl
    if kind in ("list", "listmeta"):
        return listing_ttl(rest.split(":", 1)[0], settings)
    if kind == "alive":
        return settings.job_heartbeat_ttl
    if kind == "stop":
        return settings.job_timeout + settings.job_heartbeat_ttl
    raise KeyError(f"no TTL defined for key {key!r}")


def listing_ttl(listing: str, settings: JobSettings) -> int:
    """Seconds an entry of a listing lives: that of what it lists. A job's record may be kept up to
    ``result_ttl`` queued, ``job_timeout`` running and ``result_ttl`` once ended; a listing reads
    each job's state, so an entry of a job whose record is gone leaves it earlier."""
    if listing == "jobs":
        return 2 * settings.result_ttl + settings.job_timeout
    return {"datasets": settings.dataset_ttl, "results": settings.cache_ttl}[listing]

"""The job layer's settings: Redis, the queue, the job processes, TTLs, the cache and Dask.

Values come from the environment (prefix ``EOC_NTK_``, e.g. ``EOC_NTK_JOB_TIMEOUT=600``), except
the Redis address, which is the conventional ``REDIS_URL``. Each variable is read here and
nowhere else; the API's own settings (limits, keys, CORS) extend these in
:mod:`service.config`. Nothing in ``jobs/`` hard-codes a limit: read it from :func:`get_settings`
(or the settings object a caller hands down).
"""
from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["JobSettings", "get_settings", "environment_name", "MiB"]

MiB = 1 << 20


class JobSettings(BaseSettings):
    """Configuration of the job layer (environment prefix ``EOC_NTK_``), shared by the API and the workers."""

    model_config = SettingsConfigDict(env_prefix="EOC_NTK_", extra="ignore", frozen=True, populate_by_name=True)

    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "EOC_NTK_REDIS_URL"),
        description="Redis for cache and queue; unset means embedded mode (no Redis).",
    )
    queue_name: str = Field("eoc-ntk", description="RQ queue the API submits to and workers serve.")
    inline_max_seconds: float = Field(
        0.02, ge=0, description="Predicted seconds at or below which a synchronous computation runs inline in "
        "the API process (a thread); anything longer runs in a child process."
    )
    workers: int = Field(
        2, ge=1, description="Child-process slots per in-process pool: one pool runs embedded-mode jobs, "
        "another the synchronous requests (so long jobs never hold up small requests)."
    )
    job_timeout: int = Field(
        3600, ge=1, description="Seconds a job may run before its process is killed and it is failed (code timeout)."
    )
    result_ttl: int = Field(86_400, ge=1, description="Seconds a finished, failed or canceled job stays visible.")
    cache_ttl: int = Field(7 * 86_400, ge=1, description="Seconds a computed result stays in the Redis cache.")
    dataset_ttl: int = Field(7 * 86_400, ge=1, description="Seconds an uploaded dataset stays in Redis.")
    cache_bytes: int = Field(
        512 * MiB, ge=0, description="Byte budget of the in-memory LRU cache of embedded mode (datasets and results)."
    )
    max_jobs: int = Field(10_000, ge=1, description="Most job records an embedded-mode API keeps.")
    job_heartbeat_ttl: int = Field(
        15, ge=2, description="Seconds without a heartbeat from a running job's process after which the job is "
        "declared abandoned (its worker died) and failed; a guard process beside the computing work horse "
        "beats every third of this, at least every 0.5 s."
    )
    dask_address: str | None = Field(
        None, description="Address of a Dask scheduler (e.g. tcp://dask-scheduler:8786). When set, spectra jobs "
        "with n >= EOC_NTK_DASK_MIN_N run their tiles on that cluster, submitted by the job's process as a Dask "
        "client, and answer \"engine\": \"dask\" (extreme eigenvalues only, no ICD). Unset: every job runs on "
        "its own machine."
    )
    dask_min_n: int = Field(
        20_000, ge=2, description="Fewest data points n of a spectra request that runs on the Dask cluster "
        "(only with EOC_NTK_DASK_ADDRESS); such requests are always jobs (202)."
    )
    dask_chunks: int = Field(
        4096, ge=16, description="Rows (and columns) of one tile of K/n on the Dask cluster: 4096 makes 128 MiB "
        "tiles; smaller tiles mean more, shorter tasks."
    )
    dask_connect_timeout: float = Field(
        10.0, gt=0, description="Seconds a job waits for the Dask scheduler at EOC_NTK_DASK_ADDRESS before it "
        "fails (code dask_unavailable)."
    )
    maintenance_interval: int = Field(
        10, ge=1, description="Seconds between the API's sweeps for abandoned jobs (Redis mode)."
    )
    store_secret: str = Field(
        "", description="Secret of the HMAC-SHA-256 that signs every stored value (a value failing it is "
        "recomputed, never served). Unset: generated once and kept in Redis (shared by the API processes and the "
        "workers), or per process in embedded mode.", repr=False
    )

    webhook_allow: str = Field(
        "", description="Hosts a job's callback_url may name, comma-separated: host names (exact, `*.example.com` "
        "for its subdomains, `*` for any name) or CIDRs (10.0.0.0/8, 2001:db8::/32), the latter checked against the "
        "addresses the name resolves to, which the delivery then connects to. Link-local and cloud metadata "
        "addresses are refused whatever this says. Empty: callback_url is refused (422). Set the same value (and "
        "EOC_NTK_WEBHOOK_SECRET) for the workers: they deliver in Redis mode."
    )
    webhook_secret: str = Field(
        "", description="Secret of the HMAC-SHA-256 signing every webhook delivery (header X-EOC-NTK-Signature); "
        "callback_url is refused (422) while it is unset.", repr=False
    )
    webhook_attempts: int = Field(
        5, ge=1, le=20, description="Most attempts to deliver one webhook (the first included); a non-2xx answer "
        "or a connection error is tried again."
    )
    webhook_backoff_seconds: float = Field(
        1.0, ge=0, le=3600, description="Seconds before the second attempt of a webhook delivery; each later wait "
        "doubles (1, 2, 4, 8 s by default)."
    )
    webhook_timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="Seconds one webhook attempt may take to connect and be answered (redirects "
        "are never followed)."
    )

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured."""
        return not self.redis_url

    @property
    def webhooks_enabled(self) -> bool:
        """True when callbacks may be registered (an allow list and a signing secret are set)."""
        return bool(self.webhook_allow.strip()) and bool(self.webhook_secret)

    @property
    def dask_configured(self) -> bool:
        """True when a Dask scheduler address is set (spectra of n >= ``dask_min_n`` run there)."""
        return bool(self.dask_address)


def environment_name(field: str) -> str:
    """The environment variable of a settings field: ``REDIS_URL`` for ``redis_url``, else ``EOC_NTK_`` + upper case."""
    return "REDIS_URL" if field == "redis_url" else "EOC_NTK_" + field.upper()


@lru_cache(maxsize=1)
def get_settings() -> JobSettings:
    """The job layer's settings, read once from the environment (a worker's; the API hands down its own)."""
    return JobSettings()

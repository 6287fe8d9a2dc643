"""The one settings object: every limit, timeout, TTL and budget of the service and workers.

Values come from the environment (prefix ``EOC_NTK_``, e.g. ``EOC_NTK_MAX_N=2000``), except
the Redis address, which is the conventional ``REDIS_URL``. Nothing else in ``service/`` or
``jobs/`` hard-codes a limit: read it from :func:`get_settings`.
"""
from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]

MiB = 1 << 20


class Settings(BaseSettings):
    """Configuration of the API and the workers (environment prefix ``EOC_NTK_``)."""

    model_config = SettingsConfigDict(env_prefix="EOC_NTK_", extra="ignore", frozen=True, populate_by_name=True)

    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "EOC_NTK_REDIS_URL"),
        description="Redis for cache and queue; unset means embedded mode (no Redis).",
    )
    queue_name: str = Field("eoc-ntk", description="RQ queue the API submits to and workers serve.")

    # Input limits.
    max_n: int = Field(
        4096, ge=1, description="Most data points n in one dataset (and in x2). With EOC_NTK_DASK_ADDRESS set it "
        "may be larger (spectra of n >= EOC_NTK_DASK_MIN_N then hold no n x n matrix on one machine; raise "
        "EOC_NTK_MAX_BODY_BYTES with it), but every other operation of such n still runs on one machine."
    )
    min_n: int = Field(2, ge=1, description="Fewest data points n of the data (x or dataset_id) of a compute request.")
    max_m0: int = Field(4096, ge=1, description="Most features m0 per data point.")
    max_depth: int = Field(2000, ge=1, description="Largest depth (number of weight layers).")
    max_body_bytes: int = Field(64 * MiB, ge=1024, description="Largest request body; more is answered 413.")
    max_json_bytes: int = Field(
        512 * 1024, ge=1024, description="Largest JSON body (inline x, y and every JSON request or upload); more "
        "is answered 413 naming POST /v1/datasets, where large data go as .npy or CSV. A JSON body is parsed "
        "holding the API's interpreter lock, about 0.4 microseconds per number (bench/README.md)."
    )
    max_inflight_bytes: int = Field(
        256 * MiB, ge=1024, description="Most bytes of request bodies one API process holds at once, for the "
        "requests it has not answered yet; a body that does not fit is answered 503 with Retry-After."
    )
    body_timeout: float = Field(
        30.0, gt=0, description="Seconds a request body may take to arrive in full; then 408 and the connection "
        "is closed (slow or never-ending bodies)."
    )
    limit_concurrency: int = Field(
        1000, ge=1, description="Most connections and requests one API process serves at once (uvicorn's "
        "--limit-concurrency); beyond it new requests are answered 503 at once."
    )
    upload_concurrency: int = Field(
        2, ge=1, description="Most dataset uploads (CSV, .npy, JSON) and JSON bodies parsed at once per API "
        "process: bounds the memory of parsing to about 3 x EOC_NTK_MAX_BODY_BYTES per upload."
    )
    max_kernel_entries: int = Field(
        16_777_216, ge=1, description="Most entries n * n2 of a kernel matrix returned by /v1/kernels."
    )
    max_sweep_depths: int = Field(200, ge=1, description="Most depths in one sweep.")
    max_sweep_activations: int = Field(16, ge=1, description="Most activations in one sweep.")

    # Execution.
    async_seconds: float = Field(
        3.0, ge=0, description="Predicted seconds of one core (eoc_ntk.core.cost.predict_seconds) above which a "
        "request is answered 202 with a job instead of computed while the client waits."
    )
    sync_max_seconds: float = Field(
        60.0, ge=0, description="Most predicted seconds of a computation answered synchronously; more is "
        "refused (422, code sync_too_long) with the advice to send Prefer: respond-async."
    )
    inline_max_seconds: float = Field(
        0.02, ge=0, description="Predicted seconds at or below which a synchronous computation runs inline in "
        "the API process (a thread); anything longer runs in a child process."
    )
    async_threshold: int | None = Field(
        None, ge=0, description="Replaced by EOC_NTK_ASYNC_SECONDS. When set, a request whose old estimate "
        "(microseconds, jobs.specs.work_units) exceeds it also becomes a job."
    )
    api_workers: int = Field(
        1, ge=1, description="API processes of python -m service / eoc-ntk serve (uvicorn's process workers; "
        "--workers overrides). More than 1 needs Redis mode, where the processes share everything through Redis."
    )
    workers: int = Field(
        2, ge=1, description="Child-process slots per in-process pool: one pool runs embedded-mode jobs, "
        "another the synchronous requests (so long jobs never hold up small requests)."
    )
    job_timeout: int = Field(3600, ge=1, description="Seconds a job may run before its process is killed and it is "
                             "failed (code timeout).")
    result_ttl: int = Field(86_400, ge=1, description="Seconds a finished, failed or canceled job stays visible.")
    cache_ttl: int = Field(7 * 86_400, ge=1, description="Seconds a computed result stays in the Redis cache.")
    dataset_ttl: int = Field(7 * 86_400, ge=1, description="Seconds an uploaded dataset stays in Redis.")
    cache_bytes: int = Field(
        512 * MiB, ge=0, description="Byte budget of the in-memory LRU cache of embedded mode (datasets and results)."
    )
    max_jobs: int = Field(10_000, ge=1, description="Most job records an embedded-mode API keeps.")
    job_heartbeat_ttl: int = Field(
        15, ge=2, description="Seconds without a heartbeat from a running job's process after which the job is "
        "declared abandoned (its worker died) and failed; the worker's parent process (not the computing "
        "work horse) beats every third of this, at least every second."
    )
    # One huge spectrum on a Dask cluster (eoc_ntk.distributed; needs the [distributed] extra).
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

    # Access.
    api_keys: str = Field(
        "", description="Comma-separated API keys; when set, every /v1 request needs one (X-API-Key header or "
        "Authorization: Bearer) and sees only its own datasets and jobs. Empty: no authentication."
    )
    max_jobs_per_key: int = Field(
        8, ge=1, description="Most queued or running jobs per API key (429 beyond it; only when API keys are set)."
    )
    store_secret: str = Field(
        "", description="Secret of the HMAC-SHA-256 that signs every stored value (a value failing it is "
        "recomputed, never served). Unset: generated once and kept in Redis (shared by the API processes and the "
        "workers), or per process in embedded mode.", repr=False
    )
    cors_origins: str = Field(
        "", description="Comma-separated origins allowed by CORS (* for any); empty: no CORS headers."
    )

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured."""
        return not self.redis_url

    @property
    def dask_configured(self) -> bool:
        """True when a Dask scheduler address is set (spectra of n >= ``dask_min_n`` run there)."""
        return bool(self.dask_address)

    @property
    def api_key_list(self) -> list[str]:
        """The configured API keys (empty: authentication off)."""
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once from the environment."""
    return Settings()


def settings_table() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) rows, for the README."""
    rows = []
    for name, field in Settings.model_fields.items():
        env = "REDIS_URL" if name == "redis_url" else "EOC_NTK_" + name.upper()
        rows.append((env, "" if field.default is None else str(field.default), field.description or ""))
    return rows


if __name__ == "__main__":  # pragma: no cover - documentation helper
    for env, default, text in settings_table():
        print(f"| `{env}` | {default or '(unset)'} | {text} |")

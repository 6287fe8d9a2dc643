"""The API's settings: input limits, body limits, when a request becomes a job, keys and CORS.

One settings object, :class:`Settings`, read from the environment (prefix ``EOC_NTK_``) by
:func:`get_settings`; it extends the job layer's :class:`jobs.settings.JobSettings` (Redis, the
queue, TTLs, Dask), so the API reads every variable it needs through it, and each variable is
declared, and read, in exactly one class. ``python -m service.config`` prints the table of
``docs/configuration.md``.
"""
from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from jobs.settings import JobSettings, MiB, environment_name

__all__ = ["Settings", "get_settings", "settings_table"]


class Settings(JobSettings):
    """Configuration of the API (environment prefix ``EOC_NTK_``), with the job layer's settings."""

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
        "is answered 413 naming POST /v1/datasets, where large data go as .npy or CSV. The numeric arrays of a "
        "JSON body are read into float64 in chunks of at most 64 KiB (the API's interpreter lock is free "
        "between chunks), the rest by pydantic (bench/README.md)."
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

    # When a request is answered now and when it becomes a job.
    async_seconds: float = Field(
        3.0, ge=0, description="Predicted seconds of one core (eoc_ntk.core.cost.predict_seconds) above which a "
        "request is answered 202 with a job instead of computed while the client waits."
    )
    sync_max_seconds: float = Field(
        60.0, ge=0, description="Most predicted seconds of a computation answered synchronously; more is "
        "refused (422, code sync_too_long) with the advice to send Prefer: respond-async."
    )
    sync_wait_seconds: float = Field(
        5.0, gt=0, description="Most wall-clock seconds a synchronous request waits for its computation; one "
        "still running then is answered 202 with its job (Location header), and the computation goes on as that job."
    )
    api_workers: int = Field(
        1, ge=1, description="API processes of python -m service / eoc-ntk serve (uvicorn's process workers; "
        "--workers overrides). More than 1 needs Redis mode, where the processes share everything through Redis."
    )

    # Access.
    api_keys: str = Field(
        "", description="Comma-separated API keys; when set, every /v1 request needs one (X-API-Key header or "
        "Authorization: Bearer) and sees only its own datasets and jobs. Empty: no authentication."
    )
    max_jobs_per_key: int = Field(
        8, ge=1, description="Most queued or running jobs per API key (429 beyond it; only when API keys are set)."
    )
    cors_origins: str = Field(
        "", description="Comma-separated origins allowed by CORS (* for any); empty: no CORS headers."
    )

    @property
    def api_key_list(self) -> list[str]:
        """The configured API keys (empty: authentication off)."""
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    @property
    def cors_origin_list(self) -> list[str]:
        """The configured CORS origins (empty: no CORS headers)."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once from the environment."""
    return Settings()


def settings_table(layer: str | None = None) -> list[tuple[str, str, str]]:
    """(environment variable, default, description) of every setting of the API and the job layer;
    ``layer`` ``"jobs"`` (:class:`jobs.settings.JobSettings`) or ``"service"`` (the API's own) for one of them."""
    rows = []
    for name, field in Settings.model_fields.items():
        if layer is not None and (name in JobSettings.model_fields) != (layer == "jobs"):
            continue
        default = "" if field.default is None else str(field.default)
        rows.append((environment_name(name), default, field.description or ""))
    return rows


def markdown_table(layer: str) -> str:
    """The settings of ``layer`` (``"jobs"`` or ``"service"``) as a Markdown table of ``docs/configuration.md``."""
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    lines += [f"| `{env}` | {default or '(unset)'} | {text} |" for env, default, text in settings_table(layer)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - documentation helper
    print("## The API and the workers (jobs/settings.py)\n")
    print(markdown_table("jobs"))
    print("## The API only (service/config.py)\n")
    print(markdown_table("service"), end="")

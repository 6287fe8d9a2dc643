"""Python client of the eoc-ntk REST service: every endpoint, jobs polled, NumPy arrays back.

::

    from eoc_ntk.client import Client
    c = Client("http://127.0.0.1:8000")
    s = c.spectrum(x, depth=10, activation="relu")      # s["eigenvalues"] is an ndarray
    sw = c.sweep(x, depths="1:50", activations="relu,abs", progress=print)

Data ``x`` is an array-like of shape (n, m0) (sent once as ``.npy`` and then referred to by
its content hash) or a ``dataset_id`` string. Activations are spelled as in the CLI:
``"relu"``, ``"abs"``, ``"linear"``, ``"leaky_relu:0.1"``, ``"0.3,0.7"`` or ``(a, b)``.
Requests that the service answers with a job (202) are polled until they end, at most
``timeout`` seconds; ``progress`` is then called with the fraction done.

Depends on ``httpx`` (imported when a client is made; the ``[client]`` extra), NumPy and the
core's spellings (:mod:`eoc_ntk.core.activations`, :mod:`eoc_ntk.core.jsonsafe`), never on the service's packages.
"""
from __future__ import annotations

import io
import math
import time
from typing import Iterable, Iterator

import numpy as np

from eoc_ntk.core.activations import Activation, is_smooth, parse_activation, parse_activations
from eoc_ntk.core.jsonsafe import from_jsonable
from eoc_ntk.core.progress import ProgressFn
from eoc_ntk.core.validation import parse_depths

__all__ = ["Client", "ApiError", "JobFailed", "JobTimeout"]

NPY = "application/x-npy"


def _query_text(act: Activation) -> str:
    """An activation as the API's query text: ``"A,B"`` exactly for the family, the name of a smooth one."""
    if is_smooth(act):
        return str(act.api()["name"])
    return f"{act.a!r},{act.b!r}"


class ApiError(Exception):
    """An error answer of the service: ``status``, ``code``, ``message``, ``field`` and, for a
    ``DELETE`` of a job that already ended (409), ``job_status``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 job_status: str | None = None):
        super().__init__(f"{status} {code}: {message}" + (f" (field {field})" if field else ""))
        self.status, self.code, self.message, self.field = status, code, message, field
        self.job_status = job_status


class JobFailed(ApiError):
    """A job ended ``failed`` or ``canceled``."""


class JobTimeout(TimeoutError):
    """A job was still running when the client's timeout passed (the job goes on: see ``job_id``)."""

    def __init__(self, job_id: str, timeout: float, status: str, progress: float):
        super().__init__(f"job {job_id} still {status} ({progress:.0%}) after {timeout:g} s; "
                         f"poll it with Client.wait({job_id!r}) or cancel it with Client.cancel")
        self.job_id = job_id


class Client:
    """Client of one eoc-ntk service at ``url``.

    Parameters
    ----------
    url : str
        Base URL, e.g. ``http://127.0.0.1:8000``.
    api_key : str, optional
        Sent as ``Authorization: Bearer KEY`` and ``X-API-Key: KEY``.
    timeout : float
        Seconds to wait for a job (and for each HTTP request).
    poll_interval : float
        Seconds between polls of a running job.
    http : httpx.Client, optional
        A ready client (e.g. FastAPI's ``TestClient``) used instead of a new one.
    """

    def __init__(self, url: str = "http://127.0.0.1:8000", api_key: str | None = None, *,
                 timeout: float = 600.0, poll_interval: float = 0.2, http=None):
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        self.poll_interval = float(poll_interval)
        headers = {}
        if api_key:
            headers = {"Authorization": f"Bearer {api_key}", "X-API-Key": api_key}
        if http is None:
            import httpx  # lazy: httpx is the [client] extra, needed only for a real connection

            http = httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout)
        else:
            http.headers.update(headers)
        self._http = http

    # Plumbing
    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _request(self, method: str, path: str, **kw):
        r = self._http.request(method, path, **kw)
        if r.status_code >= 400:
            try:
                err = r.json()["error"]
                raise ApiError(r.status_code, err.get("code", "error"), err.get("message", r.text), err.get("field"),
                               err.get("status"))
            except (ValueError, KeyError, TypeError):
                raise ApiError(r.status_code, "http_error", r.text[:500]) from None
        return r

    def _data(self, x) -> dict:
        if isinstance(x, str):
            return {"dataset_id": x}
        return {"dataset_id": self.upload(x)}

    def _submit(self, path: str, body: dict, *, progress: ProgressFn | None, timeout: float | None,
                accept: str | None = None, params: dict | None = None):
        headers = {}
        if progress is not None:
            headers["Prefer"] = "respond-async"
        if accept:
            headers["Accept"] = accept
        r = self._request("POST", path, json=body, headers=headers, params=params)
        if r.status_code == 202:
            job_id = r.json()["job_id"]
            return self._wait_raw(job_id, timeout, progress, accept)
        if progress is not None:
            progress(1.0)
        return r

    def _accepted(self, path: str, body: dict, callback_url: str, params: dict | None = None) -> dict:
        """POST ``body`` with ``callback_url``: the job resource of the accepted job (202), at once."""
        return self._request("POST", path, json={**body, "callback_url": callback_url}, params=params).json()

    # Datasets
    def upload(self, x) -> str:
        """Store ``x`` (shape (n, m0)) and return its ``dataset_id`` (a content hash)."""
        arr = np.ascontiguousarray(np.asarray(x, dtype=float))
        if arr.ndim == 1:
            arr = arr[:, None]
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        r = self._request("POST", "/v1/datasets", content=buf.getvalue(), headers={"Content-Type": NPY})
        return r.json()["dataset_id"]

    def dataset(self, dataset_id: str) -> dict:
        """``{"dataset_id", "n", "m0"}`` of a stored dataset."""
        return self._request("GET", f"/v1/datasets/{dataset_id}").json()

    # Listings: what this key has stored, newest first, every page followed
    def _pages(self, path: str, params: dict, page_size: int) -> Iterator[dict]:
        params = {k: v for k, v in params.items() if v is not None}
        params["limit"] = int(page_size)
        while True:
            page = self._request("GET", path, params=params).json()
            yield from page["items"]
            if page["next_cursor"] is None:
                return
            params["cursor"] = page["next_cursor"]

    def datasets(self, *, page_size: int = 100) -> Iterator[dict]:
        """This key's stored datasets (``GET /v1/datasets``): ``{"dataset_id", "n", "m0", "labels",
        "created_at", "expires_at", ...}`` each, newest first, ``page_size`` per request."""
        return self._pages("/v1/datasets", {}, page_size)

    def results(self, dataset_id: str, *, kind: str | None = None, activation=None, depth_min: int | None = None,
                depth_max: int | None = None, page_size: int = 100) -> Iterator[dict]:
        """This key's cached results of a dataset (``GET /v1/datasets/{id}/results``): ``{"result_id", "kind",
        "model", "parameters", "created_at", "url", ...}`` each, newest first; only those of ``kind``,
        ``activation`` (any spelling) and depths in ``[depth_min, depth_max]`` when given. Read one with
        :meth:`cached_result`."""
        act = None
        if activation is not None:
            act = _query_text(parse_activation(activation))
        return self._pages(f"/v1/datasets/{dataset_id}/results", {
            "kind": kind, "activation": act, "depth_min": depth_min, "depth_max": depth_max}, page_size)

    def cached_result(self, item: dict) -> dict:
        """The answer of a listed result (an item of :meth:`results`), arrays as ndarrays."""
        return from_jsonable(self._request("GET", item["url"]).json())

    def jobs(self, *, status: str | None = None, page_size: int = 100) -> Iterator[dict]:
        """This key's jobs (``GET /v1/jobs``): ``{"job_id", "op", "status", "progress", "created_at", ...}``
        each, newest first; only those in ``status`` (queued, running, finished, failed, canceled) if given."""
        return self._pages("/v1/jobs", {"status": status}, page_size)

    # Compute
    @staticmethod
    def _model(depth: int, activation, sigma_w, sigma_b) -> dict:
        model = {"depth": int(depth), "activation": parse_activation(activation).api(), "sigma_b": float(sigma_b)}
        if sigma_w is not None:
            model["sigma_w"] = float(sigma_w)
        return model

    def kernels(self, x, x2=None, *, depth: int, activation="relu", kinds: Iterable[str] = ("ntk",),
                sigma_w: float | None = None, sigma_b: float = 0.0, progress: ProgressFn | None = None,
                timeout: float | None = None, callback_url: str | None = None) -> dict:
        """Kernel matrices ``K(x, x2)`` (unnormalised) by kind: ``{"ntk": ndarray, ...}``.

        With ``callback_url`` (as every computing method): submitted as a job whose resource is
        returned at once (``job_id``, ``status``, ...); the service POSTs it, signed, to that URL
        once the job has ended (docs/webhooks.md; :func:`eoc_ntk.webhooks.verify` checks it)."""
        body = {**self._data(x), "model": self._model(depth, activation, sigma_w, sigma_b), "kinds": list(kinds)}
        if x2 is not None:
            body["x2_dataset_id"] = self._data(x2)["dataset_id"]
        if callback_url is not None:
            return self._accepted("/v1/kernels", body, callback_url)
        out = self._submit("/v1/kernels", body, progress=progress, timeout=timeout).json()
        return {k: np.asarray(out[k], dtype=float) for k in body["kinds"]}

    def kernel(self, x, x2=None, *, depth: int, activation="relu", kind: str = "ntk",
               sigma_w: float | None = None, sigma_b: float = 0.0, progress: ProgressFn | None = None,
               timeout: float | None = None, callback_url: str | None = None) -> np.ndarray | dict:
        """One kernel matrix ``K(x, x2)`` of shape (n, n2), fetched as raw ``.npy`` (the job resource
        with ``callback_url``, see :meth:`kernels`)."""
        body = {**self._data(x), "model": self._model(depth, activation, sigma_w, sigma_b), "kinds": [kind]}
        if x2 is not None:
            body["x2_dataset_id"] = self._data(x2)["dataset_id"]
        if callback_url is not None:
            return self._accepted("/v1/kernels", body, callback_url)
        r = self._submit("/v1/kernels", body, progress=progress, timeout=timeout, accept=NPY)
        return np.load(io.BytesIO(r.content), allow_pickle=False)

    def spectrum(self, x, *, depth: int, activation="relu", sigma_w: float | None = None, sigma_b: float = 0.0,
                 progress: ProgressFn | None = None, timeout: float | None = None,
                 callback_url: str | None = None) -> dict:
        """Eigenvalues of ``K/n`` (ascending ndarray), condition number (``inf`` if singular), ICD analysis
        (the job resource with ``callback_url``, see :meth:`kernels`)."""
        body = {**self._data(x), "model": self._model(depth, activation, sigma_w, sigma_b)}
        if callback_url is not None:
            return self._accepted("/v1/spectra", body, callback_url)
        return from_jsonable(self._submit("/v1/spectra", body, progress=progress, timeout=timeout).json())

    def cached_spectrum(self, dataset_id: str, *, depth: int, activation="relu", sigma_w: float | None = None,
                        sigma_b: float = 0.0) -> dict:
        """A spectrum computed before (``ApiError`` 404 when it is not cached)."""
        act = parse_activation(activation)
        params = {"dataset_id": dataset_id, "depth": int(depth), "sigma_b": sigma_b,
                  **({"activation": _query_text(act)} if is_smooth(act) else {"a": act.a, "b": act.b})}
        if sigma_w is not None:
            params["sigma_w"] = sigma_w
        return from_jsonable(self._request("GET", "/v1/spectra", params=params).json())

    def cached_sweep(self, dataset_id: str, *, depths, activations="relu", sigma_w: float | None = None,
                     sigma_b: float = 0.0) -> dict:
        """A sweep computed before (``GET /v1/sweeps``; ``ApiError`` 404 when it is not cached, never computes).

        ``depths`` and ``activations`` in any spelling of :func:`~eoc_ntk.core.validation.parse_depths` and
        :func:`~eoc_ntk.core.activations.parse_activations`, in the sweep's order.
        """
        acts = ";".join(_query_text(a) for a in parse_activations(activations))
        params = {"dataset_id": dataset_id, "depths": ",".join(map(str, parse_depths(depths))),
                  "activations": acts, "sigma_b": sigma_b}
        if sigma_w is not None:
            params["sigma_w"] = sigma_w
        return from_jsonable(self._request("GET", "/v1/sweeps", params=params).json())

    def sweep(self, x, *, depths, activations="relu", sigma_w: float | None = None, sigma_b: float = 0.0,
              progress: ProgressFn | None = None, timeout: float | None = None,
              callback_url: str | None = None) -> dict:
        """Condition number (and extremes) per activation and depth, with each depth limit.

        ``depths`` is a list or a string such as ``"1:100"``; ``activations`` a list or ``"relu,abs"``.
        Returns ``{"depths": ndarray, "results": [{"activation", "condition_number": ndarray, ...}]}``
        (the job resource with ``callback_url``, see :meth:`kernels`).
        """
        body = self._sweep_body(x, depths, activations, sigma_w, sigma_b)
        if callback_url is not None:
            return self._accepted("/v1/sweeps", body, callback_url)
        return from_jsonable(self._submit("/v1/sweeps", body, progress=progress, timeout=timeout).json())

    def _sweep_body(self, x, depths, activations, sigma_w, sigma_b) -> dict:
        body = {**self._data(x), "depths": parse_depths(depths),
                "activations": [a.api() for a in parse_activations(activations)], "sigma_b": float(sigma_b)}
        if sigma_w is not None:
            body["sigma_w"] = float(sigma_w)
        return body

    # Plots
    def plot_spectrum(self, x, *, depth: int, activation="relu", fmt: str = "png", sigma_w: float | None = None,
                      sigma_b: float = 0.0, progress: ProgressFn | None = None, timeout: float | None = None,
                      width: float | None = None, height: float | None = None, dpi: int | None = None,
                      callback_url: str | None = None) -> bytes | dict:
        """PNG or SVG bytes of the sorted eigenvalues (log scale); ``width``, ``height``, ``dpi`` as for
        :meth:`plot_sweep` (the job resource with ``callback_url``: draw it later with :meth:`job_plot`)."""
        body = {**self._data(x), "model": self._model(depth, activation, sigma_w, sigma_b)}
        if callback_url is not None:
            return self._accepted("/v1/plots/spectrum", body, callback_url, {"format": fmt})
        return self._plot("/v1/plots/spectrum", body, fmt, progress, timeout, _size(width, height, dpi))

    def plot_eigenvalues(self, x, *, depth: int, activations="relu", fmt: str = "png", sigma_w: float | None = None,
                         sigma_b: float = 0.0, progress: ProgressFn | None = None, timeout: float | None = None,
                         width: float | None = None, height: float | None = None, dpi: int | None = None) -> bytes:
        """PNG or SVG bytes of the sorted eigenvalues of ``K/n`` at one depth, one curve per activation.

        Each spectrum is computed (or found in the cache) with ``POST /v1/spectra``, then drawn by
        ``GET /v1/plots/eigenvalues``; ``progress`` covers the spectra one after the other.
        """
        dataset_id = self._data(x)["dataset_id"]
        acts = [f"{a.a!r},{a.b!r}" for a in parse_activations(activations)]
        for i, act in enumerate(acts):
            part = None if progress is None else (lambda f, i=i: progress((i + f) / len(acts)))
            self._submit("/v1/spectra", {"dataset_id": dataset_id, "model": self._model(depth, act, sigma_w, sigma_b)},
                         progress=part, timeout=timeout)
        params = {"dataset_id": dataset_id, "depth": int(depth), "activations": ";".join(acts),
                  "sigma_b": float(sigma_b), "format": fmt, **_size(width, height, dpi)}
        if sigma_w is not None:
            params["sigma_w"] = float(sigma_w)
        return self._request("GET", "/v1/plots/eigenvalues", params=params).content

    def plot_sweep(self, x, *, depths, activations="relu", fmt: str = "png", sigma_w: float | None = None,
                   sigma_b: float = 0.0, progress: ProgressFn | None = None, timeout: float | None = None,
                   width: float | None = None, height: float | None = None, dpi: int | None = None,
                   callback_url: str | None = None) -> bytes | dict:
        """PNG or SVG bytes of the condition number vs depth, with the depth limits
        (``width``, ``height`` in inches and ``dpi``: the API's query parameters; the job resource
        with ``callback_url``: draw it later with :meth:`job_plot`)."""
        body = self._sweep_body(x, depths, activations, sigma_w, sigma_b)
        if callback_url is not None:
            return self._accepted("/v1/plots/sweep", body, callback_url, {"format": fmt})
        return self._plot("/v1/plots/sweep", body, fmt, progress, timeout, _size(width, height, dpi))

    def _plot(self, path, body, fmt, progress, timeout, size: dict | None = None) -> bytes:
        headers = {"Prefer": "respond-async"} if progress is not None else {}
        r = self._request("POST", path, json=body, params={"format": fmt, **(size or {})}, headers=headers)
        if r.status_code == 202:
            job_id = r.json()["job_id"]
            self._wait_raw(job_id, timeout, progress, None)
            return self.job_plot(job_id, fmt, **(size or {}))
        if progress is not None:
            progress(1.0)
        return r.content

    def job_plot(self, job_id: str, fmt: str = "png", *, width: float | None = None, height: float | None = None,
                 dpi: int | None = None) -> bytes:
        """PNG or SVG bytes of a finished spectra or sweeps job."""
        return self._request("GET", f"/v1/jobs/{job_id}/plot",
                             params={"format": fmt, **_size(width, height, dpi)}).content

    # Jobs
    def job(self, job_id: str) -> dict:
        """``{"job_id", "op", "status", "progress", "result"?, "error"?}`` as the service reports it."""
        return self._request("GET", f"/v1/jobs/{job_id}").json()

    def cancel(self, job_id: str) -> dict:
        """Cancel a queued or running job (``ApiError`` 409 with ``.job_status`` when it already ended)."""
        return self._request("DELETE", f"/v1/jobs/{job_id}").json()

    def wait(self, job_id: str, timeout: float | None = None, progress: ProgressFn | None = None) -> dict:
        """Poll a job until it ends; its result (arrays as ndarrays), or ``JobFailed``/``JobTimeout``."""
        return from_jsonable(self._wait_raw(job_id, timeout, progress, None).json())

    def _wait_raw(self, job_id: str, timeout: float | None, progress: ProgressFn | None, accept: str | None):
        timeout = self.timeout if timeout is None else float(timeout)
        deadline = time.monotonic() + timeout
        while True:
            r = self._request("GET", f"/v1/jobs/{job_id}")
            body = r.json()
            status = body["status"]
            if progress is not None:
                progress(float(body.get("progress", 0.0)))
            if status == "finished":
                if accept:
                    return self._request("GET", f"/v1/jobs/{job_id}", headers={"Accept": accept})
                return _Result(body["result"])
            if status in ("failed", "canceled"):
                err = body.get("error") or {}
                raise JobFailed(200, err.get("code", status), err.get("message", f"job {job_id} {status}"))
            if time.monotonic() >= deadline:
                raise JobTimeout(job_id, timeout, status, float(body.get("progress", 0.0)))
            time.sleep(self.poll_interval)

    # Health and documents
    def health(self) -> dict:
        return self._request("GET", "/healthz").json()

    def ready(self) -> bool:
        """True when the service is ready (in Redis mode: Redis answers)."""
        return self._http.get("/readyz").status_code == 200

    def openapi(self) -> dict:
        return self._request("GET", "/openapi.json").json()

    def metrics(self) -> str:
        """The Prometheus text exposition of ``/metrics``."""
        return self._request("GET", "/metrics").text

    # Labels (docs/learning.md): training dynamics and learning curves on the user's own labels
    def upload_labels(self, y) -> str:
        """Store labels ``y`` (shape (n,) or (n, k)) and return their ``labels_id`` (a content hash)."""
        arr = np.ascontiguousarray(np.asarray(y, dtype=float))
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        r = self._request("POST", "/v1/labels", content=buf.getvalue(), headers={"Content-Type": NPY})
        return r.json()["labels_id"]

    def _labels(self, y) -> dict:
        if isinstance(y, str):
            return {"labels_id": y}
        return {"labels_id": self.upload_labels(y)}

    def dynamics(self, x, y, *, depth: int, activation="relu", sigma_w: float | None = None, sigma_b: float = 0.0,
                 learning_rate: float | None = None, steps: Iterable[int] | None = None, init: str = "zero",
                 progress: ProgressFn | None = None, timeout: float | None = None,
                 callback_url: str | None = None) -> dict:
        """``eoc_ntk.Dynamics.to_dict()`` computed by the service (``None`` entries as ``inf``/``nan``; where
        ``scaled`` is set, ``max_learning_rate``, ``learning_rate`` and ``eigenvalues`` are None: outside float64).

        ``x`` and ``y`` are arrays or ids (``dataset_id``, ``labels_id``). The loss at step ``t`` of
        full-batch gradient descent at infinite width: ``L_t = (1/2n) sum_i (1 - eta lambda_i)^(2t)
        |V_i^T y|^2`` (docs/learning.md §3)."""
        body = {**self._data(x), **self._labels(y), "model": self._model(depth, activation, sigma_w, sigma_b),
                "init": init}
        if learning_rate is not None:
            body["learning_rate"] = float(learning_rate)
        if steps is not None:
            body["steps"] = [int(s) for s in steps]
        if callback_url is not None:  # the job resource, see kernels
            return self._accepted("/v1/dynamics", body, callback_url)
        out = from_jsonable(self._submit("/v1/dynamics", body, progress=progress, timeout=timeout).json())
        # null in steps_to means never (docs/learning.md §1)
        out["steps_to"] = {k: math.inf if v is None else v for k, v in out["steps_to"].items()}
        return _outside_float64_as_none(out, ("eigenvalues",))

    def learning_curve(self, x, y, *, depth: int, sizes: Iterable[int], activation="relu",
                       sigma_w: float | None = None, sigma_b: float = 0.0, ridge: float = 0.0, splits: int = 5,
                       seed: int = 0, progress: ProgressFn | None = None, timeout: float | None = None,
                       callback_url: str | None = None) -> dict:
        """``eoc_ntk.LearningCurve.to_dict()`` computed by the service: the estimate of the held-out test
        MSE per training-set size next to the measured one and its standard deviation over the splits
        (docs/learning.md §5). Where ``scaled`` is set, ``effective_ridge`` is None (outside float64)."""
        body = {**self._data(x), **self._labels(y), "model": self._model(depth, activation, sigma_w, sigma_b),
                "sizes": [int(m) for m in sizes], "ridge": float(ridge), "splits": int(splits), "seed": int(seed)}
        if callback_url is not None:  # the job resource, see kernels
            return self._accepted("/v1/learning-curves", body, callback_url)
        out = from_jsonable(self._submit("/v1/learning-curves", body, progress=progress, timeout=timeout).json())
        return _outside_float64_as_none(out, ("effective_ridge",))


def _outside_float64_as_none(out: dict, keys) -> dict:
    """Values outside float64 stay None (not NaN): ``out["scaled"]`` holds them with their power of two
    (docs/learning.md §2)."""
    if out.get("scaled"):
        for key in keys:
            out[key] = None
    return out


class _Result:
    """A finished job's result, shaped like a synchronous response (``.json()``)."""

    def __init__(self, body: dict):
        self._body = body

    def json(self) -> dict:
        return self._body


def _size(width: float | None, height: float | None, dpi: int | None) -> dict:
    """The plot routes' size query (``width``, ``height`` in inches, ``dpi``): the ones given."""
    return {k: v for k, v in (("width", width), ("height", height), ("dpi", dpi)) if v is not None}

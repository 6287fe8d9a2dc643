"""The pages of a caller's listings, read from the indexes kept on write (:mod:`jobs.listings`).

Nothing here walks the store: each page reads one listing index from a position, and checks
each entry it answers (the caller's right to see it, the filters, whether it still exists).
Without API keys every caller is :data:`jobs.listings.ANONYMOUS` and sees everything the
deployment stored.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from jobs import keys
from jobs.index import Entry, Position
from jobs.listings import owner_of
from jobs.states import JobStatus
from jobs.store import labels_store_id

from .cursors import decode_cursor, encode_cursor
from .engine import Engine
from .errors import InvalidInput, NotFound
from .jobdoc import job_links, status_url
from .listing_schemas import DatasetItem, DatasetPage, JobItem, JobPage, ResultItem, ResultPage

__all__ = ["ResultFilter", "dataset_page", "result_page", "job_page", "result_id_of", "cache_key_of",
           "check_depth_range", "READ_BUDGET"]

#: Most index entries one page reads under a filter before it answers a short page (and a cursor).
READ_BUDGET = 1000


@dataclass(frozen=True)
class ResultFilter:
    """What ``GET /v1/datasets/{id}/results`` keeps: ``kind``, an activation's canonical form (the
    family's ``(a, b)``, a smooth activation's name), and a depth range (a sweep matches when one of
    its depths is in it)."""

    kind: str | None = None
    ab: tuple[float, float] | str | None = None
    depth_min: int | None = None
    depth_max: int | None = None

    def context(self) -> str:
        return json.dumps([self.kind, self.ab, self.depth_min, self.depth_max])

    def keeps(self, spec: dict) -> bool:
        if self.kind is not None and spec["op"] != self.kind:
            return False
        models = spec["activations"] if spec["op"] == "sweeps" else [spec["model"]]
        if self.ab is not None and not any(_activation_of(m) == self.ab for m in models):
            return False
        depths = spec["depths"] if spec["op"] == "sweeps" else [spec["model"]["depth"]]
        low, high = self.depth_min or 1, self.depth_max
        return any(d >= low and (high is None or d <= high) for d in depths)


def _activation_of(model: dict) -> tuple[float, float] | str:
    """A canonical model's activation: ``(a, b)`` or the smooth activation's name."""
    return model["activation"] if "activation" in model else (model["a"], model["b"])


def _iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _expires(entry: Entry, listing: str, engine: Engine) -> str:
    return _iso(entry.score + keys.listing_ttl(listing, engine.settings) * 1_000_000)


def result_id_of(cache_key: str) -> str:
    """The public id of a cached result: its cache key with ``-`` for ``:`` (``spectra-<64 hex>``)."""
    return cache_key.replace(":", "-", 1)


def cache_key_of(result_id: str) -> str:
    return result_id.replace("-", ":", 1)


def _position(engine: Engine, cursor: str | None, context: str) -> Position | None:
    return None if cursor is None else decode_cursor(cursor, context, engine.storage.secret())


def _next(engine: Engine, position: Position | None, context: str) -> str | None:
    return None if position is None else encode_cursor(position, context, engine.storage.secret())


def dataset_page(engine: Engine, who: str | None, limit: int, cursor: str | None) -> DatasetPage:
    """The caller's stored datasets, newest first."""
    owner, context = owner_of(who), f"datasets\x00{owner_of(who)}"
    storage = engine.storage

    def items(batch: list[Entry]) -> list[DatasetItem | None]:
        out: list[DatasetItem | None] = []
        for entry in batch:
            meta = json.loads(entry.meta or "{}")
            labels = [i for i in meta.get("labels", []) if storage.store.exists(keys.dataset_key(labels_store_id(i)))]
            url = f"/v1/datasets/{entry.member}"
            out.append(DatasetItem(dataset_id=entry.member, n=meta.get("n", 0), m0=meta.get("m0", 0), labels=labels,
                                   created_at=_iso(entry.score), expires_at=_expires(entry, "datasets", engine),
                                   url=url, results_url=f"{url}/results"))
        return out

    found, after = storage.listings.walk("datasets", owner, _position(engine, cursor, context), limit, items,
                                         READ_BUDGET)
    return DatasetPage(items=found, next_cursor=_next(engine, after, context))


def _result_item(entry: Entry, spec: dict, engine: Engine) -> ResultItem:
    params = {k: v for k, v in spec.items() if k not in ("op", "dataset_id", "model", "x2_id")}
    if spec["op"] == "kernels":
        params["x2_dataset_id"] = spec.get("x2_id")
    result_id = result_id_of(entry.member)
    return ResultItem(result_id=result_id, kind=spec["op"], dataset_id=spec["dataset_id"], model=spec.get("model"),
                      parameters=params, created_at=_iso(entry.score), expires_at=_expires(entry, "results", engine),
                      url=f"/v1/datasets/{spec['dataset_id']}/results/{result_id}")


def result_page(engine: Engine, who: str | None, dataset_id: str, limit: int, cursor: str | None,
                wanted: ResultFilter) -> ResultPage:
    """The caller's cached results of ``dataset_id`` that ``wanted`` keeps, newest first (404 when the
    caller may not see the dataset). With API keys, a result is the caller's once it has asked for it."""
    storage = engine.storage
    if not storage.owns("dataset", dataset_id, who):
        raise NotFound(f"unknown dataset_id {dataset_id!r} (expired, never uploaded, or not yours)", field="dataset_id")
    context = f"results\x00{owner_of(who)}\x00{dataset_id}\x00{wanted.context()}"

    def items(batch: list[Entry]) -> list[ResultItem | None]:
        members = [e.member for e in batch]
        asked = [True] * len(batch) if who is None else storage.listings.index.contains(keys.asked_key(who), members)
        out: list[ResultItem | None] = []
        for entry, mine in zip(batch, asked, strict=True):
            spec: dict = json.loads(entry.meta)["spec"] if entry.meta else {}
            out.append(_result_item(entry, spec, engine) if mine and spec and wanted.keeps(spec) else None)
        return out

    found, after = storage.listings.walk("results", dataset_id, _position(engine, cursor, context), limit, items,
                                         READ_BUDGET)
    return ResultPage(items=found, next_cursor=_next(engine, after, context))


def job_page(engine: Engine, who: str | None, limit: int, cursor: str | None,
             status: JobStatus | None) -> JobPage:
    """The caller's jobs (queued, running, or ended and still kept), newest first, of one ``status``
    if given."""
    owner = owner_of(who)
    context = f"jobs\x00{owner}\x00{'' if status is None else status.value}"
    storage = engine.storage

    def items(batch: list[Entry]) -> list[JobItem | None]:
        out: list[JobItem | None] = []
        gone = []
        for entry in batch:
            try:
                view = engine.job(entry.member, who)
            except NotFound:
                gone.append(entry.member)
                out.append(None)
                continue
            op = view.spec.get("op") or entry.member.rsplit("-", 1)[0]
            keep = status is None or view.status == status
            out.append(JobItem(job_id=view.job_id, op=op, status=view.status, progress=view.progress,
                               created_at=_iso(entry.score), status_url=status_url(view.job_id),
                               links=job_links(view.job_id, op)) if keep else None)
        storage.listings.forget("jobs", owner, gone)
        return out

    found, after = storage.listings.walk("jobs", owner, _position(engine, cursor, context), limit, items,
                                         READ_BUDGET)
    return JobPage(items=found, next_cursor=_next(engine, after, context))


def check_depth_range(depth_min: int | None, depth_max: int | None) -> None:
    if depth_min is not None and depth_max is not None and depth_min > depth_max:
        raise InvalidInput(f"depth_min = {depth_min} is above depth_max = {depth_max}; give a range with "
                           "depth_min <= depth_max", field="depth_min")


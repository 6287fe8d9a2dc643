"""What is listed, written where it is stored: a caller's datasets and jobs, a dataset's results.

Each listing is an index of :mod:`jobs.index` (one per caller, or per dataset for results), written
by the same call that stores what it lists, with the same TTL:

- ``datasets`` of a caller (an API key's fingerprint, or :data:`ANONYMOUS` without keys): member
  the dataset id, description ``{"n", "m0", "labels": [labels ids uploaded with it]}``;
- ``results`` of a dataset (shared by every caller; who may see which one is the caller's own
  cache history, :meth:`jobs.store.Storage.has_asked`): member the cache key, description
  ``{"spec": ...}`` (the canonical spec of :mod:`jobs.specs`);
- ``jobs`` of a caller: member the job id (it names the operation), description ``{}``; the state
  is read from the job's backend when listed.

An entry's score is the microsecond of its last write, so an entry is older than what it lists
only when that was stored again by another caller; the entries scored before
``now - TTL`` are pruned when read, and so are those whose stored value is gone (evicted).
A failed index write is logged and never fails the write it follows.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable

from redis.exceptions import RedisError

from . import keys
from .index import Entry, ListingIndex, Position, now_micros
from .settings import JobSettings

__all__ = ["Listings", "ANONYMOUS", "owner_of"]

log = logging.getLogger("eoc_ntk.jobs")

#: The owner of what is stored without API keys (authentication off: one caller).
ANONYMOUS = "anonymous"


def owner_of(principal: str | None) -> str:
    """The listing owner of a caller: its key's fingerprint, or :data:`ANONYMOUS`."""
    return ANONYMOUS if principal is None else principal


class Listings:
    """The listing indexes over one :class:`~jobs.index.ListingIndex`."""

    def __init__(self, index: ListingIndex, settings: JobSettings):
        self.index = index
        self.settings = settings

    def _write(self, listing: str, owner: str, member: str, meta: dict) -> None:
        try:
            self.index.add(keys.listing_key(listing, owner), keys.listing_meta_key(listing, owner), member,
                           json.dumps(meta, sort_keys=True, separators=(",", ":")),
                           keys.listing_ttl(listing, self.settings))
        except (RedisError, OSError) as exc:
            log.warning("%s listing of %s not updated with %s: %s", listing, owner, member, exc)

    def _read_meta(self, listing: str, owner: str, member: str) -> dict | None:
        text = self.index.meta(keys.listing_key(listing, owner), keys.listing_meta_key(listing, owner), member)
        return None if text is None else json.loads(text)

    # Writes
    def dataset_stored(self, dataset_id: str, shape: tuple[int, ...], principal: str | None,
                       labels_id: str | None = None) -> None:
        """``principal`` stored the points ``dataset_id`` of ``shape`` (n, m0), with labels ``labels_id``."""
        owner = owner_of(principal)
        try:
            before = self._read_meta("datasets", owner, dataset_id) or {}
        except (RedisError, OSError):
            before = {}
        labels = sorted(set(before.get("labels", [])) | ({labels_id} if labels_id else set()))
        self._write("datasets", owner, dataset_id, {"n": int(shape[0]), "m0": int(shape[1]), "labels": labels})

    def result_stored(self, cache_key: str, spec: dict | None) -> None:
        """The result of ``spec`` was stored under ``cache_key`` (no spec: not listed)."""
        if spec is not None:
            self._write("results", spec["dataset_id"], cache_key, {"spec": spec})

    def job_accepted(self, job_id: str, principal: str | None) -> None:
        """``principal`` submitted (or joined) job ``job_id``."""
        self._write("jobs", owner_of(principal), job_id, {})

    # Reads
    def cutoff(self, listing: str) -> int:
        """The score below which an entry of ``listing`` has outlived what it lists."""
        return now_micros() - keys.listing_ttl(listing, self.settings) * 1_000_000

    def page(self, listing: str, owner: str, after: Position | None, count: int) -> tuple[list[Entry], bool]:
        """Up to ``count`` live entries of ``owner``'s ``listing`` after ``after``, newest first; and
        whether more may follow (see :meth:`jobs.index.ListingIndex.page`)."""
        stored = {"datasets": keys.dataset_key(""), "results": keys.result_key("")}.get(listing, "")
        return self.index.page(keys.listing_key(listing, owner), keys.listing_meta_key(listing, owner),
                               self.cutoff(listing), after, count, stored)

    def forget(self, listing: str, owner: str, members: list[str]) -> None:
        """Drop entries found gone when read (a job whose record expired)."""
        self.index.remove(keys.listing_key(listing, owner), keys.listing_meta_key(listing, owner), members)

    def result_spec(self, dataset_id: str, cache_key: str) -> dict | None:
        """The spec of a listed result of ``dataset_id``, or None when it is not listed (any more)."""
        meta = self._read_meta("results", dataset_id, cache_key)
        return None if meta is None else meta["spec"]

    def walk(self, listing: str, owner: str, after: Position | None, limit: int,
             keep: Callable[[list[Entry]], list], budget: int) -> tuple[list, Position | None]:
        """One page of a listing under a filter: ``keep(entries)`` maps a batch of entries to their
        items (None: filtered out). Reads batches until ``limit`` items are found, the listing ends
        (next position None) or ``budget`` entries were read (the page is then short, and the next
        position is that of the last entry read)."""
        items: list = []
        read = 0
        while True:
            batch, more = self.page(listing, owner, after, limit + 1)
            for entry, item in zip(batch, keep(batch), strict=True):
                if len(items) == limit:
                    return items, after
                after = (entry.score, entry.member)
                if item is not None:
                    items.append(item)
            read += len(batch)
            if not more:
                return items, None
            if read >= budget:
                return items, after

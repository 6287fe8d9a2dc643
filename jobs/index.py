"""Listing indexes kept on write: members scored by time, each with a JSON description.

An index is a sorted set (member -> microseconds since the epoch at which it was last written)
and a hash (member -> its description, a JSON text), both with the TTL of what they list,
renewed on every write. A read never walks the store (no ``KEYS``, no ``SCAN``): it first prunes
the entries scored before a cutoff (older than what they list may be) and those whose stored key
is gone (evicted), then answers one page, newest first.

Order: score descending, then member descending (Redis's order of equal scores in
``ZREVRANGEBYSCORE``), so that a :data:`Position` (the last entry of a page) says exactly where
the next page starts, whatever is written meanwhile.

In Redis a page is one Lua script (one round trip, atomic: an entry written again meanwhile is
never pruned by mistake); embedded mode keeps the same structures in sorted lists.
"""
from __future__ import annotations

import threading
import time
from bisect import bisect_left, insort
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Entry", "Position", "ListingIndex", "MemoryIndex", "RedisIndex", "now_micros"]

#: Where a page ended: the (score, member) of its last entry; the next page holds what sorts after.
Position = tuple[int, str]


@dataclass(frozen=True)
class Entry:
    """One indexed member: its ``score`` (microseconds since the epoch) and description (JSON text)."""

    member: str
    score: int
    meta: str | None


def now_micros() -> int:
    """The score of a write now: microseconds since the epoch (exact in a Redis score, < 2**53)."""
    return time.time_ns() // 1000


class ListingIndex(Protocol):
    def add(self, key: str, meta_key: str, member: str, meta: str, ttl: int, score: int | None = None) -> None:
        """Index ``member`` (score: now) with its description ``meta``; both keys live ``ttl`` seconds,
        and entries older than that go."""

    def meta(self, key: str, meta_key: str, member: str) -> str | None:
        """The description of ``member``, or None."""

    def page(self, key: str, meta_key: str, cutoff: int, after: Position | None, count: int,
             stored_prefix: str = "") -> tuple[list[Entry], bool]:
        """Up to ``count`` entries after ``after`` (from the newest without one), once the entries
        scored below ``cutoff`` and (with ``stored_prefix``) those whose key ``stored_prefix + member``
        no longer exists are dropped; and whether entries may follow."""

    def remove(self, key: str, meta_key: str, members: list[str]) -> None:
        """Drop ``members`` (they no longer exist)."""

    def contains(self, set_key: str, members: list[str]) -> list[bool]:
        """Whether each of ``members`` is in the set ``set_key`` of the store (one look-up)."""


def _after(entry: tuple[int, str], position: Position | None) -> bool:
    return position is None or entry < position


# Both scripts: KEYS are the sorted set and its hash; ARGV[1] the cutoff (entries scored below go).
_PRUNE = """
local function drop(members)
  for i = 1, #members, 1000 do
    local chunk = {unpack(members, i, math.min(i + 999, #members))}
    redis.call('ZREM', KEYS[1], unpack(chunk))
    redis.call('HDEL', KEYS[2], unpack(chunk))
  end
end
drop(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1]))
"""
# ARGV: cutoff, score, member, description, TTL.
_ADD = _PRUNE + """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
"""
# ARGV: cutoff, highest score, count, prefix of a member's stored key.
# Returns {more, member, score, meta, member, score, meta, ...}.
_PAGE = _PRUNE + """
local count = tonumber(ARGV[3])
local found = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[2], ARGV[1], 'WITHSCORES', 'LIMIT', 0, count)
local out, gone = {#found == 2 * count and 1 or 0}, {}
for i = 1, #found, 2 do
  if ARGV[4] ~= '' and redis.call('EXISTS', ARGV[4] .. found[i]) == 0 then
    gone[#gone + 1] = found[i]
  else
    out[#out + 1] = found[i]
    out[#out + 1] = found[i + 1]
    out[#out + 1] = redis.call('HGET', KEYS[2], found[i])
  end
end
drop(gone)
return out
"""


class RedisIndex:
    """Listing indexes in Redis: ``ZADD`` + ``HSET`` + ``EXPIRE`` on write, one script per page."""

    def __init__(self, connection):
        self.conn = connection
        self._add = connection.register_script(_ADD)
        self._page = connection.register_script(_PAGE)

    def add(self, key: str, meta_key: str, member: str, meta: str, ttl: int, score: int | None = None) -> None:
        now = now_micros()
        self._add(keys=[key, meta_key], args=[now - ttl * 1_000_000, now if score is None else score, member, meta,
                                              ttl])

    def meta(self, key: str, meta_key: str, member: str) -> str | None:
        value = self.conn.hget(meta_key, member)
        return value.decode() if isinstance(value, bytes) else value

    def page(self, key: str, meta_key: str, cutoff: int, after: Position | None, count: int,
             stored_prefix: str = "") -> tuple[list[Entry], bool]:
        # Entries of the position's own score come first and may sort before it: ask for enough
        # more that ``count`` remain after them (scores rarely tie: usually one round trip).
        extra = 0
        while True:
            top = "+inf" if after is None else str(after[0])
            raw = self._page(keys=[key, meta_key], args=[cutoff, top, count + extra, stored_prefix])
            more = bool(raw[0])
            found = [(int(float(_text(raw[i + 1]))), _text(raw[i]), raw[i + 2]) for i in range(1, len(raw), 3)]
            kept = [Entry(m, s, None if d is None else _text(d)) for s, m, d in found if _after((s, m), after)]
            if len(kept) >= count or not more:
                return kept[:count], more or len(kept) > count
            extra += count + len(found) - len(kept)

    def contains(self, set_key: str, members: list[str]) -> list[bool]:
        return [bool(x) for x in self.conn.smismember(set_key, members)] if members else []

    def remove(self, key: str, meta_key: str, members: list[str]) -> None:
        if members:
            with self.conn.pipeline() as pipe:
                pipe.zrem(key, *members)
                pipe.hdel(meta_key, *members)
                pipe.execute()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class _Sorted:
    """One index in memory: its entries in ascending (score, member) order, by member, and its expiry."""

    order: list[tuple[int, str]] = field(default_factory=list)
    scores: dict[str, int] = field(default_factory=dict)
    metas: dict[str, str] = field(default_factory=dict)
    expires: float = 0.0

    def drop(self, member: str) -> None:
        score = self.scores.pop(member, None)
        self.metas.pop(member, None)
        if score is not None:
            del self.order[bisect_left(self.order, (score, member))]

    def prune(self, cutoff: int) -> None:
        """Forget the entries scored below ``cutoff`` (the oldest: a prefix of ``order``)."""
        end = bisect_left(self.order, (cutoff, ""))
        for _, member in self.order[:end]:
            del self.scores[member]
            self.metas.pop(member, None)
        del self.order[:end]


class MemoryIndex:
    """Listing indexes of embedded mode: sorted lists (a write or a page costs O(log n) look-ups and
    one list move, never a sort); ``exists(key)`` says whether a stored key is there, ``has_member(key,
    member)`` whether a set of the store holds a member."""

    def __init__(self, exists: Callable[[str], bool], has_member: Callable[[str, str], bool]):
        self.exists = exists
        self.has_member = has_member
        self._sets: dict[str, _Sorted] = {}
        self._lock = threading.Lock()

    def _live(self, key: str) -> _Sorted | None:
        current = self._sets.get(key)
        if current is not None and current.expires < time.monotonic():
            del self._sets[key]
            return None
        return current

    def add(self, key: str, meta_key: str, member: str, meta: str, ttl: int, score: int | None = None) -> None:
        now = now_micros()
        with self._lock:
            if len(self._sets) > 10_000:  # forget expired indexes now and then
                for k in [k for k, v in self._sets.items() if v.expires < time.monotonic()]:
                    del self._sets[k]
            current = self._live(key) or _Sorted()
            current.prune(now - ttl * 1_000_000)
            current.drop(member)
            entry = (now if score is None else score, member)
            insort(current.order, entry)
            current.scores[member], current.metas[member] = entry[0], meta
            current.expires = time.monotonic() + ttl
            self._sets[key] = current

    def meta(self, key: str, meta_key: str, member: str) -> str | None:
        with self._lock:
            current = self._live(key)
            return None if current is None else current.metas.get(member)

    def page(self, key: str, meta_key: str, cutoff: int, after: Position | None, count: int,
             stored_prefix: str = "") -> tuple[list[Entry], bool]:
        out: list[Entry] = []
        with self._lock:
            current = self._live(key)
            if current is None:
                return out, False
            current.prune(cutoff)
            i = len(current.order) if after is None else bisect_left(current.order, after)
            while i > 0:
                if len(out) == count:
                    return out, True
                i -= 1
                score, member = current.order[i]
                if stored_prefix and not self.exists(stored_prefix + member):
                    current.drop(member)  # entries before i keep their places
                    continue
                out.append(Entry(member, score, current.metas.get(member)))
        return out, False

    def contains(self, set_key: str, members: list[str]) -> list[bool]:
        return [self.has_member(set_key, m) for m in members]

    def remove(self, key: str, meta_key: str, members: list[str]) -> None:
        with self._lock:
            current = self._live(key)
            if current is not None:
                for member in members:
                    current.drop(member)

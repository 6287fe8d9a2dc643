"""Listings of a key's datasets, cached results and jobs (``GET /v1/datasets``,
``GET /v1/datasets/{id}/results``, ``GET /v1/jobs``), in embedded mode and in Redis mode (the
run's own redis-server, no worker: a job submitted there stays queued).

References are independent of the listings: what each test stored itself (ids answered by the
uploads and computations, their order, the closed-form NTK), and Redis's own command counters."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from _service_support import make_client, ntk_depth2_unit, unit_rows
from eoc_ntk.client import Client
from jobs.index import MemoryIndex, RedisIndex, now_micros
from service.access import fingerprint
from service.app import create_app
from service.config import Settings

ALICE, BOB, CAROL = "alice-key-0123456789", "bob-key-9876543210", "carol-key-5555555555"
A, B, C = {"X-API-Key": ALICE}, {"X-API-Key": BOB}, {"X-API-Key": CAROL}
ASYNC = {"Prefer": "respond-async"}
KEYS = f"{ALICE},{BOB},{CAROL}"
QUEUE = f"eoc-ntk-test-listings-{os.getpid()}"  # no worker serves it: Redis-mode jobs stay queued


def _redis_client(url: str, **overrides):
    from fastapi.testclient import TestClient

    return TestClient(create_app(Settings(redis_url=url, queue_name=QUEUE, maintenance_interval=3600, **overrides)))


@pytest.fixture(scope="module", params=["embedded", pytest.param("redis", marks=pytest.mark.redis)])
def mode(request):
    if request.param == "redis":
        request.getfixturevalue("redis_conn")  # skips without Redis; flushes the module's database
        return request.getfixturevalue("redis_test_url")
    return None


@pytest.fixture(scope="module")
def keyed(mode):
    client = make_client(api_keys=KEYS) if mode is None else _redis_client(mode, api_keys=KEYS)
    with client as c:
        yield c


def _walk(client, url: str, headers: dict, limit: int, **params) -> tuple[list[dict], int]:
    """Every item of a listing, page by page; and the number of pages."""
    items, pages, cursor = [], 0, None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        r = client.get(url, params=query, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages


def _upload(client, headers, seed: int, n: int = 4) -> str:
    r = client.post("/v1/datasets", json={"x": unit_rows(n, 3, seed=seed).tolist()}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["dataset_id"]


def test_datasets_are_walked_newest_first_each_once_and_only_by_their_key(keyed):
    uploaded = [_upload(keyed, A, seed) for seed in range(100, 107)]
    items, pages = _walk(keyed, "/v1/datasets", A, limit=3)
    assert [i["dataset_id"] for i in items] == uploaded[::-1] and pages == 3
    assert all(i["n"] == 4 and i["m0"] == 3 and i["labels"] == [] for i in items)
    assert [i["created_at"] for i in items] == sorted((i["created_at"] for i in items), reverse=True)
    # Another key sees none of them, and may not use the other key's cursor.
    assert keyed.get("/v1/datasets", headers=B).json() == {"items": [], "next_cursor": None}
    cursor = keyed.get("/v1/datasets", params={"limit": 2}, headers=A).json()["next_cursor"]
    refused = keyed.get("/v1/datasets", params={"cursor": cursor}, headers=B)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "cursor"
    # Labels stored with a dataset are listed with it.
    y = [1.0, -1.0, 0.5, 2.0]
    r = keyed.post("/v1/datasets", json={"x": unit_rows(4, 3, seed=100).tolist(), "y": y}, headers=A)
    first = keyed.get("/v1/datasets", params={"limit": 1}, headers=A).json()["items"][0]
    assert first["dataset_id"] == uploaded[0] and first["labels"] == [r.json()["labels_id"]]


def test_results_filter_by_kind_activation_and_depth_and_read_back(keyed):
    x = unit_rows(5, 3, seed=7)
    ds = _upload(keyed, A, 7, n=5)
    asked = []
    for depth, act in ((1, "relu"), (2, "relu"), (3, "relu"), (2, "abs")):
        r = keyed.post("/v1/spectra", json={"dataset_id": ds, "model": {"depth": depth, "activation": act}},
                       headers=A)
        assert r.status_code == 200, r.text
        asked.append(("spectra", depth, act))
    assert keyed.post("/v1/sweeps", json={"dataset_id": ds, "depths": "1:3", "activations": ["relu", "abs"]},
                      headers=A).status_code == 200
    url = f"/v1/datasets/{ds}/results"
    items, pages = _walk(keyed, url, A, limit=2)
    assert pages == 3 and [i["kind"] for i in items] == ["sweeps", "spectra", "spectra", "spectra", "spectra"]
    spectra = [(i["model"]["depth"], (i["model"]["a"], i["model"]["b"])) for i in items[1:]]
    assert spectra == [(2, (0.0, 1.0)), (3, (0.5, 0.5)), (2, (0.5, 0.5)), (1, (0.5, 0.5))]
    assert items[0]["parameters"]["depths"] == [1, 2, 3]

    def ids(**params):
        return {i["result_id"] for i in _walk(keyed, url, A, limit=500, **params)[0]}

    by_id = {(i["kind"], i["model"]["depth"] if i["model"] else None, (i["model"] or {}).get("a")): i["result_id"]
             for i in items}
    sweep = by_id[("sweeps", None, None)]
    assert ids(kind="sweeps") == {sweep}
    assert ids(activation="abs") == {by_id[("spectra", 2, 0.0)], sweep}
    assert ids(activation="0.5,0.5") == ids(activation="RELU") == {by_id[("spectra", d, 0.5)] for d in (1, 2, 3)} | {
        sweep}
    assert ids(depth_min=2, depth_max=2) == {by_id[("spectra", 2, 0.5)], by_id[("spectra", 2, 0.0)], sweep}
    assert ids(depth_min=3, kind="spectra") == {by_id[("spectra", 3, 0.5)]}
    for params, field in (({"depth_min": 3, "depth_max": 1}, "depth_min"), ({"kind": "plots"}, "kind"),
                          ({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"activation": "sigmoid"}, "activation"),
                          ({"cursor": "bm90LWEtY3Vyc29y.0123456789abcdef0123456789abcdef"}, "cursor")):
        r = keyed.get(url, params=params, headers=A)
        assert r.status_code == 422 and r.json()["error"]["field"] == field, (params, r.text)
    # A cursor holds for the filters that produced it only.
    cursor = keyed.get(url, params={"limit": 1, "kind": "spectra"}, headers=A).json()["next_cursor"]
    assert keyed.get(url, params={"cursor": cursor, "kind": "sweeps"}, headers=A).status_code == 422
    # The url reads the result: the closed-form NTK's eigenvalues.
    read = keyed.get(next(i["url"] for i in items if i["result_id"] == by_id[("spectra", 2, 0.5)]), headers=A)
    assert read.status_code == 200 and read.json()["cache"] == "hit" and read.headers["etag"]
    np.testing.assert_allclose(read.json()["eigenvalues"], np.linalg.eigvalsh(ntk_depth2_unit(x) / 5), rtol=1e-10)
    assert keyed.get(read.request.url.path, headers={**A, "If-None-Match": read.headers["etag"]}).status_code == 304
    # Another key: the dataset is not its own (404); once it stores the same points, it sees no result
    # it did not ask for; once it asks for one, that one.
    assert keyed.get(url, headers=B).status_code == 404
    assert keyed.get(read.request.url.path, headers=B).status_code == 404
    assert _upload(keyed, B, 7, n=5) == ds
    assert keyed.get(url, headers=B).json() == {"items": [], "next_cursor": None}
    assert keyed.get(read.request.url.path, headers=B).status_code == 404
    keyed.post("/v1/spectra", json={"dataset_id": ds, "model": {"depth": 2, "activation": "relu"}}, headers=B)
    assert [i["result_id"] for i in keyed.get(url, headers=B).json()["items"]] == [by_id[("spectra", 2, 0.5)]]


def test_jobs_are_listed_by_status_for_their_key_only(keyed, mode):
    ds = _upload(keyed, A, 11, n=5)
    model = {"depth": 2, "activation": "relu"}
    assert keyed.post("/v1/spectra", json={"dataset_id": ds, "model": model}, headers=A).status_code == 200
    answered = keyed.post("/v1/spectra", json={"dataset_id": ds, "model": model}, headers={**A, **ASYNC}).json()
    submitted = [keyed.post("/v1/spectra", json={"dataset_id": ds, "model": {"depth": d, "activation": "abs"}},
                            headers={**A, **ASYNC}).json()["job_id"] for d in (3, 4, 5)]
    if mode is None:  # embedded: the jobs run; wait for them to end
        for job_id in submitted:
            deadline = time.monotonic() + 30
            while keyed.get(f"/v1/jobs/{job_id}", headers=A).json()["status"] not in ("finished", "failed"):
                assert time.monotonic() < deadline
                time.sleep(0.02)
    else:  # Redis without a worker: queued; one canceled
        assert keyed.delete(f"/v1/jobs/{submitted[0]}", headers=A).json()["status"] == "canceled"
    everything, pages = _walk(keyed, "/v1/jobs", A, limit=2)
    assert [j["job_id"] for j in everything] == submitted[::-1] + [answered["job_id"]] and pages == 2
    truth = {j: keyed.get(f"/v1/jobs/{j}", headers=A).json()["status"] for j in [answered["job_id"], *submitted]}
    for status in ("queued", "running", "finished", "failed", "canceled"):
        listed = [j["job_id"] for j in _walk(keyed, "/v1/jobs", A, limit=1, status=status)[0]]
        assert listed == [j for j in submitted[::-1] + [answered["job_id"]] if truth[j] == status], status
    expected = {"finished": 4} if mode is None else {"finished": 1, "queued": 2, "canceled": 1}
    assert {s: list(truth.values()).count(s) for s in set(truth.values())} == expected
    assert keyed.get("/v1/jobs", headers=B).json() == {"items": [], "next_cursor": None}
    r = keyed.get("/v1/jobs", params={"status": "done"}, headers=A)
    assert r.status_code == 422 and r.json()["error"]["field"] == "status"


def test_without_keys_a_listing_shows_what_the_deployment_stored(mode):
    client = make_client() if mode is None else _redis_client(mode)
    with client as c:
        ds = _upload(c, {}, 21)
        c.post("/v1/spectra", json={"dataset_id": ds, "model": {"depth": 1, "activation": "relu"}})
        assert c.get("/v1/datasets", params={"limit": 1}).json()["items"][0]["dataset_id"] == ds
        assert [i["model"]["depth"] for i in c.get(f"/v1/datasets/{ds}/results").json()["items"]] == [1]
        # The client follows the cursors.
        api = Client("http://testserver", http=c)
        assert [d["dataset_id"] for d in api.datasets(page_size=1)][0] == ds
        listed = list(api.results(ds, kind="spectra", activation="relu", depth_min=1, depth_max=1, page_size=1))
        assert len(listed) == 1 and api.cached_result(listed[0])["model"]["depth"] == 1
        assert list(api.jobs(status="queued")) == []


def test_expired_entries_leave_the_listings(mode):
    ttl = {"dataset_ttl": 1, "cache_ttl": 1, "result_ttl": 1, "api_keys": KEYS}
    client = make_client(**ttl) if mode is None else _redis_client(mode, **ttl)
    with client as c:
        ds = _upload(c, C, 31)
        c.post("/v1/spectra", json={"dataset_id": ds, "model": {"depth": 1, "activation": "relu"}}, headers=C)
        c.post("/v1/spectra", json={"dataset_id": ds, "model": {"depth": 1, "activation": "relu"}},
               headers={**C, **ASYNC})
        assert len(c.get("/v1/datasets", headers=C).json()["items"]) == 1
        assert len(c.get(f"/v1/datasets/{ds}/results", headers=C).json()["items"]) == 1
        assert len(c.get("/v1/jobs", headers=C).json()["items"]) == 1
        time.sleep(1.1)
        assert c.get("/v1/datasets", headers=C).json() == {"items": [], "next_cursor": None}
        assert c.get(f"/v1/datasets/{ds}/results", headers=C).status_code == 404  # the dataset expired too
        assert c.get("/v1/jobs", headers=C).json() == {"items": [], "next_cursor": None}


@pytest.mark.redis
def test_a_listing_request_neither_scans_nor_lists_keys(redis_conn, redis_test_url):
    """Redis's own counters of SCAN and KEYS do not move while every listing is read."""
    with _redis_client(redis_test_url, api_keys=KEYS) as c:
        ds = _upload(c, C, 41)
        c.post("/v1/spectra", json={"dataset_id": ds, "model": {"depth": 1, "activation": "relu"}}, headers=C)
        c.post("/v1/spectra", json={"dataset_id": ds, "model": {"depth": 2, "activation": "relu"}},
               headers={**C, **ASYNC})

        def counts() -> dict:
            stats = redis_conn.info("commandstats")
            return {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0)
                    for name in ("scan", "keys", "sscan", "hscan", "zscan", "zadd", "evalsha")}

        before = counts()
        for url in ("/v1/datasets", f"/v1/datasets/{ds}/results?kind=spectra", "/v1/jobs?status=queued"):
            r = c.get(url, headers=C)
            assert r.status_code == 200 and len(r.json()["items"]) == 1, r.text
        after = counts()
        assert {k: after[k] - before[k] for k in ("scan", "keys", "sscan", "hscan", "zscan")} == dict.fromkeys(
            ("scan", "keys", "sscan", "hscan", "zscan"), 0)
        assert after["evalsha"] > before["evalsha"]  # the counters do see the listings' own commands
        # The index is where the description says: a sorted set of the key's datasets.
        assert redis_conn.zscore(f"eoc-ntk:list:datasets:{fingerprint(CAROL)}", ds) is not None


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def index(request):
    """Both listing indexes: in memory (what exists: a set of names) and in Redis (the module's database)."""
    if request.param == "memory":
        stored: set[str] = set()
        yield MemoryIndex(stored.__contains__, lambda key, member: False), stored.add
    else:
        conn = request.getfixturevalue("redis_conn")
        yield RedisIndex(conn), lambda key: conn.set(key, b"1")


def test_an_index_pages_ties_in_order_and_prunes_old_and_gone_entries(index):
    idx, store = index
    base = now_micros()  # an add forgets entries older than its TTL (60 s) at once
    scores = {m: base + s for m, s in {"a": 9, "b": 9, "c": 9, "d": 7, "e": 7, "f": 5, "g": 3, "old": 1}.items()}
    for member, score in scores.items():
        idx.add("z", "h", member, f'{{"m":"{member}"}}', 60, score=score)
        if member != "f":
            store(f"kept:{member}")
    expected = sorted(((s, m) for m, s in scores.items() if s >= base + 2 and m != "f"), reverse=True)
    seen, after = [], None
    while True:
        batch, more = idx.page("z", "h", base + 2, after, 2, "kept:")
        seen += [(e.score, e.member) for e in batch]
        assert all(e.meta == f'{{"m":"{e.member}"}}' for e in batch)
        if not batch and not more:
            break
        after = (batch[-1].score, batch[-1].member) if batch else after
    assert [m for _, m in seen] == ["c", "b", "a", "e", "d", "g"]  # "old" (below the cutoff) and "f" (gone) dropped
    assert seen == expected
    assert idx.meta("z", "h", "old") is None and idx.meta("z", "h", "f") is None
    assert idx.meta("z", "h", "d") == '{"m":"d"}'

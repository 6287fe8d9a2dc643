"""The service's building blocks: value codec, stores, cache keys, job ids."""
from __future__ import annotations

import re

import numpy as np
import pytest

import eoc_ntk
from jobs import codec, specs
from jobs.codec import CorruptValue, StoredValue
from jobs.specs import JOB_ID_PATTERN
from jobs.store import MemoryStore, Storage
from service.config import Settings
from service.specs import op_of_job


def test_codec_round_trip_is_exact():
    k = np.random.default_rng(0).normal(size=(5, 3))
    value = StoredValue(doc={"a": [1, None, "x"]}, arrays={"ntk": k, "idx": np.arange(4)})
    back = codec.decode(codec.encode(value))
    assert back.doc == value.doc
    assert back.arrays["ntk"].tobytes() == k.tobytes() and back.arrays["idx"].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("damage", ["flip", "truncate", "magic", "empty"])
def test_codec_refuses_damaged_values(damage):
    blob = bytearray(codec.encode(StoredValue(doc={"v": 1}, arrays={"k": np.eye(3)})))
    if damage == "flip":
        blob[-5] ^= 0x01
    elif damage == "truncate":
        blob = blob[:-8]
    elif damage == "magic":
        blob[0] ^= 0xFF
    else:
        blob = b""
    with pytest.raises(CorruptValue):
        codec.decode(bytes(blob))


def test_codec_refuses_another_algorithm_version(monkeypatch):
    blob = codec.encode(StoredValue(doc={"v": 1}))
    monkeypatch.setattr(codec, "ALGORITHM_VERSION", "another")
    with pytest.raises(CorruptValue, match="algorithm"):
        codec.decode(blob)


def test_storage_treats_corrupt_values_as_misses_and_drops_them():
    store = MemoryStore(1 << 20)
    storage = Storage(store, Settings(redis_url=None))
    storage.put_result("spectra:abc", StoredValue(doc={"ok": True}))
    assert storage.get_result("spectra:abc").doc == {"ok": True}
    key = "eoc-ntk:result:spectra:abc"
    store.set(key, store.get(key)[:-1], 60)
    assert storage.get_result("spectra:abc") is None
    assert store.get(key) is None


def test_memory_store_keeps_to_its_byte_budget_lru_first():
    store = MemoryStore(100)
    store.set("a", b"x" * 40, 60)
    store.set("b", b"x" * 40, 60)
    assert store.get("a") is not None  # a is now the most recent
    store.set("c", b"x" * 40, 60)
    assert store.get("b") is None and store.get("a") is not None and store.used == 80
    store.set("huge", b"x" * 101, 60)
    assert store.get("huge") is None
    store.set("old", b"x", -1)
    assert store.get("old") is None


def _spec(depth=3, a=0.5, b=0.5, **kw):
    return specs.spectra_spec("0" * 32, eoc_ntk.Model(depth, a, b, **kw))


def test_cache_key_canonicalises_hyperparameters():
    relu = specs.spectra_spec("0" * 32, eoc_ntk.Model.from_activation(3, "relu"))
    assert specs.cache_key(relu) == specs.cache_key(_spec()) == specs.cache_key(_spec(a=-0.5, b=0.5))
    assert specs.cache_key(_spec(sigma_b=-0.0)) == specs.cache_key(_spec(sigma_b=0.0))
    assert specs.cache_key(_spec(depth=4)) != specs.cache_key(_spec())
    assert specs.cache_key(_spec(a=1.0, b=1.0)) != specs.cache_key(_spec())
    other_data = specs.spectra_spec("1" * 32, eoc_ntk.Model(3, 0.5, 0.5))
    assert specs.cache_key(other_data) != specs.cache_key(_spec())


def test_cache_key_carries_the_algorithm_version(monkeypatch):
    before = specs.cache_key(_spec())
    monkeypatch.setattr(eoc_ntk, "ALGORITHM_VERSION", "next")
    assert specs.cache_key(_spec()) != before


def test_job_ids_derive_from_cache_keys():
    key = specs.cache_key(_spec())
    job_id = specs.job_id_for(key)
    assert re.match(JOB_ID_PATTERN, job_id) and job_id.startswith("spectra-")
    assert specs.job_id_for(specs.cache_key(_spec())) == job_id
    assert op_of_job(job_id) == "spectra"


@pytest.mark.parametrize("body, status, field, words", [
    (b'{"x": [[1, 0], [0, 1]], "model": {"depth": 1000000000000000000000000000000, "activation": "relu"}}',
     422, "model.depth", "depth"),
    (b'{"x": [[1, 0], [0, NaN]], "model": {"depth": 2, "activation": "relu"}}', 422, "x", "finite"),
    (b'{"x": [[1, 0], [0, 1e400]], "model": {"depth": 2, "activation": "relu"}}', 422, "x", "finite"),
    (b'{"x": [[1, 0], [0, 1]], "model": {"depth": 2, "activation": "relu", "sigma_b": -Infinity}}', 422,
     "model.sigma_b", "sigma_b"),
    (b'{"x": [[1, 0], [0, 1]', 400, "body", "not valid JSON"),
    (b'\xff\xfe{}', 400, "body", "not valid JSON"),
    (b'[' * 100_000 + b']' * 100_000, 400, "body", "not valid JSON"),
])
def test_json_edge_bodies_are_answered_4xx_naming_the_field(body, status, field, words):
    """Every JSON body goes through pydantic's parser (service.jsonbody): integers beyond 64 bits
    stay integers (the depth limit names them), non-finite numbers reach the checks that name
    their field, and what is not UTF-8 JSON is a 400 naming the body."""
    from fastapi.testclient import TestClient

    from service.app import create_app
    with TestClient(create_app(Settings(redis_url=None))) as client:
        r = client.post("/v1/spectra", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text[:300]
    err = r.json()["error"]
    assert err["field"] == field and words in err["message"], err

"""Job webhooks in embedded mode, against a real HTTP receiver (tests/_webhook_support.py): the
signed delivery of the job resource, a first attempt that fails (500) and the retry, the outcome
on the job resource and in /metrics, and the SSRF guard (allow list, link-local and metadata
addresses, no redirects, the checked address pinned)."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from _service_support import make_client, ntk_depth2_unit, relu_model, unit_rows, wait_for_job
from _webhook_support import SECRET, WEBHOOK_SETTINGS, Receiver, metric, wait_for_callback
from eoc_ntk.client import Client
from eoc_ntk.webhooks import SIGNATURE_HEADER, WebhookSignatureError, signature_header, verify
from jobs.settings import JobSettings
from jobs.webhook_guard import CallbackRefused, Target, check_callback
from jobs.webhook_http import post


@pytest.fixture(scope="module")
def client():
    with make_client(**WEBHOOK_SETTINGS) as c:
        yield c


def _spectra(u, depth: int, url: str) -> dict:
    return {"x": u.tolist(), "model": relu_model(depth), "callback_url": url}


def test_a_failed_first_delivery_is_retried_and_signed(client):
    u = unit_rows(8, 3, seed=41)
    with Receiver({"/hook": [500, 200]}) as rx:
        r = client.post("/v1/spectra", json={**_spectra(u, 2, rx.url("/hook")),
                                             "model": {"depth": 2, "activation": {"a": 0.5, "b": 0.5}}})
        assert r.status_code == 202, r.text  # a job although no Prefer: respond-async
        assert r.headers["Location"] == f"/v1/jobs/{r.json()['job_id']}"
        first, second = rx.wait("/hook", 2)
        job = wait_for_callback(client, r.json()["job_id"], 2)
    for d in (first, second):
        assert d.headers["Content-Type"] == "application/json"
        assert verify(d.body, d.headers[SIGNATURE_HEADER], SECRET) is True
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify(second.body, second.headers[SIGNATURE_HEADER], "another secret")
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify(second.body.replace(b"finished", b"finishex"), second.headers[SIGNATURE_HEADER], SECRET)
    delivered = json.loads(second.body)
    assert delivered["status"] == "finished" and delivered["job_id"] == r.json()["job_id"]
    np.testing.assert_allclose(delivered["result"]["eigenvalues"], np.linalg.eigvalsh(ntk_depth2_unit(u) / 8),
                               rtol=1e-10)
    assert json.loads(first.body)["callback"] == {"url": rx.url("/hook"), "attempts": 1, "last_status": None,
                                                  "delivered_at": None, "last_error": None}
    assert delivered["callback"]["attempts"] == 2 and delivered["callback"]["last_status"] == 500
    record = job["callback"]
    assert record["attempts"] == 2 and record["last_status"] == 200 and record["delivered_at"].endswith("Z")
    text = client.get("/metrics").text
    assert metric(text, "eoc_ntk_webhook_deliveries_total", outcome="delivered") >= 1
    assert metric(text, "eoc_ntk_webhook_deliveries_total", outcome="retry") >= 1


def test_a_canceled_job_is_delivered_as_canceled(client):
    x = np.random.default_rng(5).normal(size=(1500, 4))  # seconds of work: canceled long before its end
    with Receiver({"/canceled": [200]}) as rx:
        r = client.post("/v1/spectra", json={"x": x.tolist(), "model": relu_model(50),
                                             "callback_url": rx.url("/canceled")})
        assert r.status_code == 202, r.text
        assert client.delete(f"/v1/jobs/{r.json()['job_id']}").status_code == 200
        (delivery,) = rx.wait("/canceled", 1)
        time.sleep(0.2)
        assert len(rx.at("/canceled")) == 1  # once per final state
    verify(delivery.body, delivery.headers[SIGNATURE_HEADER], SECRET)
    body = json.loads(delivery.body)
    assert body["status"] == "canceled" and body["error"]["code"] == "canceled"


def test_the_client_submits_with_a_callback_and_returns_the_job_at_once(client):
    u = unit_rows(7, 2, seed=45)
    with Receiver({"/client": [200]}) as rx:
        job = Client(http=client).sweep(u, depths=[1, 3], activations="relu,abs", callback_url=rx.url("/client"))
        assert job["job_id"].startswith("sweeps-") and job["status"] in ("queued", "running", "finished")
        (delivery,) = rx.wait("/client", 1)
    verify(delivery.body, delivery.headers[SIGNATURE_HEADER], SECRET)
    body = json.loads(delivery.body)
    assert body["job_id"] == job["job_id"] and body["status"] == "finished"
    assert body["result"]["depths"] == [1, 3]


def test_each_api_key_gets_its_own_webhook_of_a_shared_job():
    u = unit_rows(9, 2, seed=46)
    body = {"x": u.tolist(), "model": relu_model(5)}
    with make_client(**WEBHOOK_SETTINGS, api_keys="key-a,key-b") as keyed, Receiver({"/a": [200], "/b": [200]}) as rx:
        jobs = {}
        for key in ("a", "b"):
            r = keyed.post("/v1/spectra", json={**body, "callback_url": rx.url(f"/{key}")},
                           headers={"X-API-Key": f"key-{key}"})
            assert r.status_code == 202, r.text
            jobs[key] = r.json()["job_id"]
        assert jobs["a"] == jobs["b"]  # one computation (single flight), two callers
        (to_a,), (to_b,) = rx.wait("/a", 1), rx.wait("/b", 1)
        time.sleep(0.3)
        assert len(rx.deliveries) == 2
        seen = {key: wait_for_callback(keyed, jobs[key], 1, headers={"X-API-Key": f"key-{key}"})["callback"]
                for key in ("a", "b")}
    assert json.loads(to_a.body)["callback"]["url"] == rx.url("/a")  # never the other key's URL
    assert json.loads(to_b.body)["callback"]["url"] == rx.url("/b")
    assert seen["a"]["url"] == rx.url("/a") and seen["b"]["url"] == rx.url("/b")


def test_redirects_are_not_followed(client):
    u = unit_rows(7, 3, seed=43)
    with Receiver({"/moved": [302]}) as rx:
        r = client.post("/v1/spectra", json=_spectra(u, 3, rx.url("/moved")))
        assert r.status_code == 202, r.text
        rx.wait("/moved", WEBHOOK_SETTINGS["webhook_attempts"])
        job = wait_for_callback(client, r.json()["job_id"], WEBHOOK_SETTINGS["webhook_attempts"])
        assert rx.at("/target") == []
    assert job["callback"]["last_status"] == 302 and job["callback"]["delivered_at"] is None
    assert metric(client.get("/metrics").text, "eoc_ntk_webhook_deliveries_total", outcome="failed") >= 1


def test_a_cached_answer_asked_with_a_callback_is_delivered_at_once(client):
    u = unit_rows(6, 3, seed=44)
    body = {"x": u.tolist(), "model": relu_model(2)}
    assert client.post("/v1/spectra", json=body).status_code == 200
    with Receiver({"/hit": [200]}) as rx:
        r = client.post("/v1/spectra", json={**body, "callback_url": rx.url("/hit")})
        assert r.status_code == 202 and r.json()["status"] == "finished"
        (delivery,) = rx.wait("/hit", 1)
    assert json.loads(delivery.body)["result"]["eigenvalues"] == r.json()["result"]["eigenvalues"]
    assert wait_for_job(client, r.json()["job_id"])["status"] == "finished"


def test_callback_url_is_refused_without_an_allow_list():
    with make_client() as plain:
        r = plain.post("/v1/spectra", json=_spectra(unit_rows(5, 2), 2, "http://127.0.0.1:9/hook"))
    assert r.status_code == 422 and r.json()["error"]["field"] == "callback_url"
    assert "EOC_NTK_WEBHOOK_ALLOW" in r.json()["error"]["message"]


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "http://169.254.10.1:8080/", "http://[fe80::1]/hook",
    "http://[fd00:ec2::254]/", "http://metadata.google.internal/computeMetadata/v1/",
    "http://[::ffff:169.254.169.254]/", "ftp://127.0.0.1/hook", "http://user:pw@127.0.0.1/hook", "http:///nohost",
    "http://127.0.0.1/a b", "http://127.0.0.1/a\r\nX-Injected: 1", "http://127.0.0.1:99999/",
])
def test_link_local_metadata_and_odd_urls_are_refused_even_by_a_wildcard(url):
    settings = JobSettings(webhook_allow="*,0.0.0.0/0,::/0", webhook_secret=SECRET)
    with pytest.raises(CallbackRefused):
        check_callback(url, settings)


def test_the_refusal_names_callback_url(client):
    r = client.post("/v1/sweeps", json={"x": unit_rows(5, 2).tolist(), "depths": [1, 2],
                                        "activations": [{"name": "relu"}], "callback_url": "http://10.1.2.3/hook"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "callback_url"
    assert "not in EOC_NTK_WEBHOOK_ALLOW" in r.json()["error"]["message"]


def test_cidrs_are_checked_on_the_resolved_address_and_the_delivery_connects_to_it():
    settings = JobSettings(webhook_allow="127.0.0.1/32", webhook_secret=SECRET)
    target = check_callback("http://localhost:8/x?y=1", settings)
    assert (target.address, target.port, target.path) == ("127.0.0.1", 8, "/x?y=1")
    with pytest.raises(CallbackRefused, match="not allowed"):
        check_callback("http://localhost/x", JobSettings(webhook_allow="10.0.0.0/8", webhook_secret=SECRET))
    # A name that no longer resolves (or resolves elsewhere) is never looked up again: the
    # connection goes to the address the guard checked, the name only into Host.
    with Receiver({"/pinned": [204]}) as rx:
        pinned = Target("http://rebound.invalid/pinned", "http", "rebound.invalid", rx.port, "/pinned", "127.0.0.1")
        assert post(pinned, b"{}", {}, 2.0) == 204
        (delivery,) = rx.at("/pinned")
    assert delivery.headers["Host"] == f"rebound.invalid:{rx.port}"
    # https: TLS to the checked address, verified against the name (a plain-HTTP peer fails the handshake).
    with Receiver({"/tls": [204]}) as rx:
        with pytest.raises(OSError):
            post(Target("https://localhost/tls", "https", "localhost", rx.port, "/tls", "127.0.0.1"), b"{}", {}, 2.0)


def test_verify_rejects_replays_and_malformed_headers():
    body = b'{"job_id": "spectra-0"}'
    header = signature_header(body, SECRET, timestamp=1_000_000)
    assert verify(body, header, SECRET, now=1_000_100)
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        verify(body, header, SECRET, now=1_000_301)
    for bad in (None, "", "v1=abc", "t=notanumber,v1=abc"):
        with pytest.raises(WebhookSignatureError):
            verify(body, bad, SECRET, now=1_000_000)

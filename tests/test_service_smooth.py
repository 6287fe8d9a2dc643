"""Smooth activations (erf, tanh, gelu, silu) through the API, the jobs' specs, the client and the CLI.

Values are checked against the erf arcsine closed forms at depth 2 (an independent formula);
the other checks are about the grammar, the refusals and the cache keys.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import eoc_ntk
from eoc_ntk.cli import main
from eoc_ntk.client import Client
from eoc_ntk.sklearn_kernel import NTKKernel, NTKRegressor
from jobs.specs import cache_key, kernels_spec, sweeps_spec

SW, SB = 1.3, 0.2


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(11).normal(size=(5, 3)) * 0.7


def _erf_depth2(x, sw=SW, sb=SB):
    """NNGP and NTK of a 2-layer erf network, by the arcsine closed forms (Williams 1997)."""
    m0 = x.shape[1]
    s1 = sw * sw * (x @ x.T) / m0 + sb * sb
    q = np.diag(s1)
    p = np.sqrt(np.outer(1 + 2 * q, 1 + 2 * q))
    s2 = sw * sw * (2 / math.pi) * np.arcsin(np.clip(2 * s1 / p, -1, 1)) + sb * sb
    dot = sw * sw * (4 / math.pi) / np.sqrt(p * p - 4 * s1 * s1)
    return s2, s2 + dot * s1


@pytest.mark.parametrize("activation", ["erf", "ERF", {"name": "erf"}])
def test_kernels_of_erf_match_the_closed_form(client, x, activation):
    body = {"x": x.tolist(), "kinds": ["nngp", "ntk"],
            "model": {"depth": 2, "activation": activation, "sigma_w": SW, "sigma_b": SB}}
    r = client.post("/v1/kernels", json=body)
    assert r.status_code == 200, r.text
    nngp, ntk = _erf_depth2(x)
    np.testing.assert_allclose(np.array(r.json()["nngp"]), nngp, rtol=1e-12)
    np.testing.assert_allclose(np.array(r.json()["ntk"]), ntk, rtol=1e-12)


def test_every_smooth_name_is_accepted_at_its_edge_of_chaos(client, x):
    for name in ("tanh", "GELU", "silu", "Swish", "erf"):
        r = client.post("/v1/spectra", json={"x": x.tolist(), "model": {"depth": 3, "activation": name,
                                                                          "sigma_b": 0.1}})
        assert r.status_code == 200, (name, r.text)
        model = r.json()["model"]
        assert model["activation"] == name.lower().replace("swish", "silu")
        assert model["chi"] == 1.0 and model["q_star"] > 0
        assert r.json()["icd"] is None


def test_sweep_of_family_and_smooth_activations(client, x):
    r = client.post("/v1/sweeps", json={"x": x.tolist(), "depths": "1:3", "activations": ["relu", "tanh", "gelu"],
                                        "sigma_b": 0.1})
    assert r.status_code == 200, r.text
    labels = [res["activation"]["display_label"] for res in r.json()["results"]]
    assert labels[1:] == ["tanh", "gelu"] and labels[0].startswith("ReLU")
    assert all(len(res["condition_number"]) == 3 for res in r.json()["results"])
    relu, tanh, gelu = r.json()["results"]
    assert tanh["limit_note"] is None and tanh["activation"]["variance_slope"] < 1  # q* attracts
    assert gelu["limit_condition_number"] is None and gelu["activation"]["variance_slope"] > 1
    assert "repels" in gelu["limit_note"] and "sigma_b = 0.5" in gelu["limit_note"]
    assert relu["limit_condition_number"] is None and "sigma_b = 0" in relu["limit_note"]


@pytest.mark.parametrize("model, field, words", [
    ({"depth": 3, "activation": "tanh", "sigma_b": 0.1}, "kinds", "tanh"),
])
def test_icd_kernel_of_a_smooth_activation_is_refused_by_name(client, x, model, field, words):
    r = client.post("/v1/kernels", json={"x": x.tolist(), "model": model, "kinds": ["icd"]})
    assert r.status_code == 422, r.text
    assert words in r.text


@pytest.mark.parametrize("activation, where", [
    ({"name": "tanh", "slope": 0.1}, "activation"), ("tanh:0.1", "activation"), ("sigmoid", "activation"),
])
def test_bad_smooth_spellings_are_422(client, x, activation, where):
    r = client.post("/v1/spectra", json={"x": x.tolist(), "model": {"depth": 2, "activation": activation,
                                                                      "sigma_b": 0.1}})
    assert r.status_code == 422, r.text
    assert where in r.text


def test_a_degenerate_edge_of_chaos_is_422_naming_sigma_b(client, x):
    r = client.post("/v1/spectra", json={"x": x.tolist(), "model": {"depth": 2, "activation": "tanh"}})
    assert r.status_code == 422, r.text
    assert "sigma_b" in r.text


def test_cache_keys_carry_the_canonical_activation():
    tanh = eoc_ntk.Model(3, activation="tanh", sigma_b=0.1)
    spec = kernels_spec("d" * 32, None, tanh, ["ntk"])
    assert spec["model"]["activation"] == "tanh"
    keys = {cache_key(kernels_spec("d" * 32, None, eoc_ntk.Model(3, activation=name, sigma_b=0.1), ["ntk"]))
            for name in ("tanh", "TANH", "erf", "gelu", "silu", "swish")}
    assert len(keys) == 4      # tanh = TANH, silu = swish
    sweep = sweeps_spec("d" * 32, [1, 2], [tanh, eoc_ntk.Model(3, 0.5, 0.5)])
    assert sweep["activations"][0]["activation"] == "tanh" and "a" in sweep["activations"][1]


def test_client_passes_smooth_names(client, x):
    x = x * 1.1  # data of its own: the listing below counts this test's results only
    assert Client._model(2, "Swish", None, 0.1) == {"depth": 2, "activation": {"name": "silu"}, "sigma_b": 0.1}
    api = Client("http://testserver", http=client)
    got = api.kernel(x, depth=2, activation="erf", sigma_w=SW, sigma_b=SB, kind="ntk")
    np.testing.assert_allclose(got, _erf_depth2(x)[1], rtol=1e-12)
    computed = api.spectrum(x, depth=2, activation="erf", sigma_w=SW, sigma_b=SB)
    ds = api.upload(x)
    cached = api.cached_spectrum(ds, depth=2, activation="ERF", sigma_w=SW, sigma_b=SB)
    np.testing.assert_array_equal(cached["eigenvalues"], computed["eigenvalues"])
    assert len(list(api.results(ds, kind="spectra", activation="erf"))) == 1
    assert not list(api.results(ds, activation="tanh"))


def test_sklearn_adapter_passes_smooth_names(x):
    k = NTKKernel(depth=2, activation="erf", sigma_w=SW, sigma_b=SB)
    np.testing.assert_allclose(k(x), _erf_depth2(x)[1], rtol=1e-12)
    y = np.sin(x[:, 0])
    reg = NTKRegressor(depth=2, activation="erf", sigma_w=SW, sigma_b=SB).fit(x, y)
    np.testing.assert_allclose(reg.predict(x), y, atol=1e-8)  # ridge 0 interpolates
    assert reg.get_params()["sigma_b"] == SB
    assert NTKRegressor(depth=3, activation="tanh", sigma_b=0.1).fit(x, y).predict(x[:2]).shape == (2,)


def test_page_offers_the_smooth_activations(client):
    page = client.get("/").text
    for name in ("erf", "tanh", "gelu", "silu"):
        assert f'id="act-{name}" value="{name}"' in page


def test_cli_sweep_prints_a_table_and_writes_the_plot(tmp_path, capsys, x):
    np.savetxt(tmp_path / "data.csv", x, delimiter=",")
    out = tmp_path / "out.pdf"
    assert main(["sweep", str(tmp_path / "data.csv"), "--activations", "relu,tanh,gelu", "--sigma-b", "0.1",
                 "--depths", "1:4", "--plot", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].split() == ["depth", "relu", "tanh", "gelu"]
    assert [line.split()[0] for line in lines[1:6]] == ["1", "2", "3", "4", "limit"]
    assert "tanh: sigma_w = " in text and "gelu: sigma_w = " in text and "(edge of chaos)" in text
    assert out.stat().st_size > 1000


def test_cli_spectrum_of_erf_matches_the_closed_form(tmp_path, capsys, x):
    np.save(tmp_path / "x.npy", x)
    assert main(["spectrum", str(tmp_path / "x.npy"), "--depth", "2", "--activation", "erf", "--sigma-w", str(SW),
                 "--sigma-b", str(SB), "--json", "--quiet"]) == 0
    got = np.array(json.loads(capsys.readouterr().out)["eigenvalues"], dtype=float)
    want = np.linalg.eigvalsh(_erf_depth2(x)[1] / x.shape[0])
    np.testing.assert_allclose(np.sort(got), np.sort(want), rtol=1e-10)

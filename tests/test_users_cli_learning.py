"""``eoc-ntk dynamics`` and ``eoc-ntk learning-curve`` at every input scale, locally and with --server
(docs/learning.md §2). References: gradient descent iterated by hand on the unscaled kernel
(``eoc_ntk.kernel`` of the data at scale 1, whose own tests check it against closed forms) and
scikit-learn's KernelRidge on it."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import eoc_ntk
from _users_support import small_data
from eoc_ntk.cli import main

SCALE = 1e-300


def _run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def data():
    x = small_data(n=12, m0=6, seed=4)
    x /= np.max(np.abs(x))
    return x, np.sign(x[:, 0] + 0.2)


def _files(tmp_path, x, y):
    np.save(tmp_path / "x.npy", x * SCALE)
    np.save(tmp_path / "y.npy", y)
    return [str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--depth", "3"]


def test_dynamics_at_1e_300_gives_the_unscaled_loss_and_states_the_rate_scale(tmp_path, capsys, data):
    x, y = data
    k = eoc_ntk.kernel(x, depth=3, a=0.5, b=0.5)
    lam_max = np.linalg.eigvalsh(k / 12)[-1]
    r, expected = -y, []
    for t in range(11):
        if t in (0, 1, 10):
            expected.append(float(r @ r) / 24)
        r = r - (k / 12) @ r / lam_max
    args = _files(tmp_path, x, y) + ["--steps", "0,1,10"]
    result = _run_json(capsys, ["dynamics", *args, "--json"])
    np.testing.assert_allclose(result["train_loss"], expected, rtol=1e-9)
    assert result["max_learning_rate"] is None
    log2_rate = math.log2(result["scaled"]["max_learning_rate"]) - result["scaled"]["exponent"]
    assert log2_rate == pytest.approx(math.log2(2 / lam_max) - 2 * math.log2(SCALE), rel=1e-12)
    assert main(["dynamics", *args]) == 0
    out = capsys.readouterr().out
    assert "largest rate at which the linearised, infinite-width model converges" in out
    assert f"x 2^{-result['scaled']['exponent']} (outside float64)" in out


def test_learning_curve_at_1e_300_measures_what_the_unscaled_kernel_does(tmp_path, capsys, data):
    pytest.importorskip("sklearn")
    from sklearn.kernel_ridge import KernelRidge

    x, y = data
    k = eoc_ntk.kernel(x, depth=3, a=0.5, b=0.5)
    args = _files(tmp_path, x, y) + ["--sizes", "4,8", "--splits", "3", "--seed", "5", "--json"]
    local = _run_json(capsys, ["learning-curve", *args])
    rng = np.random.default_rng(5)
    for i, m in enumerate((4, 8)):
        errors = []
        for _ in range(3):
            order = rng.permutation(12)
            train, test = order[:m], order[m:]
            fit = KernelRidge(kernel="precomputed", alpha=1e-13).fit(k[np.ix_(train, train)], y[train])
            errors.append(np.mean((fit.predict(k[np.ix_(test, train)]) - y[test]) ** 2))
        assert local["measured_test_mse"][i] == pytest.approx(np.mean(errors), rel=1e-6)
    assert "standard deviation" in local["error_bars"] and "without replacement" in local["estimate"]


@pytest.mark.slow
def test_server_mode_gives_the_local_answers_at_1e_300(tmp_path, capsys, data, live_server):
    """The same commands through a running service (its start costs seconds on a busy machine)."""
    x, y = data
    for command, extra in (("learning-curve", ["--sizes", "4,8", "--splits", "3"]), ("dynamics", ["--steps", "0,5"])):
        args = [command, *_files(tmp_path, x, y), *extra, "--json"]
        local = _run_json(capsys, args)
        remote = _run_json(capsys, [*args, "--server", live_server.url])
        for key in ("measured_test_mse", "predicted_test_mse", "train_loss", "scaled"):
            if key in local:
                assert remote[key] == local[key], key

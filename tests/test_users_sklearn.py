"""scikit-learn interop: the NTK as a precomputed kernel (KernelRidge) and as a callable kernel (SVC).

The kernel-ridge predictions are checked against a solve written with numpy from the
independent recursion; the SVC against the same SVC fitted on the reference Gram matrix.
"""
from __future__ import annotations

import numpy as np
import pytest

from _users_support import eoc_angle_ntk

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: E402
from sklearn.gaussian_process.kernels import WhiteKernel  # noqa: E402
from sklearn.kernel_ridge import KernelRidge  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.svm import SVC  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

import eoc_ntk  # noqa: E402
from eoc_ntk.sklearn_kernel import NTKKernel, NTKRegressor  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return d.data[:360], d.target[:360]


def test_kernel_ridge_with_the_precomputed_ntk(digits):
    x, y = digits
    xtr, ytr, xte = x[:300], np.eye(10)[y[:300]], x[300:]
    ntk = NTKKernel(depth=4, activation="relu")
    model = KernelRidge(kernel="precomputed", alpha=1e-2).fit(ntk(xtr), ytr)
    pred = model.predict(ntk(xte, xtr))
    k_train, _ = eoc_angle_ntk(xtr, 4)
    k_test, _ = eoc_angle_ntk(xte, 4, x2=xtr)
    ref = k_test @ np.linalg.solve(k_train + 1e-2 * np.eye(len(xtr)), ytr)
    np.testing.assert_allclose(pred, ref, rtol=1e-6, atol=1e-8)
    assert (pred.argmax(1) == y[300:]).mean() > 0.9


def test_svc_with_the_ntk_as_a_callable_kernel(digits):
    x, y = digits
    clf = SVC(kernel=NTKKernel(depth=3, activation="abs"), C=10).fit(x[:300], y[:300])
    ref = SVC(kernel="precomputed", C=10).fit(eoc_angle_ntk(x[:300], 3, 0.0, 1.0)[0], y[:300])
    k_test, _ = eoc_angle_ntk(x[300:], 3, 0.0, 1.0, x2=x[:300])
    np.testing.assert_array_equal(clf.predict(x[300:]), ref.predict(k_test))
    assert clf.score(x[300:], y[300:]) > 0.9


def test_the_kernel_object_follows_sklearn_conventions(digits):
    x, y = digits
    est = clone(SVC(kernel=NTKKernel(depth=2)))
    assert est.kernel.get_params() == {"depth": 2, "activation": "relu", "kind": "ntk", "sigma_w": None, "sigma_b": 0.0}
    search = GridSearchCV(SVC(kernel=NTKKernel()), {"kernel__depth": [2, 5]}, cv=2).fit(x[:120], y[:120])
    assert search.best_params_["kernel__depth"] in (2, 5)
    with pytest.raises(ValueError, match="no parameter"):
        NTKKernel().set_params(width=3)


def _regression_data(n=40, n_test=9, seed=3):
    rng = np.random.default_rng(seed)
    x, xt = rng.standard_normal((n, 4)), rng.standard_normal((n_test, 4))
    return x, np.sin(x[:, 0]) + x[:, 1] * x[:, 2], xt


def test_gaussian_process_regressor_with_the_ntk_kernel():
    """Posterior mean ``K* (K + alpha I)^-1 y`` and variance ``diag(K**) - diag(K* (K + alpha I)^-1 K*^T)``."""
    x, y, xt = _regression_data()
    gp = GaussianProcessRegressor(kernel=NTKKernel(depth=3, activation="relu"), alpha=1e-4).fit(x, y)
    mean, std = gp.predict(xt, return_std=True)
    k, _ = eoc_angle_ntk(x, 3)
    k_test, _ = eoc_angle_ntk(xt, 3, x2=x)
    k_tt, _ = eoc_angle_ntk(xt, 3)
    reg = k + 1e-4 * np.eye(len(x))
    np.testing.assert_allclose(mean, k_test @ np.linalg.solve(reg, y), rtol=1e-6, atol=1e-8)
    var = np.diag(k_tt) - np.einsum("ij,ji->i", k_test, np.linalg.solve(reg, k_test.T))
    np.testing.assert_allclose(std, np.sqrt(np.maximum(var, 0.0)), rtol=1e-5, atol=1e-6)
    assert gp.kernel_.n_dims == 0 and not gp.kernel_.is_stationary()
    np.testing.assert_allclose(NTKKernel(depth=3).diag(xt), np.diag(k_tt), rtol=1e-13)
    value, grad = NTKKernel(depth=3)(x, eval_gradient=True)
    assert grad.shape == (len(x), len(x), 0) and np.allclose(value, k, rtol=1e-12)


def test_gaussian_process_fits_the_noise_of_ntk_plus_white_kernel():
    x, y, _ = _regression_data(60)
    noisy = y + 0.3 * np.random.default_rng(0).standard_normal(len(y))
    gp = GaussianProcessRegressor(kernel=NTKKernel(depth=2) + WhiteKernel(1.0), random_state=0).fit(x, noisy)
    assert 0.01 < gp.kernel_.k2.noise_level < 0.5      # the noise variance 0.09 is found within a factor ~5


@pytest.mark.parametrize("ridge", [0.0, 1e-3])
def test_ntk_regressor_equals_predict_and_kernel_ridge(ridge):
    x, y, xt = _regression_data()
    pred = NTKRegressor(depth=4, activation="abs", ridge=ridge).fit(x, y).predict(xt)
    np.testing.assert_array_equal(pred, eoc_ntk.predict(x, y, xt, depth=4, a=0.0, b=1.0, ridge=ridge))
    k, _ = eoc_angle_ntk(x, 4, 0.0, 1.0)
    k_test, _ = eoc_angle_ntk(xt, 4, 0.0, 1.0, x2=x)
    if ridge:
        ref = KernelRidge(kernel="precomputed", alpha=len(x) * ridge).fit(k, y).predict(k_test)
    else:
        ref = k_test @ np.linalg.solve(k, y)
    np.testing.assert_allclose(pred, ref, rtol=1e-6, atol=1e-8)


def test_ntk_regressor_in_a_grid_search():
    x, y, _ = _regression_data(60)
    search = GridSearchCV(NTKRegressor(ridge=1e-3), {"depth": [2, 6], "activation": ["relu", "abs"]}, cv=3).fit(x, y)
    assert search.best_params_["depth"] in (2, 6) and search.best_score_ > 0.0


@pytest.mark.slow
def test_ntk_regressor_passes_check_estimator():
    results = check_estimator(NTKRegressor(), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])) for r in results if r["status"] == "failed"]
    assert not failed and sum(r["status"] == "passed" for r in results) > 40

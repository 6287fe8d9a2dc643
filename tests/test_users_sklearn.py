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
from sklearn.kernel_ridge import KernelRidge  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

from eoc_ntk.sklearn_kernel import NTKKernel  # noqa: E402


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

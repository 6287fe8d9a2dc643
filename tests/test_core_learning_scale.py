"""The label-aware functions at every input scale and any chi^(l-1) (docs/learning.md §2).

At sigma_b = 0 the NTK of ``c x`` is ``c^2 K(x)`` and, off the edge of chaos, ``chi^(l-1)`` times
the EOC kernel: alignment, ``predict`` at ridge 0, the loss at a fraction of the largest rate and
the learning curve do not change, so the reference of each call is the same call on ``x`` at the
edge of chaos (never the code's own scaled path). A value that leaves float64
(``max_learning_rate`` of inputs at 1e-300) is refused by name and comes with its power of two.
pytest turns RuntimeWarning into errors (pyproject.toml), so no overflow or 0/0 passes silently.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import eoc_ntk
from eoc_ntk.core.errors import InvalidParameterError

HYPER = dict(depth=5, a=0.5, b=0.5)
SCALES = [1e-300, 1e-200, 1e-160, 1e-155, 1e-100, 1e80, 1e149]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 5))
    return x / np.max(np.abs(x)), rng.standard_normal(8), rng.standard_normal((8, 3))


@pytest.mark.parametrize("scale", SCALES)
def test_alignment_is_scale_free(data, scale):
    x, y, y3 = data
    assert eoc_ntk.alignment(x * scale, y, **HYPER) == pytest.approx(eoc_ntk.alignment(x, y, **HYPER), rel=1e-10)
    assert eoc_ntk.alignment(x * scale, y3, **HYPER) == pytest.approx(eoc_ntk.alignment(x, y3, **HYPER), rel=1e-10)


@pytest.mark.parametrize("scale", SCALES)
def test_predict_at_ridge_zero_is_scale_free(data, scale):
    x, y, y3 = data
    for labels in (y, y3):
        got = eoc_ntk.predict(x * scale, labels, (x[:3] + 0.1) * scale, **HYPER)
        np.testing.assert_allclose(got, eoc_ntk.predict(x, labels, x[:3] + 0.1, **HYPER), rtol=1e-10)


def test_predict_off_the_edge_of_chaos_equals_the_edge_of_chaos_answer(data):
    """chi = 0.5 at depth 1100: chi^(l-1) = 2^-1099 is below float64, the predictions are not."""
    x, y, _ = data
    got = eoc_ntk.predict(x, y, x[:3] + 0.1, depth=1100, a=0.5, b=0.5, sigma_w=1.0)
    np.testing.assert_allclose(got, eoc_ntk.predict(x, y, x[:3] + 0.1, depth=1100, a=0.5, b=0.5), rtol=1e-10)
    assert eoc_ntk.alignment(x, y, depth=1100, a=0.5, b=0.5, sigma_w=1.0) == pytest.approx(
        eoc_ntk.alignment(x, y, depth=1100, a=0.5, b=0.5), rel=1e-10)


def test_predict_with_a_ridge_scales_as_the_kernel_and_refuses_what_float64_cannot_hold(data):
    """``(c^2 K + n c^2 r I)^-1 c^2 K_t`` is ``(K + n r I)^-1 K_t``; scikit-learn's KernelRidge on the
    unscaled kernel is the reference."""
    from sklearn.kernel_ridge import KernelRidge

    x, y, _ = data
    k = eoc_ntk.kernel(x, **HYPER)
    k_test = eoc_ntk.kernel(x[:3] + 0.1, x, **HYPER)
    expected = KernelRidge(kernel="precomputed", alpha=8 * 1e-3).fit(k, y).predict(k_test)
    c = 1e-140
    got = eoc_ntk.predict(x * c, y, (x[:3] + 0.1) * c, ridge=1e-3 * c * c, **HYPER)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    # At 1e-200 the kernel is about 1e-400: a ridge of 1e-3 leaves predictions near 1e-400.
    with pytest.raises(InvalidParameterError) as info:
        eoc_ntk.predict(x * 1e-200, y, x[:3] * 1e-200, ridge=1e-3, **HYPER)
    assert info.value.param == "ridge"


@pytest.mark.parametrize("scale", SCALES)
def test_train_loss_at_the_default_rate_is_scale_free(data, scale):
    x, _, y3 = data
    steps = [0, 1, 10, 100]
    reference = eoc_ntk.dynamics(x, y3, steps=steps, init="nngp", **HYPER)
    got = eoc_ntk.dynamics(x * scale, y3, steps=steps, **HYPER)
    np.testing.assert_allclose(got.train_loss, reference.train_loss, rtol=1e-10)
    np.testing.assert_allclose(got.fit_steps, reference.fit_steps, rtol=1e-10)
    assert got.steps_to(100) == reference.steps_to(100)
    # The largest rate of c x is that of x over c^2: its power of two is carried apart.
    log2_rate = math.log2(got.max_learning_rate_scaled) - got.scale_exponent
    assert log2_rate == pytest.approx(math.log2(reference.max_learning_rate) - 2 * math.log2(scale), rel=1e-12)
    encoded = got.to_dict()
    json.dumps(encoded, allow_nan=False)
    if got.scale_exponent:
        assert encoded["max_learning_rate"] is None and encoded["scaled"]["exponent"] == got.scale_exponent
    else:
        assert got.max_learning_rate == pytest.approx(reference.max_learning_rate / scale ** 2, rel=1e-10)


def test_max_learning_rate_outside_float64_is_refused_by_name(data):
    x, y, _ = data
    dyn = eoc_ntk.dynamics(x * 1e-300, y, steps=[0, 10], **HYPER)
    for name in ("max_learning_rate", "learning_rate", "eigenvalues"):
        with pytest.raises(InvalidParameterError) as info:
            getattr(dyn, name)
        assert info.value.param == name and "2^" in str(info.value)
    encoded = dyn.to_dict()
    assert encoded["max_learning_rate"] is None and encoded["learning_rate"] is None
    assert set(encoded["eigenvalues"]) == {None}
    reference = eoc_ntk.dynamics(x, y, steps=[0, 10], **HYPER)
    scaled = np.array(encoded["scaled"]["eigenvalues"])
    np.testing.assert_allclose(scaled / scaled[0], reference.eigenvalues / reference.eigenvalues[0], rtol=1e-9,
                               atol=1e-14)
    assert math.log2(scaled[0]) + encoded["scaled"]["exponent"] == pytest.approx(
        math.log2(reference.eigenvalues[0]) - 600 * math.log2(10), rel=1e-12)


def test_an_explicit_rate_is_in_the_unit_of_the_kernel_at_every_scale(data):
    """``eta`` on ``c x`` acts as ``eta c^2`` on ``x``; the iterated residual is the reference."""
    x, y, _ = data
    c, eta = 1e-100, 0.3
    got = eoc_ntk.dynamics(x * c, y, learning_rate=eta / c ** 2, steps=[0, 3, 30], **HYPER)
    k = eoc_ntk.kernel(x, **HYPER)
    r, losses = -y, []
    for t in range(31):
        if t in (0, 3, 30):
            losses.append(float(r @ r) / 16)
        r = r - eta * k @ r / 8
    np.testing.assert_allclose(got.train_loss, losses, rtol=1e-10)
    assert got.learning_rate == eta / c ** 2
    # A rate that is a vanishing fraction of the largest one leaves the loss where it starts.
    still = eoc_ntk.dynamics(x * 1e-300, y, learning_rate=1.0, steps=[0, 1000], **HYPER)
    assert still.train_loss[1] == still.train_loss[0] and still.learning_rate == 1.0


@pytest.mark.parametrize("scale", [1e-300, 1e-160, 1e80])
def test_learning_curve_is_scale_free(data, scale):
    x, y, _ = data
    got = eoc_ntk.learning_curve(x * scale, y, sizes=[3, 5], **HYPER)
    reference = eoc_ntk.learning_curve(x, y, sizes=[3, 5], **HYPER)
    np.testing.assert_allclose(got.predicted_test_mse, reference.predicted_test_mse, rtol=1e-10)
    np.testing.assert_allclose(got.measured_test_mse, reference.measured_test_mse, rtol=1e-10)
    log2_kappa = np.log2(got.effective_ridge_scaled) + got.scale_exponent
    np.testing.assert_allclose(log2_kappa, np.log2(reference.effective_ridge) + 2 * math.log2(scale), rtol=1e-12)
    json.dumps(got.to_dict(), allow_nan=False)


def test_learning_curve_ridge_is_in_the_unit_of_the_kernel(data):
    """A ridge ``r c^2`` on ``c x`` is the ridge ``r`` on ``x``; a ridge that dwarfs the kernel learns nothing."""
    x, y, _ = data
    c = 1e-120
    got = eoc_ntk.learning_curve(x * c, y, sizes=[3, 5], ridge=1e-2 * c * c, **HYPER)
    reference = eoc_ntk.learning_curve(x, y, sizes=[3, 5], ridge=1e-2, **HYPER)
    np.testing.assert_allclose(got.predicted_test_mse, reference.predicted_test_mse, rtol=1e-10)
    np.testing.assert_allclose(got.measured_test_mse, reference.measured_test_mse, rtol=1e-10)
    tiny = eoc_ntk.learning_curve(x * 1e-300, y, sizes=[3, 5], ridge=1e-3, splits=3, **HYPER)
    rng = np.random.default_rng(0)
    for i, m in enumerate((3, 5)):  # zero predictions: the held-out mean of y^2
        held_out = [np.mean(y[rng.permutation(8)[m:]] ** 2) for _ in range(3)]
        assert tiny.measured_test_mse[i] == pytest.approx(np.mean(held_out), rel=1e-9)
    assert tiny.to_dict()["effective_ridge"] == [None, None]


@pytest.mark.parametrize("scale", [1e-300, 1e-160, 1e149])
def test_depth_sweep_label_fit_is_scale_free(data, scale):
    x, _, y3 = data
    got = eoc_ntk.depth_sweep(x * scale, depths=[2, 5], y=y3, a=0.5, b=0.5)
    reference = eoc_ntk.depth_sweep(x, depths=[2, 5], y=y3, a=0.5, b=0.5)
    np.testing.assert_allclose(got.alignment, reference.alignment, rtol=1e-10)
    for top in (1, 10, 100):
        np.testing.assert_allclose(got.top_k_fraction[top], reference.top_k_fraction[top], rtol=1e-9)


def test_zero_inputs_are_still_refused_by_name(data):
    x, y, _ = data
    with pytest.raises(InvalidParameterError) as info:
        eoc_ntk.alignment(np.zeros_like(x), y, **HYPER)
    assert info.value.param == "x"
    with pytest.raises(InvalidParameterError) as info:
        eoc_ntk.dynamics(np.zeros_like(x), y, **HYPER)
    assert info.value.param == "x"

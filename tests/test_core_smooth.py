"""Smooth activations (erf, tanh, gelu, silu, custom): grammar, EOC, kernels against 50-digit references."""
from __future__ import annotations

import numpy as np
import pytest

import eoc_ntk
from _reference.mp_smooth_erf import MP, erf_eoc, erf_pair
from eoc_ntk.core.activations import Activation, SmoothActivation, parse_activation
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.model import Model
from eoc_ntk.core.smooth_kernels import smooth_kernels, smooth_kernels_by_depth


def _data():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(5, 3))
    x[1] = x[0] * (1 + 1e-9) + 1e-10     # a near duplicate
    x[2] = -x[0] * 0.5 + 1e-11           # near opposite, another norm
    return x


@pytest.mark.parametrize("name", ["erf", "Tanh", "GELU", "silu", "swish", "Swish"])
def test_smooth_names_parse(name):
    act = parse_activation(name)
    assert isinstance(act, SmoothActivation)
    assert act.key == {"swish": "silu"}.get(name.lower(), name.lower())
    with pytest.raises(InvalidParameterError) as err:
        _ = act.a
    assert err.value.param == "activation" and act.key in str(err.value)


def test_family_code_refuses_smooth_by_name():
    x = _data()
    with pytest.raises(InvalidParameterError) as err:
        eoc_ntk.icd_analysis(x, depth=3, activation="tanh")
    assert "tanh" in str(err.value)
    with pytest.raises(InvalidParameterError) as err:
        eoc_ntk.kernel(x, depth=3, activation="tanh", sigma_b=0.1, kind="icd")
    assert err.value.param == "kind"
    with pytest.raises(InvalidParameterError):
        _ = Model(3, activation="tanh", sigma_b=0.1).delta


@pytest.mark.parametrize("name", ["erf", "tanh"])
def test_degenerate_eoc_is_refused_with_a_suggestion(name):
    with pytest.raises(InvalidParameterError) as err:
        Model(5, activation=name)
    assert err.value.param == "sigma_b" and "sigma_b=0.1" in str(err.value)


def test_erf_eoc_solves_both_conditions_to_50_digits():
    m = Model(4, activation="erf", sigma_b=0.1)
    g = erf_eoc(0.1)
    q_ref = MP.findroot(g, MP.mpf(m.q_star))
    assert abs(m.q_star - q_ref) <= 1e-14 * q_ref
    sw2_ref = 1 / ((4 / MP.pi) / MP.sqrt(1 + 4 * q_ref))
    assert abs(m.sigma_w ** 2 - sw2_ref) <= 1e-14 * sw2_ref
    assert m.chi == 1.0 and m.is_eoc
    assert m.canonical() == {"depth": 4, "activation": "erf", "sigma_w": m.sigma_w, "sigma_b": 0.1}
    assert Model.from_activation(4, "erf", sigma_b=0.1) == m


def test_custom_activation_is_uncacheable_and_matches_builtin():
    from scipy.special import erf
    custom = Activation.custom(erf, lambda t: 2 / np.sqrt(np.pi) * np.exp(-t * t), name="my_erf")
    m = Model(3, activation=custom, sigma_w=1.2, sigma_b=0.3)
    assert not m.cacheable
    with pytest.raises(InvalidParameterError):
        m.canonical()
    x = _data()
    k_custom = eoc_ntk.kernel(x, depth=6, activation=custom, sigma_w=1.2, sigma_b=0.3)
    k_erf = eoc_ntk.kernel(x, depth=6, activation="erf", sigma_w=1.2, sigma_b=0.3)
    np.testing.assert_allclose(k_custom, k_erf, rtol=1e-13)


def _max_rel(x, model, depths, kind="ntk"):
    worst = {}
    got = dict(smooth_kernels_by_depth(x, None, model, depths, (kind,)))
    n = x.shape[0]
    for d in depths:
        err = 0.0
        for i in range(n):
            for j in range(i, n):
                ref = erf_pair(x[i], x[j], model.sigma_w, model.sigma_b, [d])[d][0 if kind == "ntk" else 1]
                err = max(err, float(abs((MP.mpf(got[d][kind][i, j]) - ref) / ref)))
        worst[d] = err
    return worst


def test_erf_kernel_matches_the_50_digit_reference():
    x = _data()
    model = Model(1, activation="erf", sigma_b=0.1)
    worst = _max_rel(x, model, [1, 2, 7, 30])
    assert max(worst.values()) <= 1e-12, worst
    off = Model(1, activation="erf", sigma_w=1.7, sigma_b=0.4)
    assert max(_max_rel(x, off, [3], "nngp").values()) <= 1e-12


@pytest.mark.slow
def test_erf_kernel_matches_the_reference_to_depth_1000():
    x = _data()
    worst = _max_rel(x, Model(1, activation="erf", sigma_b=0.1), [100, 1000])
    assert max(worst.values()) <= 1e-12, worst


@pytest.mark.slow
def test_tanh_quadrature_matches_mpmath_at_depth_two():
    """Depth 2: ``Theta_2 = Sigma_2 + sigma_w^2 E[tanh'(u) tanh'(v)] Sigma_1`` with the expectations by
    mpmath's 2-D quadrature (50 digits) over the Gaussian of the first layer (about 4 minutes)."""
    x = _data()[[0, 3]]
    m = Model(2, activation="tanh", sigma_b=0.1)
    k = eoc_ntk.kernel(x, depth=2, activation="tanh", sigma_b=0.1, kind="nngp")
    sw2, sb2 = MP.mpf(m.sigma_w) ** 2, MP.mpf(0.1) ** 2
    rows = [[MP.mpf(float(v)) for v in r] for r in x]
    cov = [[sw2 * MP.fsum(a * b for a, b in zip(r, s, strict=True)) / 3 + sb2 for s in rows] for r in rows]
    s1, s2 = MP.sqrt(cov[0][0]), MP.sqrt(cov[1][1])
    rho = cov[0][1] / (s1 * s2)
    perp = MP.sqrt(1 - rho * rho)
    dens = lambda z: MP.exp(-z * z / 2) / MP.sqrt(2 * MP.pi)  # noqa: E731
    inner = lambda z1: MP.quad(lambda z2: MP.tanh(s2 * (rho * z1 + perp * z2)) * dens(z2), [-MP.inf, 0, MP.inf])  # noqa: E731
    e = MP.quad(lambda z1: MP.tanh(s1 * z1) * dens(z1) * inner(z1), [-MP.inf, 0, MP.inf])
    ref = sw2 * e + sb2
    assert abs(k[0, 1] - ref) <= 1e-12 * abs(ref)


def test_learning_goes_through_the_shared_kernel():
    x = _data()
    y = np.sin(x[:, 0])
    res = eoc_ntk.alignment(x, y, depth=4, activation="erf", sigma_b=0.1)
    assert np.isfinite(res) and 0.0 < res <= 1.0


def test_torch_backend_refuses_smooth_by_name():
    with pytest.raises(InvalidParameterError) as err:
        eoc_ntk.kernel(_data(), depth=2, activation="tanh", sigma_b=0.1, backend="torch")
    assert err.value.param == "backend" and "tanh" in str(err.value)


def _unit_data(n=70, m0=6):
    """Rows of norm sqrt(m0) (one variance group, so the composed-map interpolants serve ``n^2 >= 4096``
    entries), with a near-duplicate and a near-opposite pair."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, m0))
    x[1] = x[0] + 1e-8 * rng.normal(size=m0)
    x[2] = -x[0] + 1e-8 * rng.normal(size=m0)
    return x * (np.sqrt(m0) / np.linalg.norm(x, axis=1, keepdims=True))


def _sampled_error(x, model, depth, pairs):
    got = eoc_ntk.kernel(x, depth=depth, activation="erf", sigma_w=model.sigma_w, sigma_b=model.sigma_b)
    scale = float(np.max(np.abs(got)))
    worst = 0.0
    for i, j in pairs:
        ref = erf_pair(x[i], x[j], model.sigma_w, model.sigma_b, [depth])[depth][0]
        worst = max(worst, float(abs(MP.mpf(got[i, j]) - ref) / max(abs(ref), MP.mpf(scale) * 1e-3)))
    return worst


_PAIRS = [(0, 1), (0, 2), (1, 2), (3, 4), (5, 60), (0, 0), (10, 11)]


def test_erf_interpolated_kernel_matches_the_reference():
    x = _unit_data()
    model = Model(1, activation="erf", sigma_b=0.1)
    for depth in (2, 10, 60):
        assert _sampled_error(x, model, depth, _PAIRS) <= 1e-12, depth


@pytest.mark.slow
def test_erf_interpolated_kernel_matches_the_reference_to_depth_1000():
    x = _unit_data()
    model = Model(1, activation="erf", sigma_b=0.1)
    for depth in (200, 1000):
        assert _sampled_error(x, model, depth, _PAIRS) <= 1e-12, depth


def test_tanh_interpolated_agrees_with_two_dimensional_quadrature():
    """The Hermite-series composed maps against the layer-by-layer recursion with 2-D trapezoidal
    quadrature (an independent method) on a few rows at depth 30."""
    x = _unit_data()
    model = Model(30, activation="tanh", sigma_b=0.1)
    k = eoc_ntk.kernel(x, depth=30, activation="tanh", sigma_b=0.1)
    theta = smooth_kernels(x[:6], None, model, ("ntk",), method="quadrature")["ntk"]
    np.testing.assert_allclose(k[:6, :6], theta, rtol=1e-12, atol=0)


def test_gelu_closed_forms_agree_with_the_numerical_route():
    """GELU's closed forms (Tsuchida et al. 2021) against the same function given as a custom activation,
    whose moments come from the Hermite series and trapezoidal quadrature."""
    from scipy.special import ndtr
    custom = Activation.custom(lambda t: t * ndtr(t), lambda t: ndtr(t) + t * np.exp(-0.5 * t * t) / np.sqrt(2 * np.pi),
                               name="my_gelu")
    x = _data()
    closed = eoc_ntk.kernel(x, depth=5, activation="gelu", sigma_w=1.3, sigma_b=0.2)
    numeric = eoc_ntk.kernel(x, depth=5, activation=custom, sigma_w=1.3, sigma_b=0.2)
    np.testing.assert_allclose(closed, numeric, rtol=1e-13)
    m = Model(3, activation="gelu", sigma_b=0.1)
    assert m.is_eoc and abs(m.q_star - Model(3, activation=custom, sigma_b=0.1).q_star) <= 1e-13 * m.q_star


def test_predict_dynamics_and_learning_curve_take_smooth_activations():
    """predict interpolates the training labels (ridge 0: K(X, X) K^-1 Y = Y); the loss under gradient
    flow starts at |y|^2 / (2n) and decreases; the learning curve has one row per size."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(12, 3))
    y = np.sin(x[:, 0])
    fit = eoc_ntk.predict(x, y, x, depth=4, activation="tanh", sigma_b=0.1)
    np.testing.assert_allclose(fit, y, atol=1e-8)
    dyn = eoc_ntk.dynamics(x, y, depth=4, activation="gelu", sigma_b=0.1, steps=[0, 10, 100])
    assert dyn.train_loss[0] == pytest.approx(float(y @ y) / (2 * 12), rel=1e-12)
    assert dyn.train_loss[-1] < dyn.train_loss[0]
    curve = eoc_ntk.learning_curve(x, y, depth=3, activation="erf", sigma_b=0.1, sizes=[4, 8], splits=2)
    assert len(curve.sizes) == 2


def test_zero_rows_at_zero_bias_give_zero_rows_not_nan():
    """phi(0) = 0 for the built-ins: at sigma_b = 0 a zero input stays 0 at every layer."""
    x = np.array([[1.0, 0.0], [0.0, 0.0], [0.5, 0.5]])
    k = eoc_ntk.kernel(x, depth=5, activation="tanh", sigma_w=1.0, sigma_b=0.0)
    assert np.all(k[1] == 0.0) and np.all(k[:, 1] == 0.0)
    np.testing.assert_array_equal(k[np.ix_([0, 2], [0, 2])],
                                  eoc_ntk.kernel(x[[0, 2]], depth=5, activation="tanh", sigma_w=1.0, sigma_b=0.0))
    with pytest.raises(InvalidParameterError) as err:
        eoc_ntk.kernel(x, depth=5, activation="tanh", sigma_w=1.0, kind="angle")
    assert err.value.param == "x"


def test_gelu_moments_keep_their_accuracy_at_large_variance():
    """(1+q1)(1+q2) - c^2, two sqrt(q)-sized terms and arcsin next to 1 all lose digits once q >> 1 unless
    arranged with care: the closed forms must stay exact against mpmath at any variance."""
    import mpmath as mp

    from eoc_ntk.core._numerics.smooth_moments import gelu_moments

    mp.mp.dps = 30
    for q in (1e3, 1e6, 1e12):
        root = mp.sqrt(q)
        edges = [-mp.inf, -10 / root, 0, 10 / root, mp.inf]
        second = mp.quad(lambda z, r=root: (r * z * mp.ncdf(r * z)) ** 2 * mp.npdf(z), edges)
        slope = mp.quad(lambda z, r=root: (mp.ncdf(r * z) + r * z * mp.npdf(r * z)) ** 2 * mp.npdf(z), edges)
        got = gelu_moments(np.array(q), np.array(q), np.array(q))
        assert abs(float((got[0] - second) / second)) < 1e-14, q
        assert abs(float((got[1] - slope) / slope)) < 1e-14, q


def test_variances_that_leave_an_unstable_fixed_point_are_refused_not_nan():
    """GELU's q* repels at sigma_b = 0.1 (docs/math.md): unit-scale inputs grow about 1.5x a layer and
    overflow float64 before depth 1000."""
    x = np.random.default_rng(0).normal(size=(12, 5))
    assert np.all(np.isfinite(eoc_ntk.kernel(x[:4], depth=30, activation="gelu", sigma_b=0.1)))
    for rows in (3, 12):  # composed maps (few variance groups) and pair by pair (many)
        with np.errstate(all="ignore"), pytest.raises(InvalidParameterError, match="overflows float64") as info:
            eoc_ntk.kernel(x[:rows], depth=1000, activation="gelu", sigma_b=0.1)
        assert info.value.param == "depth" and "layer 5" in str(info.value)

"""Every core function takes ``activation=`` (one grammar) beside ``a``/``b``."""
from __future__ import annotations

import math

import numpy as np
import pytest

import eoc_ntk
from eoc_ntk.core.activations import Activation
from eoc_ntk.core.errors import InvalidParameterError


def _data(n: int = 7, m0: int = 3, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, m0))
    return x, np.sin(x[:, 0]) + 0.3 * x[:, 1]


def _calls():
    x, y = _data()
    xt = _data(4, seed=2)[0]
    return {
        "kernel": lambda **kw: eoc_ntk.kernel(x, depth=3, **kw),
        "spectrum": lambda **kw: eoc_ntk.spectrum(x, depth=3, **kw).eigenvalues,
        "depth_sweep": lambda **kw: eoc_ntk.depth_sweep(x, depths=[1, 4], **kw).condition_number,
        "icd_analysis": lambda **kw: eoc_ntk.icd_analysis(x, depth=3, **kw).icd_lambda_min,
        "dynamics": lambda **kw: eoc_ntk.dynamics(x, y, depth=3, steps=[0, 5, 50], **kw).train_loss,
        "predict": lambda **kw: eoc_ntk.predict(x, y, xt, depth=3, ridge=1e-3, **kw),
        "learning_curve": lambda **kw: eoc_ntk.learning_curve(x, y, depth=3, sizes=[3, 5], splits=2,
                                                              **kw).measured_test_mse,
        "alignment": lambda **kw: eoc_ntk.alignment(x, y, depth=3, **kw),
    }


CALLS = _calls()


@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize("spelling, a, b", [("relu", 0.5, 0.5), ("ABS", 0.0, 1.0), ("leaky_relu:0.1", 0.55, 0.45),
                                            (Activation(0.3, 0.7, "mine"), 0.3, 0.7)])
def test_activation_equals_its_coefficients(name, spelling, a, b):
    call = CALLS[name]
    np.testing.assert_array_equal(np.asarray(call(activation=spelling)), np.asarray(call(a=a, b=b)))


@pytest.mark.parametrize("name", list(CALLS))
def test_activation_and_coefficients_together_is_refused_naming_both(name):
    with pytest.raises(InvalidParameterError) as err:
        CALLS[name](activation="relu", a=0.5)
    assert err.value.param == "activation" and "activation" in str(err.value) and " a" in str(err.value)
    with pytest.raises(InvalidParameterError, match="a and b"):
        CALLS[name](activation="relu", a=0.5, b=0.5)


@pytest.mark.parametrize("name", list(CALLS))
def test_neither_is_a_missing_argument(name):
    with pytest.raises(TypeError, match="'a' and 'b'"):
        CALLS[name]()
    with pytest.raises(TypeError, match="'b'"):
        CALLS[name](a=0.5)


def test_unknown_activation_names_the_field():
    with pytest.raises(InvalidParameterError) as err:
        eoc_ntk.kernel(np.eye(2), depth=2, activation="mish")
    assert err.value.param == "activation" and "mish" in str(err.value)


def test_relu_depth_two_is_the_arc_cosine_ntk():
    """ReLU at the EOC (``sigma_w^2 = 2``), ``l = 2``: with ``q = 2|x|^2/m0`` and input angle ``alpha``,
    ``Theta = sqrt(q q') [sin(alpha) + 2 (pi - alpha) cos(alpha)] / pi`` (Cho & Saul's arc-cosine kernels)."""
    x, _ = _data(5, 4)
    m0 = x.shape[1]
    k = eoc_ntk.kernel(x, depth=2, activation="relu")
    norms = np.linalg.norm(x, axis=1)
    for i in range(5):
        for j in range(5):
            v, w = x[i] / norms[i], x[j] / norms[j]
            alpha = 2.0 * math.atan2(float(np.linalg.norm(v - w)), float(np.linalg.norm(v + w)))
            cos = math.cos(alpha)
            q = 2.0 * norms[i] * norms[j] / m0
            expected = q * (math.sin(alpha) + 2.0 * (math.pi - alpha) * cos) / math.pi
            assert k[i, j] == pytest.approx(expected, rel=1e-12, abs=1e-14)


def test_activations_models_and_refusals_pickle_whole():
    """What a Dask task carries to a worker process (and a worker's refusal on its way back)."""
    import pickle

    from eoc_ntk.core.activations import parse_activation
    from eoc_ntk.core.csv_points import UnreadableCSV

    relu = pickle.loads(pickle.dumps(parse_activation("leaky_relu:0.1")))
    assert tuple(relu) == (0.55, 0.45) and relu.label == "leaky_relu:0.1"
    tanh = pickle.loads(pickle.dumps(parse_activation("Tanh")))
    assert tanh == parse_activation("tanh") and tanh.phi is parse_activation("tanh").phi
    model = eoc_ntk.Model(4, activation="gelu", sigma_b=0.1)
    again = pickle.loads(pickle.dumps(model))
    assert (again.activation, again.sigma_w, again.q_star, again.chi) == \
        (model.activation, model.sigma_w, model.q_star, model.chi)
    x = _data()[0]
    assert np.array_equal(eoc_ntk.kernel(x, depth=4, activation=again.activation, sigma_b=0.1),
                          eoc_ntk.kernel(x, depth=4, activation="gelu", sigma_b=0.1))
    for err in (InvalidParameterError("bad x", param="x"), UnreadableCSV("bad csv", param="body")):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err) and back.param == err.param

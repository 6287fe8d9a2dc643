"""The core's one home per concept: typed refusals, the activation grammar, points, JSON-safe values.

Values are checked against hand-written expectations (the paper's coefficients, literal
arrays), never against another call of the same code.
"""
from __future__ import annotations

import io
import math

import numpy as np
import pytest

import eoc_ntk
from eoc_ntk.core.activations import ACTIVATION_NAMES, activation_label, parse_activation, parse_activations
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.jsonsafe import from_jsonable, to_jsonable
from eoc_ntk.core.point_files import UnreadablePoints, load_points, read_points
from eoc_ntk.core.sweep import activation_sweep

X = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])


# Typed refusals: the argument's name in .param, a ValueError and a TypeError at once.
@pytest.mark.parametrize("call, param", [
    (lambda: eoc_ntk.kernel([[1.0, 2.0], [3.0]], depth=2, a=0.5, b=0.5), "x"),
    (lambda: eoc_ntk.kernel(X, X[:, :1], depth=2, a=0.5, b=0.5), "x2"),
    (lambda: eoc_ntk.kernel(X, depth=0, a=0.5, b=0.5), "depth"),
    (lambda: eoc_ntk.kernel(X, depth=2.5, a=0.5, b=0.5), "depth"),
    (lambda: eoc_ntk.kernel(X, depth=2, a=0.0, b=0.0), "a"),
    (lambda: eoc_ntk.kernel(X, depth=2, a=0.5, b=math.nan), "b"),
    (lambda: eoc_ntk.kernel(X, depth=2, a=0.5, b=0.5, sigma_w=-1.0), "sigma_w"),
    (lambda: eoc_ntk.kernel(X, depth=2, a=0.5, b=0.5, sigma_b=-0.1), "sigma_b"),
    (lambda: eoc_ntk.kernel(X, depth=2, a=1.0, b=0.0, kind="icd"), "kind"),
    (lambda: eoc_ntk.kernel(X, depth=2, a=0.5, b=0.5, kind="rbf"), "kind"),
    (lambda: eoc_ntk.spectrum(X, depth=2, a=0.5, b=0.5, eigenvalues="some"), "eigenvalues"),
    (lambda: eoc_ntk.depth_sweep(X, depths=[], a=0.5, b=0.5), "depths"),
    (lambda: eoc_ntk.Model(2, 0.5, 0.5, output_dim=0), "output_dim"),
    (lambda: eoc_ntk.activation_coefficients("gelu"), "name"),
    (lambda: eoc_ntk.activation_coefficients("relu", slope=0.1), "slope"),
    (lambda: parse_activation("leaky_relu:x"), "activation"),
    (lambda: activation_sweep(X, [1, 2], ["relu", "abs"], sigma_w=[1.0]), "sigma_w"),
])
def test_every_refusal_is_typed_and_names_its_parameter(call, param):
    with pytest.raises(InvalidParameterError) as info:
        call()
    assert info.value.param == param
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


# The activation grammar (docs/math.md §1: phi(s) = a s + b |s|).
@pytest.mark.parametrize("spelling, ab, label", [
    ("relu", (0.5, 0.5), "relu"), ("ReLU", (0.5, 0.5), "relu"), (" Abs ", (0.0, 1.0), "abs"),
    ("identity", (1.0, 0.0), "linear"), ("leaky-relu", (0.505, 0.495), "leaky_relu:0.01"),
    ("leaky_relu:0.1", (0.55, 0.45), "leaky_relu:0.1"), ("0.3,0.7", (0.3, 0.7), "a=0.3,b=0.7"),
    ({"name": "LEAKY_RELU", "slope": 0.2}, (0.6, 0.4), "leaky_relu:0.2"), ({"name": "abs"}, (0.0, 1.0), "abs"),
    ({"a": -0.25, "b": 2}, (-0.25, 2.0), "a=-0.25,b=2"), ((1, 3), (1.0, 3.0), "a=1,b=3"),
])
def test_every_spelling_gives_its_coefficients(spelling, ab, label):
    act = parse_activation(spelling)
    assert (act.a, act.b) == pytest.approx(ab, abs=1e-15) and act.label == label


@pytest.mark.parametrize("bad", ["mish", "relu:0.1", "1,2,3", "a,b", {"name": "relu", "k": 1}, {"a": 1}, 3.0,
                                 {"name": 5}])
def test_bad_spellings_are_refused(bad):
    with pytest.raises(InvalidParameterError):
        parse_activation(bad)


def test_lists_and_names_and_labels():
    assert [tuple(a) for a in parse_activations("relu,abs;0.3,0.7")] == [(0.5, 0.5), (0.0, 1.0), (0.3, 0.7)]
    assert set(ACTIVATION_NAMES) == {"relu", "abs", "linear", "leaky_relu"}
    # The display label depends on (a, b) up to scale and sign only, as the kernel does.
    assert activation_label(1.0, 1.0) == "ReLU (Δ=0.5)"
    assert activation_label(0.0, -3.0) == "abs (Δ=1)"
    assert activation_label(2.0, 0.0) == "linear (Δ=0)"
    assert activation_label(0.55, 0.45) == "leaky ReLU 0.1 (Δ=0.401)"  # Delta = 0.2025 / 0.505
    assert activation_label(0.3, 0.7) == "a=0.3, b=0.7 (Δ=0.845)"      # 0.49 / 0.58


# Points: one set of rules for the CLI's files and the service's uploads.
def test_csv_with_comments_and_whitespace_columns_and_npy_agree(tmp_path):
    text = "# a comment\n1, 0\n0.6 ,0.8\n0 , 1\n\n"
    spaced = "1 0\n0.6\t0.8\n# between\n0 1\n"
    np.testing.assert_array_equal(read_points(text.encode("utf-8-sig"), "csv"), X)
    np.testing.assert_array_equal(read_points(spaced.encode(), "csv"), X)
    np.save(tmp_path / "x.npy", X)
    (tmp_path / "x.csv").write_text(text)
    np.testing.assert_array_equal(load_points(tmp_path / "x.npy"), X)
    np.testing.assert_array_equal(load_points(tmp_path / "x.csv"), X)


@pytest.mark.parametrize("data, fmt, kind, param, words", [
    (b"a,b\n1,2\n", "csv", InvalidParameterError, "data", "no header"),
    (b"1,2\n\n3,4\n", "csv", InvalidParameterError, "data", "blank"),
    (b"1,nan\n", "csv", InvalidParameterError, "data", "not a number"),
    (b"1,2\n3\n", "csv", InvalidParameterError, "x", "ragged"),
    (b"\xff\xfe1,2\n", "csv", UnreadablePoints, "data", "UTF-8"),
    (b"not npy", "npy", UnreadablePoints, "data", "magic"),
    (None, "npy", InvalidParameterError, "x", "2-D"),  # a 1-D array: refused, not silently a column
])
def test_refused_points_say_why(data, fmt, kind, param, words):
    if data is None:
        buf = io.BytesIO()
        np.save(buf, np.arange(3.0))
        data = buf.getvalue()
    with pytest.raises(kind, match=words) as info:
        read_points(data, fmt)
    assert info.value.param == param


# JSON-safe values, both ways.
def test_json_safe_values_round_trip():
    result = {"depths": (1, 2), "condition_number": np.array([math.inf, 4.0]), "lambda_min": np.float64(0.5),
              "limit_condition_number": math.inf, "eigenvalues": np.array([math.nan, 1.0]),
              "singular": [True, False], "duplicate_groups": [[0, 3]], "kernel": np.eye(2)}
    plain = to_jsonable(result)
    assert plain == {"depths": [1, 2], "condition_number": [None, 4.0], "lambda_min": 0.5,
                     "limit_condition_number": None, "eigenvalues": [None, 1.0], "singular": [True, False],
                     "duplicate_groups": [[0, 3]], "kernel": [[1.0, 0.0], [0.0, 1.0]]}
    back = from_jsonable(plain)
    np.testing.assert_array_equal(back["condition_number"], [math.inf, 4.0])  # null -> inf (singular)
    assert back["limit_condition_number"] == math.inf
    assert np.isnan(back["eigenvalues"][0]) and back["eigenvalues"][1] == 1.0  # null -> nan elsewhere
    assert back["depths"].dtype.kind == "i" and back["singular"].dtype == bool
    assert back["duplicate_groups"] == [[0, 3]]
    np.testing.assert_array_equal(back["kernel"], np.eye(2))


def test_the_activation_sweep_of_a_linear_network_is_the_gram_condition_number():
    """Linear network (a=1, b=0) at the EOC: K = l <x, x'> / m0 at every depth, so the condition
    number of K/n is that of the Gram matrix (computed here with NumPy alone)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 6))
    gram = np.linalg.eigvalsh(x @ x.T)
    seen = []
    out = activation_sweep(x, [3, 1], ["linear", "relu"], progress=seen.append)
    assert out["depths"] == [1, 3]
    linear = out["results"][0]
    assert linear["activation"] == {"a": 1.0, "b": 0.0, "sigma_w": 1.0, "sigma_b": 0.0, "label": "linear"}
    np.testing.assert_allclose(linear["condition_number"], [gram[-1] / gram[0]] * 2, rtol=1e-10)
    assert seen == sorted(seen) and seen[-1] == 1.0 and any(0.0 < f <= 0.5 for f in seen)

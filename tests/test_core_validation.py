"""Bad input to every public function of the core: ValueError/TypeError naming the argument
and its shape; inputs never modified in place; the model description (docs/math.md §1)."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

import eoc_ntk

GOOD = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0], [-1.0, 0.2, 0.1]])

# One call per public entry point taking data ``x``; each forwards keyword overrides.
ENTRY_POINTS = {
    "kernel": lambda x, **kw: eoc_ntk.kernel(x, **{"depth": 3, "a": 0.5, "b": 0.5, **kw}),
    "kernel_icd": lambda x, **kw: eoc_ntk.kernel(x, **{"depth": 3, "a": 0.5, "b": 0.5, "kind": "icd", **kw}),
    "spectrum": lambda x, **kw: eoc_ntk.spectrum(x, **{"depth": 3, "a": 0.5, "b": 0.5, **kw}),
    "spectrum_extremes": lambda x,
                **kw: eoc_ntk.spectrum(x, **{"depth": 3, "a": 0.5, "b": 0.5, "eigenvalues": "extremes", **kw}),
    "icd_analysis": lambda x, **kw: eoc_ntk.icd_analysis(x, **{"depth": 3, "a": 0.5, "b": 0.5, **kw}),
    "depth_sweep": lambda x, **kw: eoc_ntk.depth_sweep(x, **{"depths": [1, 3], "a": 0.5, "b": 0.5,
                                                           **{k: v for k, v in kw.items() if k != "depth"},
                                                           **({"depths": [kw["depth"]]} if "depth" in kw else {})}),
}
DATA_ONLY = {
    **ENTRY_POINTS,
    "depth_limit_matrix": lambda x, **kw: eoc_ntk.depth_limit_matrix(x, a=0.5, b=0.5),
    "limit_condition_number": lambda x, **kw: eoc_ntk.limit_condition_number(x, a=0.5, b=0.5),
    "analyze": lambda x, **kw: eoc_ntk.analyze(x, eoc_ntk.Model(3, 0.5, 0.5)),
}

# (id, bad x, exception types, regexes the message must match: the name and the shape)
BAD_X = [
    ("ragged", [[1.0, 2.0], [3.0]], (ValueError,), [r"\bx\b", r"ragged|length"]),
    ("string", "abc", (TypeError, ValueError), [r"\bx\b"]),
    ("strings_inside", [["a", "b"]], (TypeError, ValueError), [r"\bx\b"]),
    ("nan", np.array([[1.0, np.nan], [0.0, 1.0]]), (ValueError,), [r"\bx\b", re.escape("(2, 2)"), r"(?i)nan|finite"]),
    ("inf", [[1.0, 2.0], [-np.inf, 1.0]], (ValueError,), [r"\bx\b", re.escape("(2, 2)"), r"(?i)inf|finite"]),
    ("1-D", np.ones(3), (ValueError,), [r"\bx\b", re.escape("(3,)")]),
    ("3-D", np.ones((2, 2, 2)), (ValueError,), [r"\bx\b", re.escape("(2, 2, 2)")]),
    ("scalar", 3.0, (ValueError, TypeError), [r"\bx\b"]),
    ("empty_rows", np.empty((0, 3)), (ValueError,), [r"\bx\b", re.escape("(0, 3)")]),
    ("empty_cols", np.empty((3, 0)), (ValueError,), [r"\bx\b", re.escape("(3, 0)")]),
    ("empty_list", [], (ValueError,), [r"\bx\b"]),
    ("none", None, (ValueError, TypeError), [r"\bx\b"]),
    ("complex", np.array([[1 + 2j, 1.0]]), (TypeError, ValueError), [r"\bx\b"]),
    ("object", np.array([[1.0, None]], dtype=object), (TypeError, ValueError), [r"\bx\b"]),
    ("dict", {"a": 1}, (TypeError,), [r"\bx\b"]),
    # Squares of entries that overflow or underflow float64 (MAX_ABS_VALUE, subnormals).
    ("huge", [[1e200, 1.0]], (ValueError,), [r"\bx\b", re.escape("(1, 2)")]),
    ("subnormal", [[1e-310, 1.0]], (ValueError,), [r"\bx\b", re.escape("(1, 2)")]),
]


def _raises(fn, exc, patterns, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    for pattern in patterns:
        assert re.search(pattern, msg), f"message {msg!r} lacks {pattern!r}"
    return msg


@pytest.mark.parametrize("entry", list(DATA_ONLY))
@pytest.mark.parametrize("case_id, x, exc, patterns", BAD_X, ids=[c[0] for c in BAD_X])
def test_bad_data(entry, case_id, x, exc, patterns):
    _raises(DATA_ONLY[entry], exc, patterns, x)


@pytest.mark.parametrize("x2, exc, patterns", [
    (np.ones((2, 4)), ValueError, [r"\bx2\b", re.escape("(2, 4)"), re.escape("(3, 3)")]),
    (np.ones(3), ValueError, [r"\bx2\b", re.escape("(3,)")]),
    (np.ones((0, 3)), ValueError, [r"\bx2\b", re.escape("(0, 3)")]),
    ([[1.0, np.nan, 2.0]], ValueError, [r"\bx2\b", re.escape("(1, 3)")]),
    ([[1.0, 2.0, 3.0], [1.0]], ValueError, [r"\bx2\b"]),
    ("abc", TypeError, [r"\bx2\b"]),
], ids=["other_width", "1-D", "empty", "nan", "ragged", "string"])
@pytest.mark.parametrize("kind", ["ntk", "angle"])
def test_bad_second_input(x2, exc, patterns, kind):
    _raises(eoc_ntk.kernel, exc, patterns, GOOD, x2, depth=3, a=0.5, b=0.5, kind=kind)


BAD_DEPTH = [(0, ValueError), (-2, ValueError), (2.5, (TypeError, ValueError)), ("3", TypeError),
             (None, TypeError), (True, TypeError), (float("nan"), (TypeError, ValueError))]


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("depth, exc", BAD_DEPTH, ids=[repr(d) for d, _ in BAD_DEPTH])
def test_bad_depth(entry, depth, exc):
    _raises(ENTRY_POINTS[entry], exc, [r"\bdepths?\b"], GOOD, depth=depth)


@pytest.mark.parametrize("depth", [3, 3.0, np.int64(3)])
def test_integral_depth_accepted(depth):
    assert np.array_equal(eoc_ntk.kernel(GOOD, depth=depth, a=0.5, b=0.5), eoc_ntk.kernel(GOOD, depth=3, a=0.5, b=0.5))


@pytest.mark.parametrize("depths, exc", [([], ValueError), ([0, 3], ValueError), ([2.5], (TypeError, ValueError)),
                                         ("10", TypeError), (5, TypeError), ([3, None], TypeError)])
def test_bad_sweep_depths(depths, exc):
    _raises(eoc_ntk.depth_sweep, exc, [r"\bdepths\b"], GOOD, depths=depths, a=0.5, b=0.5)


BAD_PARAMS = [
    (dict(a=0.0, b=0.0), ValueError, [r"\ba\b", r"\bb\b"]),
    (dict(a=0, b=-0.0), ValueError, [r"\ba\b", r"\bb\b"]),
    (dict(a=float("nan")), ValueError, [r"\ba\b"]),
    (dict(b=float("inf")), ValueError, [r"\bb\b"]),
    (dict(a="1"), TypeError, [r"\ba\b"]),
    (dict(b=None), TypeError, [r"\bb\b"]),
    (dict(sigma_w=0.0), ValueError, [r"\bsigma_w\b"]),
    (dict(sigma_w=-1.0), ValueError, [r"\bsigma_w\b"]),
    (dict(sigma_w=float("nan")), ValueError, [r"\bsigma_w\b"]),
    (dict(sigma_b=-0.1), ValueError, [r"\bsigma_b\b"]),
    (dict(sigma_b=float("inf")), ValueError, [r"\bsigma_b\b"]),
]


@pytest.mark.parametrize("entry", [e for e in ENTRY_POINTS if e not in ("icd_analysis", "kernel_icd")])
@pytest.mark.parametrize("params, exc, patterns", BAD_PARAMS, ids=[str(p[0]) for p in BAD_PARAMS])
def test_bad_model_parameters(entry, params, exc, patterns):
    _raises(ENTRY_POINTS[entry], exc, patterns, GOOD, **params)


@pytest.mark.parametrize("params, exc, patterns", [p for p in BAD_PARAMS if "sigma_b" not in p[0]],
                         ids=[str(p[0]) for p in BAD_PARAMS if "sigma_b" not in p[0]])
def test_bad_model_parameters_icd(params, exc, patterns):
    _raises(ENTRY_POINTS["icd_analysis"], exc, patterns, GOOD, **params)


@pytest.mark.parametrize("kind", ["foo", "NTK ", None, 3])
def test_unknown_kind(kind):
    _raises(eoc_ntk.kernel, (ValueError, TypeError), [r"\bkind\b"], GOOD, depth=3, a=0.5, b=0.5, kind=kind)


def test_icd_with_linear_activation():
    _raises(eoc_ntk.kernel, ValueError, [r"icd", r"Delta|b = 0"], GOOD, depth=3, a=1.0, b=0.0, kind="icd")
    _raises(eoc_ntk.icd_analysis, ValueError, [r"Delta|b = 0"], GOOD, depth=3, a=1.0, b=0.0)


@pytest.mark.parametrize("mode", ["some", None, "ALL"])
def test_unknown_eigenvalue_mode(mode):
    _raises(eoc_ntk.spectrum, ValueError, [r"\beigenvalues\b"], GOOD, depth=3, a=0.5, b=0.5, eigenvalues=mode)


@pytest.mark.parametrize("output_dim", [0, -1, 1.5, True])
def test_bad_output_dim(output_dim):
    _raises(eoc_ntk.spectrum, (ValueError, TypeError), [r"\boutput_dim\b"], GOOD, depth=3, a=0.5, b=0.5,
            output_dim=output_dim)


def test_analyze_needs_a_model():
    _raises(eoc_ntk.analyze, TypeError, [r"\bmodel\b"], GOOD, {"depth": 3, "a": 0.5, "b": 0.5})


# --- inputs are never modified ------------------------------------------------------------------

def _variants():
    base = np.random.default_rng(2).standard_normal((4, 3))
    base[1] = base[0]                           # a duplicate (singular paths run too)
    yield "float64", base.copy()
    yield "fortran", np.asfortranarray(base)
    yield "float32", base.astype(np.float32)
    yield "int", np.round(base * 10).astype(np.int64)
    yield "strided", np.repeat(base, 2, axis=1)[:, ::2]
    yield "list", base.tolist()


@pytest.mark.parametrize("entry", list(DATA_ONLY))
@pytest.mark.parametrize("variant", [v[0] for v in _variants()])
def test_inputs_not_modified(entry, variant):
    x = dict(_variants())[variant]
    before = x.copy() if isinstance(x, np.ndarray) else [row[:] for row in x]
    DATA_ONLY[entry](x)
    if isinstance(x, np.ndarray):
        assert np.array_equal(x, before) and x.dtype == before.dtype
    else:
        assert x == before
    if isinstance(x, np.ndarray):       # read-only arrays are accepted (nothing writes to them)
        ro = np.array(x)
        ro.setflags(write=False)
        DATA_ONLY[entry](ro)


def test_cross_kernel_inputs_not_modified():
    x = np.random.default_rng(3).standard_normal((3, 4))
    x2 = np.random.default_rng(4).standard_normal((5, 4))
    cx, cx2 = x.copy(), x2.copy()
    x.setflags(write=False)
    x2.setflags(write=False)
    for kind in eoc_ntk.KINDS:
        eoc_ntk.kernel(x, x2, depth=4, a=0.5, b=0.5, kind=kind)
    assert np.array_equal(x, cx) and np.array_equal(x2, cx2)


def test_results_do_not_alias_inputs():
    x = np.random.default_rng(3).standard_normal((3, 3))
    for depth in (1, 30):
        k = eoc_ntk.kernel(x, depth=depth, a=0.5, b=0.5)
        assert not np.shares_memory(k, x)
        expected = k.copy()
        k[:] = 0.0                       # a caller writing to a result must not touch any cache
        assert np.array_equal(eoc_ntk.kernel(x, depth=depth, a=0.5, b=0.5), expected)
    spec = eoc_ntk.spectrum(x, depth=2, a=0.5, b=0.5)
    assert not np.shares_memory(spec.eigenvalues, x)


# --- the model description ----------------------------------------------------------------------

@pytest.mark.parametrize("name, slope, ab, delta", [
    ("relu", None, (0.5, 0.5), 0.5),
    ("abs", None, (0.0, 1.0), 1.0),
    ("linear", None, (1.0, 0.0), 0.0),
    ("leaky_relu", 0.1, (0.55, 0.45), 0.45 ** 2 / (0.55 ** 2 + 0.45 ** 2)),
    ("leaky_relu", -1.0, (0.0, 1.0), 1.0),         # slope -1 is the absolute value
])
def test_activation_presets(name, slope, ab, delta):
    a, b = eoc_ntk.activation_coefficients(name, slope)
    assert (a, b) == pytest.approx(ab, abs=1e-15)
    model = eoc_ntk.Model.from_activation(4, name, slope)
    assert model.delta == pytest.approx(delta, abs=1e-15)
    assert model.chi == 1.0
    assert model.sigma_w == pytest.approx(1.0 / math.hypot(a, b), rel=1e-15)
    assert model.sigma_b == 0.0 and model.depth == 4 and model.output_dim == 1


def test_model_off_eoc():
    model = eoc_ntk.Model(5, 0.5, 0.5, sigma_w=2.0, sigma_b=0.1, output_dim=3)
    assert model.chi == pytest.approx(4.0 * 0.5, rel=1e-15)
    assert model.delta == 0.5 and model.output_dim == 3


@pytest.mark.parametrize("name, slope", [("tanh", None), ("relu", 0.1), ("leaky_relu", float("nan"))])
def test_bad_activation_presets(name, slope):
    with pytest.raises(ValueError):
        eoc_ntk.activation_coefficients(name, slope)


@pytest.mark.parametrize("args, exc, pattern", [
    ((0, 0.5, 0.5), ValueError, r"\bdepth\b"),
    ((2, 0.0, 0.0), ValueError, r"\ba\b"),
    ((2, 0.5, 0.5, None, -1.0), ValueError, r"\bsigma_b\b"),
    ((2, 0.5, 0.5, None, 0.0, 0), ValueError, r"\boutput_dim\b"),
])
def test_bad_model(args, exc, pattern):
    _raises(eoc_ntk.Model, exc, [pattern], *args)


def test_kernel_overflow_is_refused():
    """Off the EOC ``chi^(l-1)`` overflows float64 for deep networks: a clear error, not inf."""
    with pytest.raises(ValueError, match="overflow"):
        eoc_ntk.kernel(GOOD, depth=3000, a=0.5, b=0.5, sigma_w=2.0)
    with pytest.raises(ValueError, match="overflow"):
        eoc_ntk.spectrum(GOOD, depth=3000, a=0.5, b=0.5, sigma_w=2.0)

"""eoc_ntk.spectrum and eoc_ntk.depth_sweep against 50-digit eigenvalues; singular cases.

Eigenvalues of the paper's matrix ``K/n`` are checked to ``1e-12 * lambda_max`` absolutely
(what entrywise 1e-12-on-the-scale kernels plus a backward-stable solver give), the
condition number to ``1e-12 * cond`` relatively (the error of ``lambda_min`` over
``lambda_min``), except near-duplicate inputs, where the stable angle form must do much
better: ``lambda_min`` within 1e-6 relative for inputs 1e-7 apart and 1e-5 at 1e-9 apart.
"""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

import eoc_ntk
import eoc_ntk.core.eigen
from _reference.checks import check_finite_tree, check_spectrum_consistent
from _reference.data import ACTIVATIONS, HYPERS, dataset
from _reference.mp_kernel import MP, ref_eigenvalues, ref_kernel_mp, ref_spectrum


def _settings(act, hyper="eoc"):
    a, b = ACTIVATIONS[act]
    sigma_w, sigma_b = HYPERS[hyper](a, b)
    return dict(a=a, b=b, sigma_w=sigma_w, sigma_b=sigma_b)


SPEC_CASES = (
    [(act, "eoc", ds) for act in ("linear", "delta_0.1", "relu", "abs", "flipped_scaled_0.9")
     for ds in ("random", "orthogonal", "near_parallel_1e-3", "norms")]
    + [(act, hyper, "random") for act in ("relu", "abs", "delta_0.1") for hyper in ("off_eoc", "bias", "off_eoc_bias")]
)
SPEC_DEPTHS = (1, 3, 50, 200)


def check_spectrum_against_reference(spec, ref_eigs, what=""):
    n = len(ref_eigs)
    check_spectrum_consistent(spec, n)
    ref = np.array([float(v) for v in ref_eigs])
    lmax = ref[-1]
    assert np.all(np.abs(spec.eigenvalues - ref) <= 1e-12 * lmax), f"{what}: {spec.eigenvalues} vs {ref}"
    assert not spec.singular, what
    cond = float(ref_eigs[-1] / ref_eigs[0])
    assert math.isclose(spec.condition_number, cond, rel_tol=1e-12 * cond), (what, spec.condition_number, cond)


@pytest.mark.parametrize("act, hyper, ds", SPEC_CASES, ids=[f"{a}-{h}-{d}" for a, h, d in SPEC_CASES])
def test_spectrum_matches_reference(act, hyper, ds):
    x = dataset(ds)
    s = _settings(act, hyper)
    n = x.shape[0]
    for depth in SPEC_DEPTHS:
        ref_k = ref_kernel_mp(x, depth=depth, **s)
        ref_eigs = ref_eigenvalues([[v / n for v in row] for row in ref_k])
        spec = eoc_ntk.spectrum(x, depth=depth, output_dim=3, **s)
        check_spectrum_against_reference(spec, ref_eigs, f"l={depth}")
        assert spec.multiplicity == 3
        assert math.isclose(spec.trace, float(sum(ref_k[i][i] for i in range(n)) / n), rel_tol=1e-13)
        # Only the extremes: the certified fast path agrees with the dense solver.
        ext = eoc_ntk.spectrum(x, depth=depth, eigenvalues="extremes", **s)
        check_spectrum_consistent(ext, n)
        assert ext.eigenvalues is None
        assert math.isclose(ext.lambda_max, spec.lambda_max, rel_tol=1e-9)
        assert math.isclose(ext.lambda_min, spec.lambda_min, rel_tol=1e-9)
        json.dumps(spec.to_dict(), allow_nan=False)


# --- near-duplicate inputs (docs/math.md §4) -----------------------------------------------------

def _near_pair(gap, seed=0, n_extra=0):
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal(6)
    d = rng.standard_normal(6)
    rows = [x0, x0 + gap * np.linalg.norm(x0) * d / np.linalg.norm(d)]
    rows += list(rng.standard_normal((n_extra, 6)))
    return np.array(rows)


NEAR_ACTS = ["relu", "abs", "delta_0.1", "flipped_scaled_0.9", "relu_flipped_x3.5"]


@pytest.mark.parametrize("gap, rtol", [(1e-7, 1e-6), (1e-9, 1e-5)])
@pytest.mark.parametrize("act", NEAR_ACTS)
@pytest.mark.parametrize("depth", [2, 10, 100])
@pytest.mark.parametrize("n_extra", [0, 3])
def test_lambda_min_of_near_duplicates(gap, rtol, act, depth, n_extra):
    """``lambda_min`` of ``K/n`` for two inputs ``gap`` apart, vs a 50-digit eigen-solve."""
    x = _near_pair(gap, seed=depth, n_extra=n_extra)
    s = _settings(act)
    ref = ref_spectrum(x, depth=depth, **s)
    spec = eoc_ntk.spectrum(x, depth=depth, **s)
    check_spectrum_consistent(spec, x.shape[0])
    assert not spec.singular
    # At 1e-9 apart cond(K) reaches 7e10, where a backward-stable dense solver can only promise
    # eps * lambda_max of absolute error (docs/math.md §4: "the dense eigen-solver's own accuracy
    # becomes the limit"): that bound is allowed when it exceeds 1e-5.
    lmin = float(ref[0])
    tol = max(rtol, 2.0 * np.finfo(float).eps * float(ref[-1]) / lmin) if gap < 1e-8 else rtol
    assert abs(spec.lambda_min - lmin) <= tol * lmin, (spec.lambda_min, MP.nstr(ref[0], 20), tol)
    ext = eoc_ntk.spectrum(x, depth=depth, eigenvalues="extremes", **s)
    assert abs(ext.lambda_min - lmin) <= tol * lmin


def _lambda_min_rayleigh(x, depth, settings):
    """High-precision ``lambda_min(K/n)`` of a larger matrix without a 50-digit eigen-solve.

    The float64 eigenvector ``v`` of the rounded reference matrix has an error angle
    ``theta ~ eps lambda_max / gap``; the Rayleigh quotient ``v^T K v / v^T v``, evaluated in
    50 digits with the 50-digit ``K``, is then off by ``~ lambda_max theta^2`` (~1e-30 relative
    here), far below the tolerances tested.
    """
    n = x.shape[0]
    k = ref_kernel_mp(x, depth=depth, **settings)
    kf = np.array([[float(v) for v in row] for row in k]) / n
    _, vecs = np.linalg.eigh(kf)
    v = [MP.mpf(float(c)) for c in vecs[:, 0]]
    kv = [MP.fsum(k[i][j] * v[j] for j in range(n)) / n for i in range(n)]
    return MP.fsum(a * b for a, b in zip(v, kv, strict=True)) / MP.fsum(c * c for c in v)


@pytest.mark.parametrize("gap, rtol, act", [(1e-7, 1e-6, "relu"), (1e-9, 1e-5, "abs")])
def test_lambda_min_of_near_duplicates_large(gap, rtol, act):
    """The same with 64 inputs in R^16, where the core evaluates kernels by interpolation."""
    rng = np.random.default_rng(31)
    x0 = rng.standard_normal(16)
    d = rng.standard_normal(16)
    x = np.concatenate([[x0, x0 + gap * np.linalg.norm(x0) * d / np.linalg.norm(d)], rng.standard_normal((62, 16))])
    s = _settings(act)
    lmin = float(_lambda_min_rayleigh(x, 10, s))
    spec = eoc_ntk.spectrum(x, depth=10, **s)
    check_spectrum_consistent(spec, 64)
    assert not spec.singular
    # As above: at 1e-9 apart the dense solver's own eps * lambda_max may dominate.
    tol = max(rtol, 2.0 * np.finfo(float).eps * spec.lambda_max / lmin) if gap < 1e-8 else rtol
    assert abs(spec.lambda_min - lmin) <= tol * lmin, (spec.lambda_min, lmin, tol)
    ext = eoc_ntk.spectrum(x, depth=10, eigenvalues="extremes", **s)
    assert abs(ext.lambda_min - lmin) <= tol * lmin, (ext.lambda_min, lmin, tol)


# --- singular data: answers, never crashes, NaN or warnings ----------------------------------

def _unit(v):
    return np.asarray(v, dtype=float) / np.linalg.norm(v)


_RNG = np.random.default_rng(21)
_BASE = _RNG.standard_normal((4, 5))

SINGULAR = {
    # name: (x, act, depth, expected attributes)
    "exact_duplicates": (np.stack([_BASE[0], _BASE[1], _BASE[2], _BASE[0]]), "relu", 5,
                         dict(duplicate_groups=((0, 3),))),
    "same_direction_3x": (np.stack([_BASE[0], _BASE[1], 3.0 * _BASE[1], _BASE[2]]), "relu", 5,
                          dict(duplicate_groups=((1, 2),))),
    "three_copies": (np.stack([_BASE[0], 0.5 * _BASE[2], _BASE[1], _BASE[2], 7.0 * _BASE[2]]), "abs", 3,
                     dict(duplicate_groups=((1, 3, 4),))),
    "zero_row": (np.stack([_BASE[0], _BASE[1], np.zeros(5), _BASE[2]]), "relu", 5,
                 dict(zero_rows=(2,))),
    "zero_row_and_duplicate": (np.stack([np.zeros(5), _BASE[0], _BASE[1], 2.0 * _BASE[0]]), "delta_0.1", 4,
                               dict(zero_rows=(0,), duplicate_groups=((1, 3),))),
    "depth1_n_gt_m0": (_RNG.standard_normal((7, 3)), "relu", 1, {}),
    "linear_n_gt_m0": (_RNG.standard_normal((7, 3)), "linear", 6, {}),
    "abs_antipodal": (np.stack([_BASE[0], _BASE[1], -2.0 * _BASE[0], _BASE[2]]), "abs", 3,
                      dict(antipodal_pairs=((0, 2),))),
    "abs_antipodal_deep": (np.stack([_BASE[0], -0.1 * _BASE[1], _BASE[1], _BASE[2]]), "abs", 60,
                           dict(antipodal_pairs=((1, 2),))),
}


def _no_warnings(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


@pytest.mark.parametrize("name", list(SINGULAR))
def test_singular_cases(name):
    x, act, depth, expected = SINGULAR[name]
    s = _settings(act)
    for mode in ("all", "extremes"):
        spec = _no_warnings(eoc_ntk.spectrum, x, depth=depth, eigenvalues=mode, **s)
        check_spectrum_consistent(spec, x.shape[0])
        assert spec.singular is True
        assert spec.condition_number == math.inf
        assert spec.lambda_min <= 1e-12 * spec.lambda_max
        for attr in ("zero_rows", "duplicate_groups", "antipodal_pairs"):
            got = getattr(spec, attr)
            assert tuple(tuple(g) if isinstance(g, (list, tuple)) else g for g in got) == expected.get(attr, ()), (attr,
                                                                                                                   got)
        d = spec.to_dict()
        check_finite_tree(d)
        json.dumps(d, allow_nan=False)
    for kind in ("ntk", "nngp", "angle") + (("icd",) if s["b"] else ()):
        if kind == "angle" and expected.get("zero_rows"):
            continue  # undefined for zero rows: refused by name (tests/test_core_edges.py)
        k = _no_warnings(eoc_ntk.kernel, x, depth=depth, kind=kind, **s)
        assert not np.isnan(k).any(), kind
    sweep = _no_warnings(eoc_ntk.depth_sweep, x, depths=[depth, depth + 1], **s)
    check_finite_tree(sweep)
    assert sweep.singular[0] and sweep.condition_number[0] == math.inf
    json.dumps(sweep.to_dict(), allow_nan=False)


@pytest.mark.parametrize("name", ["exact_duplicates", "same_direction_3x", "zero_row", "abs_antipodal"])
def test_icd_analysis_of_singular_data_has_no_nan(name):
    x, act, depth, _ = SINGULAR[name]
    res = _no_warnings(eoc_ntk.icd_analysis, x, depth=depth,
                       **{k: v for k, v in _settings(act).items() if k != "sigma_b"})
    check_finite_tree(res)
    json.dumps(res.to_dict(), allow_nan=False)


def test_relu_with_opposite_inputs_is_regular():
    """``x`` and ``-2x`` are distinct inputs for ReLU (unlike abs): the matrix is regular at depth >= 2."""
    x = SINGULAR["abs_antipodal"][0]
    spec = eoc_ntk.spectrum(x, depth=3, a=0.5, b=0.5)
    check_spectrum_consistent(spec, 4)
    assert not spec.singular and spec.antipodal_pairs == ()
    ref = ref_spectrum(x, depth=3, a=0.5, b=0.5)
    assert math.isclose(spec.lambda_min, float(ref[0]), rel_tol=1e-10)


def test_abs_with_exact_opposite_inputs_has_equal_entries():
    """docs/math.md §4: for Delta = 1, ``K(x, -x) = K(x, x)`` at every depth >= 2."""
    x = np.stack([_BASE[0], -_BASE[0]])
    for depth in (2, 3, 50):
        k = eoc_ntk.kernel(x, depth=depth, a=0.0, b=1.0)
        assert math.isclose(k[0, 1], k[0, 0], rel_tol=1e-14)


def test_single_input():
    spec = eoc_ntk.spectrum([[1.0, 2.0, 3.0]], depth=4, a=0.5, b=0.5)
    check_spectrum_consistent(spec, 1)
    assert spec.condition_number == 1.0 and not spec.singular
    assert math.isclose(spec.lambda_min, 4 * 14 / (0.5 * 3), rel_tol=1e-14)


# --- depth sweep ---------------------------------------------------------------------------

SWEEP_DEPTHS = [1, 2, 3, 10, 50, 200]


@pytest.mark.parametrize("act, hyper, ds", [
    ("relu", "eoc", "random"), ("abs", "eoc", "orthogonal"), ("delta_0.1", "eoc", "near_parallel_1e-3"),
    ("linear", "eoc", "random"), ("relu", "bias", "random"), ("abs", "off_eoc", "random"),
])
@pytest.mark.parametrize("mode", ["extremes", "all"])
def test_depth_sweep_matches_reference(act, hyper, ds, mode):
    x = dataset(ds)
    s = _settings(act, hyper)
    sweep = eoc_ntk.depth_sweep(x, depths=[200, 1, 10, 3, 50, 2, 10], eigenvalues=mode, **s)
    assert list(sweep.depths) == SWEEP_DEPTHS            # sorted, duplicates merged
    check_finite_tree(sweep)
    json.dumps(sweep.to_dict(), allow_nan=False)
    for i, depth in enumerate(SWEEP_DEPTHS):
        ref = ref_spectrum(x, depth=depth, **s)
        lmin, lmax = float(ref[0]), float(ref[-1])
        assert math.isclose(sweep.lambda_max[i], lmax, rel_tol=1e-9), (depth, sweep.lambda_max[i], lmax)
        assert abs(sweep.lambda_min[i] - lmin) <= max(1e-9 * lmin, 1e-12 * lmax), (depth, sweep.lambda_min[i], lmin)
        assert not sweep.singular[i]
        cond = lmax / lmin
        assert math.isclose(sweep.condition_number[i], cond, rel_tol=max(1e-9, 1e-12 * cond))
        spec = eoc_ntk.spectrum(x, depth=depth, **s)
        assert math.isclose(sweep.condition_number[i], spec.condition_number, rel_tol=max(1e-9, 1e-12 * cond))


def _big_data(kind):
    rng = np.random.default_rng(41)
    x = rng.standard_normal((800, 10))
    if kind == "near_duplicate":
        x[7] = x[500] + 1e-7 * rng.standard_normal(10)
    elif kind == "duplicate":
        x[7] = x[500]
    return x


_BIG_SETTINGS = {"relu": dict(a=0.5, b=0.5), "abs": dict(a=0.0, b=1.0), "relu-bias": dict(a=0.5, b=0.5, sigma_b=0.3)}
# Each case takes 2-20 s here (dense 800 x 800 solves on 2 shared cores): one representative
# case runs by default, the full grid with -m slow.
_BIG_CASES = [pytest.param(d, s, id=f"{s}-{d}",
                           marks=() if (d, s) == ("random", "relu") else (pytest.mark.slow,))
              for d in ("random", "near_duplicate", "duplicate") for s in _BIG_SETTINGS]


@pytest.mark.parametrize("data, settings_name", _BIG_CASES)
def test_extremes_agree_with_dense_on_large_data(data, settings_name, monkeypatch):
    """n = 800: ``eigenvalues="extremes"`` takes the certified fast path (or falls back).

    The fast path starts at ``DENSE_BELOW`` (where it beats the dense solver); lowered here
    so that an 800-point problem exercises it.
    """
    monkeypatch.setattr(eoc_ntk.core.eigen, "DENSE_BELOW", 800)
    settings = _BIG_SETTINGS[settings_name]
    x = _big_data(data)
    n = x.shape[0]
    dense = eoc_ntk.spectrum(x, depth=6, **settings)
    ext = eoc_ntk.spectrum(x, depth=6, eigenvalues="extremes", **settings)
    check_spectrum_consistent(dense, n)
    check_spectrum_consistent(ext, n)
    assert ext.singular == dense.singular == (data == "duplicate")
    assert math.isclose(ext.lambda_max, dense.lambda_max, rel_tol=1e-9)
    assert math.isclose(ext.trace, dense.trace, rel_tol=1e-13)
    if data == "duplicate":
        assert ext.duplicate_groups == dense.duplicate_groups == ((7, 500),)
    else:
        # Both solvers are backward stable: lambda_min within ~eps * lambda_max of each other,
        # and at least 1e-9 relative where lambda_min is not tiny.
        assert abs(ext.lambda_min - dense.lambda_min) <= max(1e-9 * dense.lambda_min, 64 * 2.2e-16 * dense.lambda_max)
        assert math.isclose(ext.condition_number, dense.condition_number,
                            rel_tol=max(1e-9, 64 * 2.2e-16 * dense.condition_number))
    assert ext.method in ("lanczos", "dense")
    if data == "random":
        assert ext.method == "lanczos"          # well conditioned: the fast path certifies
    if data != "random" or settings_name != "relu":      # the sweep's warm starts: slow runs only
        sweep = eoc_ntk.depth_sweep(x, depths=[2, 6], **settings)
        check_finite_tree(sweep)
        assert math.isclose(sweep.lambda_max[1], dense.lambda_max, rel_tol=1e-9)
        assert bool(sweep.singular[1]) == dense.singular
        if not dense.singular:
            assert abs(sweep.lambda_min[1] - dense.lambda_min) <= max(1e-9 * dense.lambda_min,
                                                                      64 * 2.2e-16 * dense.lambda_max)


@pytest.mark.parametrize("call", ["spectrum", "depth_sweep"])
def test_progress_reports_fractions_up_to_one(call):
    x = np.random.default_rng(42).standard_normal((80, 6))
    seen = []
    if call == "spectrum":
        eoc_ntk.spectrum(x, depth=12, a=0.5, b=0.5, progress=seen.append)
    else:
        eoc_ntk.depth_sweep(x, depths=[1, 5, 12], a=0.5, b=0.5, progress=seen.append)
    assert seen and all(0.0 <= f <= 1.0 for f in seen)
    assert seen == sorted(seen) and seen[-1] == 1.0


def _near_singular_sets():
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(5)
    y = rng.standard_normal((3, 5))
    return {
        "dup_1e-12": np.vstack([x0, x0 + 1e-12 * y[0], y[1:]]),
        "dup_1e-15": np.vstack([x0, x0 * (1 + 1e-15) + 1e-15 * y[0], y[1:]]),
        "opposite_1e-12": np.vstack([x0, -x0 + 1e-12 * y[0], y[1:]]),
        "opposite_1e-15": np.vstack([x0, -2 * x0 + 1e-15 * y[0], y[1:]]),
        "tiny_row": np.vstack([x0, 1e-140 * y[0], y[1:]]),
        "huge_row": np.vstack([x0, 1e140 * y[0], y[1:]]),
    }


@pytest.mark.parametrize("name", list(_near_singular_sets()))
@pytest.mark.parametrize("act", ["relu", "abs"])
@pytest.mark.parametrize("depth", [1, 3, 50])
def test_near_singular_data_is_answered(name, act, depth):
    """Nearly singular data: every entry point answers (regular or singular), no NaN, no warning."""
    x = _near_singular_sets()[name]
    s = _settings(act)
    icd_settings = {k: v for k, v in s.items() if k != "sigma_b"}
    dense = _no_warnings(eoc_ntk.spectrum, x, depth=depth, **s)
    ext = _no_warnings(eoc_ntk.spectrum, x, depth=depth, eigenvalues="extremes", **s)
    for spec in (dense, ext):
        check_spectrum_consistent(spec, x.shape[0])
        json.dumps(spec.to_dict(), allow_nan=False)
    assert ext.singular == dense.singular
    sweep = _no_warnings(eoc_ntk.depth_sweep, x, depths=[depth], **s)
    check_finite_tree(sweep)
    assert bool(sweep.singular[0]) == dense.singular
    res = _no_warnings(eoc_ntk.icd_analysis, x, depth=depth, **icd_settings)
    check_finite_tree(res)
    json.dumps(res.to_dict(), allow_nan=False)

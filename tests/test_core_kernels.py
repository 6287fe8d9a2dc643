"""eoc_ntk.kernel against the independent 50-digit reference (docs/math.md §2, §5).

Every case runs all kinds (ntk, nngp, angle and, where defined, icd) through the shared
assertions of ``_reference.checks``; see its docstring for the error measures
(``1e-12`` relative to ``sqrt(K_ii K_jj)`` for kernels, ``1e-12`` relative plus ``1e-14``
absolute for angles, and the matching relative bound for ICD entries).
"""
from __future__ import annotations

import numpy as np
import pytest

import eoc_ntk
from _reference.checks import assert_angle_close, assert_icd_close, assert_kernel_close
from _reference.data import ACTIVATIONS, DATASETS, DEPTHS, HYPERS, dataset, delta_of
from _reference.mp_kernel import ref_kernel, ref_parallel_mask
from eoc_ntk.core.errors import InvalidParameterError

# (activation, hyperparameters, dataset, depths). Every activation at the EOC on every
# dataset over the full depth range; off the EOC and with biases a representative subset
# (the 50-digit reference costs ~0.1 ms per pair and layer).
_OFF_EOC_ACTS = ("delta_0.1", "relu", "abs", "flipped_scaled_0.9", "linear")
_OFF_EOC_SETS = {
    # sigma_b = 0 off the EOC: the same angle recursion times chi^(l-1); fewer datasets.
    "off_eoc": ("random", "structured", "near_opposite"),
    # sigma_b != 0: the general recursion of docs/math.md §2, which depends on the norms too.
    "bias": ("random", "near_parallel_1e-6", "near_opposite", "structured", "norms"),
    "off_eoc_bias": ("random", "near_parallel_1e-6", "structured", "norms"),
}
CASES = (
    [(act, "eoc", ds, DEPTHS) for act in ACTIVATIONS for ds in DATASETS]
    + [(act, hyper, ds, DEPTHS if ds == "random" else DEPTHS[:-1])
       for act in _OFF_EOC_ACTS for hyper, sets in _OFF_EOC_SETS.items() for ds in sets]
)
PARAMS = [pytest.param(act, hyper, ds, depth, id=f"{act}-{hyper}-{ds}-l{depth}")
          for act, hyper, ds, depths in CASES for depth in depths]


def _settings(act, hyper):
    a, b = ACTIVATIONS[act]
    sigma_w, sigma_b = HYPERS[hyper](a, b)
    return dict(a=a, b=b, sigma_w=sigma_w, sigma_b=sigma_b)


def check_all_kinds(x, x2, depth, settings, what):
    """Compare every kind of ``kernel(x, x2)`` with the reference."""
    xs = x if x2 is None else x2
    ref = {kind: ref_kernel(x, x2, depth=depth, kind=kind, **settings) for kind in ("ntk", "nngp", "angle")}
    for kind in ("ntk", "nngp"):
        diag_r = np.diag(ref_kernel(x, depth=depth, kind=kind, **settings))
        diag_c = diag_r if x2 is None else np.diag(ref_kernel(x2, depth=depth, kind=kind, **settings))
        got = eoc_ntk.kernel(x, x2, depth=depth, kind=kind, **settings)
        assert_kernel_close(got, ref[kind], diag_r, diag_c, what=f"{what} kind={kind}")
    # Angles and ICD entries are undefined for zero inputs without bias.
    nonzero = (np.linalg.norm(x, axis=1) > 0)[:, None] & (np.linalg.norm(xs, axis=1) > 0)[None, :]
    if settings["sigma_b"] != 0.0:
        nonzero[:] = True
    if not nonzero.all():
        # The angle to a zero input is undefined at sigma_b = 0: refused by name (issue #17).
        with pytest.raises(InvalidParameterError, match="zero input rows") as err:
            eoc_ntk.kernel(x, x2, depth=depth, kind="angle", **settings)
        assert err.value.param in ("x", "x2")
    else:
        got = eoc_ntk.kernel(x, x2, depth=depth, kind="angle", **settings)
        assert_angle_close(got, ref["angle"], nonzero, what=f"{what} kind=angle")
    if settings["sigma_b"] == 0.0 and delta_of(settings["a"], settings["b"]) > 0.0:
        ref_icd = ref_kernel(x, x2, depth=depth, kind="icd", **settings)
        parallel = ref_parallel_mask(x, x2)
        # Pairs whose last-layer angle is (nearly) 0 without being parallel (abs with x, -x)
        # have an unbounded ICD entry: not compared.
        mask = nonzero & (parallel | (ref["angle"] > 1e-10))
        got = eoc_ntk.kernel(x, x2, depth=depth, kind="icd", **settings)
        assert np.all(np.isfinite(got[mask]))
        assert_icd_close(got, ref_icd, np.where(parallel, 1.0, ref["angle"]), mask, what=f"{what} kind=icd")


@pytest.mark.parametrize("act, hyper, ds, depth", PARAMS)
def test_kernel_matches_reference(act, hyper, ds, depth):
    check_all_kinds(dataset(ds), None, depth, _settings(act, hyper), f"{act}/{hyper}/{ds}/l={depth}")


# Cross-kernels: rows of another dataset, including an exact copy and a multiple of a row of x.
def _cross_pair():
    x = dataset("random")[:3]
    x2 = np.concatenate([dataset("near_parallel_1e-3")[:2], x[1:2], 4.0 * x[2:3], -x[0:1]])
    return x, x2


@pytest.mark.parametrize("act, hyper, depth", [
    (act, hyper, depth)
    for act in ("linear", "delta_0.1", "relu", "abs", "flipped_scaled_0.9")
    for hyper in ("eoc", "off_eoc", "bias")
    for depth in ((1, 2, 10, 200) if hyper != "off_eoc" else (1, 2, 10))
])
def test_cross_kernel_matches_reference(act, hyper, depth):
    x, x2 = _cross_pair()
    check_all_kinds(x, x2, depth, _settings(act, hyper), f"cross {act}/{hyper}/l={depth}")


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("hyper", ["eoc", "bias"])
def test_cross_kernel_is_block_of_full_kernel(act, hyper):
    x, x2 = _cross_pair()
    settings = _settings(act, hyper)
    full = eoc_ntk.kernel(np.concatenate([x, x2]), depth=7, **settings)
    cross = eoc_ntk.kernel(x, x2, depth=7, **settings)
    scale = np.sqrt(np.outer(np.diag(full)[:3], np.diag(full)[3:]))
    assert np.all(np.abs(cross - full[:3, 3:]) <= 1e-13 * scale)
    back = eoc_ntk.kernel(x2, x, depth=7, **settings)
    assert np.all(np.abs(back - cross.T) <= 1e-13 * scale.T)


@pytest.mark.parametrize("kind", ["ntk", "nngp", "angle", "icd"])
def test_output_shape_and_dtype(kind):
    x = np.arange(12, dtype=np.int32).reshape(4, 3) + 1          # integers are accepted
    x2 = np.ones((2, 3), dtype=np.float32)
    k = eoc_ntk.kernel(x, depth=3, a=0.5, b=0.5, kind=kind)
    assert k.shape == (4, 4) and k.dtype == np.float64
    k = eoc_ntk.kernel(x, x2, depth=3, a=0.5, b=0.5, kind=kind)
    assert k.shape == (4, 2) and k.dtype == np.float64
    k = eoc_ntk.kernel(x[:1], depth=3, a=0.5, b=0.5, kind=kind)
    assert k.shape == (1, 1)


def test_nested_lists_are_accepted():
    x = [[1.0, 2.0], [3.0, -1.0]]
    assert np.array_equal(eoc_ntk.kernel(x, depth=4, a=0.5, b=0.5), eoc_ntk.kernel(np.array(x), depth=4, a=0.5, b=0.5))


def test_angle_kind_at_depth_one_is_input_angle():
    x = dataset("random")
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    expected = np.arccos(np.clip(u @ u.T, -1, 1))
    np.fill_diagonal(expected, 0.0)
    got = eoc_ntk.kernel(x, depth=1, a=0.5, b=0.5, kind="angle")
    assert np.allclose(got, expected, atol=1e-7)
    assert np.all(np.diag(got) == 0.0)


@pytest.mark.parametrize("act", ["relu", "abs", "delta_0.1", "flipped_scaled_0.9"])
@pytest.mark.parametrize("depth", [1, 2, 10])
def test_icd_entries_of_duplicates_are_exact_diagonal(act, depth):
    """Entries with input angle exactly 0 use theta_l(0) = l: the ICD matrix equals K there."""
    a, b = ACTIVATIONS[act]
    x = dataset("structured")[:3]          # x0, x0, 2 x0
    k = eoc_ntk.kernel(x, depth=depth, a=a, b=b)
    icd = eoc_ntk.kernel(x, depth=depth, a=a, b=b, kind="icd")
    assert np.allclose(icd, k, rtol=1e-14, atol=0)


# --- large inputs: the core switches to depth-independent interpolants ------------------------
# For sigma_b = 0, depth >= 2 and Delta > 0 the core evaluates theta_l and alpha_l from
# interpolants in the angle once a matrix has >= 4096 entries (kernels.py: "auto"). The
# datasets above are padded with random filler rows to 64 rows; the block of the original
# rows must match the reference exactly as well (the reference entries are cached).

_FILLER = np.random.default_rng(99).standard_normal((64, 5))


def _padded(x, n=64):
    return np.concatenate([x, _FILLER[: n - x.shape[0]]])


INTERP_CASES = ([(act, "eoc", ds, (2, 3, 10, 50, 200)) for act in ACTIVATIONS for ds in DATASETS]
                + [(act, "off_eoc", ds, (2, 10, 50)) for act in ACTIVATIONS for ds in _OFF_EOC_SETS["off_eoc"]])


@pytest.mark.parametrize("act, hyper, ds, depths", INTERP_CASES, ids=[f"{a}-{h}-{d}" for a, h, d, _ in INTERP_CASES])
def test_large_kernel_block_matches_reference(act, hyper, ds, depths):
    x = dataset(ds)
    n = x.shape[0]
    settings = _settings(act, hyper)
    big = _padded(x)
    for depth in depths:
        ref = {kind: ref_kernel(x, depth=depth, kind=kind, **settings) for kind in ("ntk", "angle")}
        d = np.diag(ref["ntk"])
        what = f"{act}/{hyper}/{ds}/l={depth} padded to {big.shape[0]}"
        got = eoc_ntk.kernel(big, depth=depth, kind="ntk", **settings)
        assert_kernel_close(got[:n, :n], ref["ntk"], d, d, what=what)
        # Cross form too: 64 x 64 entries.
        got = eoc_ntk.kernel(big, big[::-1], depth=depth, kind="ntk", **settings)[:n, ::-1][:, :n]
        assert_kernel_close(got, ref["ntk"], d, d, what=what + " (cross)")
        nonzero = (np.linalg.norm(x, axis=1) > 0)[:, None] & (np.linalg.norm(x, axis=1) > 0)[None, :]
        if nonzero.all() or settings["sigma_b"] != 0.0:
            got = eoc_ntk.kernel(big, depth=depth, kind="angle", **settings)
            assert_angle_close(got[:n, :n], ref["angle"], nonzero, what=what + " angle")
        if delta_of(settings["a"], settings["b"]) > 0.0:
            ref_icd = ref_kernel(x, depth=depth, kind="icd", **settings)
            parallel = ref_parallel_mask(x)
            mask = nonzero & (parallel | (ref["angle"] > 1e-10))
            got = eoc_ntk.kernel(big, depth=depth, kind="icd", **settings)
            assert_icd_close(got[:n, :n], ref_icd, np.where(parallel, 1.0, ref["angle"]), mask, what=what + " icd")


def _angle_fan():
    """Row 0 at angle 0, then 63 unit vectors at angles log-spaced towards both 0 and pi."""
    t = np.concatenate([np.logspace(-9, np.log10(np.pi / 2), 32),
                        np.pi - np.logspace(-9, np.log10(np.pi / 2 * 0.97), 31)])
    return np.stack([np.cos(np.concatenate([[0.0], t])), np.sin(np.concatenate([[0.0], t]))], axis=1)


@pytest.mark.parametrize("act", ["relu", "abs", "delta_0.1"])
def test_interpolated_kernel_over_the_whole_angle_range(act):
    """Boundary layers near 0 and pi (width ~1/l) through the interpolants, at every depth."""
    x = _angle_fan()
    settings = _settings(act, "eoc")
    for depth in (2, 10, 50, 200):
        ref = ref_kernel(x[:1], x, depth=depth, **settings)[0]
        ref_angle = ref_kernel(x[:1], x, depth=depth, kind="angle", **settings)[0]
        got = eoc_ntk.kernel(x, depth=depth, **settings)
        d = np.full(x.shape[0], ref[0])
        assert_kernel_close(got[:1], ref[None, :], d[:1], d, what=f"{act} l={depth}")
        got_angle = eoc_ntk.kernel(x, depth=depth, kind="angle", **settings)
        assert_angle_close(got_angle[:1], ref_angle[None, :], what=f"{act} l={depth} angle")


def test_large_matrices_consistent_with_small_ones():
    """Row blocks and threads (n > 256 rows) give the entries of the small exact path."""
    rng = np.random.default_rng(17)
    x = rng.standard_normal((300, 8))
    x[5] = x[3] + 1e-7
    x2 = rng.standard_normal((100, 8))
    idx = np.array([0, 3, 5, 255, 256, 257, 280, 299])
    for settings in (dict(a=0.5, b=0.5), dict(a=0.0, b=1.0), dict(a=0.5, b=0.5, sigma_b=0.2)):
        for kind in ("ntk", "nngp"):
            k = eoc_ntk.kernel(x, depth=20, kind=kind, **settings)
            assert np.array_equal(k, k.T)
            small = eoc_ntk.kernel(x[idx], depth=20, kind=kind, **settings)
            d = np.diag(small)
            assert_kernel_close(k[np.ix_(idx, idx)], small, d, d, rtol=1e-12, what=f"{settings} {kind}")
            cross = eoc_ntk.kernel(x, x2, depth=20, kind=kind, **settings)
            small = eoc_ntk.kernel(x[idx], x2[:7], depth=20, kind=kind, **settings)
            d2 = np.diag(eoc_ntk.kernel(x2[:7], depth=20, kind=kind, **settings))
            assert_kernel_close(cross[idx, :7], small, d, d2, rtol=1e-12, what=f"{settings} {kind} cross")


@pytest.mark.parametrize("kind", ["ntk", "nngp", "icd", "angle"])
@pytest.mark.parametrize("scale", [1.0, 1e-150, 1e100])
def test_square_kernels_are_exactly_symmetric(kind, scale):
    """K(x) equals its transpose bit for bit (the distributed tiles rely on it; rows and columns
    carry their norms' mantissas in a different rounding order, so this once failed at 4 % of the
    entries of the diagonal blocks)."""
    x = np.random.default_rng(3).standard_normal((300, 7)) * scale
    k = eoc_ntk.kernel(x, depth=4, a=0.5, b=0.5, kind=kind)
    np.testing.assert_array_equal(k, k.T)

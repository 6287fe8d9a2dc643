"""Depth-independent evaluation of the EOC kernel through interpolants in one variable.

At ``sigma_b = 0`` the normalised NTK ``theta_l`` and the last-layer angle are functions of
the input angle alone (docs/math.md §3). We tabulate them per ``(depth, Delta)`` as piecewise
polynomials of

    ``u = log((1 - rho) / (1 + rho)) = 2 log tan(alpha / 2)``,

a variable that stretches both ends of ``[0, pi]`` logarithmically, so the boundary layers
of deep networks near ``alpha = 0`` and ``alpha = pi`` (width about ``1/l``) become smooth.
``[-U_MAX, U_MAX]`` is cut into intervals of width ``WIDTH``; each holds a degree-9
polynomial fitted at its Chebyshev nodes to the exact recursion, built only when data
falls into it, and checked against the exact recursion at a point between the nodes.
An interval whose check fails is never used: its entries go to the exact recursion, as
do entries with ``|u| > U_MAX`` (angles below about 4e-9 from 0 or pi).
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Iterable

import numpy as np

from eoc_ntk.core._numerics.recursion import eoc_recursion, eoc_recursion_steps

__all__ = ["AngleInterpolant", "eoc_interpolant", "u_to_angles", "U_MAX", "WIDTH", "INTERVALS", "DEGREE",
           "sample_points", "node_solve", "evaluate_pieces", "horner_pieces", "CHECK_POINT"]

U_MAX = 40.0
WIDTH = 0.5
INTERVALS = int(round(2 * U_MAX / WIDTH))
DEGREE = 9
_DEGREE = DEGREE
_NODES = np.cos(np.pi * (np.arange(_DEGREE + 1) + 0.5) / (_DEGREE + 1))


def _inverse(a: list[list[float]]) -> np.ndarray:
    """The inverse of a small square matrix by Gauss-Jordan elimination with partial pivoting in
    Python floats: the same bits on every machine and BLAS thread setting (LAPACK's ``inv``
    rounds differently with OpenBLAS's threads, and the power basis amplifies a last-bit change
    of ``_VANDER_INV`` to ~1e-13 of theta)."""
    n = len(a)
    m = [list(row) + [1.0 if i == j else 0.0 for j in range(n)] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        p = m[col][col]
        m[col] = [v / p for v in m[col]]
        for r in range(n):
            if r != col and m[r][col] != 0.0:
                f = m[r][col]
                m[r] = [v - f * w for v, w in zip(m[r], m[col], strict=True)]
    return np.array([row[n:] for row in m])


_VANDER_INV = _inverse([[float(node) ** k for k in range(_DEGREE + 1)] for node in _NODES])
_CHECK = 0.5 * (_NODES[4] + _NODES[5])  # halfway between two nodes, where the error peaks
#: Accepted error of theta_l, relative to theta_l(0) = l.
TOLERANCE = 1e-12
#: Accepted absolute error of u_l; alpha_l's relative error is at most half of it.
TOLERANCE_U = 2e-12
_CHUNK = 1 << 15


def u_to_angles(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, beta)`` with ``u = 2 log tan(alpha/2)`` and ``beta = pi - alpha``, each accurate."""
    half = 0.5 * np.asarray(u, dtype=np.float64)
    with np.errstate(over="ignore"):
        return 2.0 * np.arctan(np.exp(half)), 2.0 * np.arctan(np.exp(-half))


def angles_to_u(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """``2 log tan(alpha/2)`` from both angles, accurate at both ends."""
    with np.errstate(divide="ignore"):
        return 2.0 * (np.log(np.sin(0.5 * alpha)) - np.log(np.sin(0.5 * beta)))


def interval_of(u: np.ndarray) -> np.ndarray:
    """Interval index of each ``u`` with ``|u| <= U_MAX`` (callers mask the rest)."""
    i = ((u + U_MAX) * (1.0 / WIDTH)).astype(np.intp)
    np.clip(i, 0, INTERVALS - 1, out=i)
    return i


class AngleInterpolant:
    """``theta_l(u)`` and ``u_l(u)`` for one ``(depth, Delta)``, built interval by interval."""

    def __init__(self, depth: int, delta: float):
        self.depth, self.delta = depth, delta
        shape = (_DEGREE + 1, INTERVALS)
        self._theta = np.zeros(shape)
        self._u_last = np.zeros(shape)
        #: 1 where the interval is built and checked, 0 where not built, -1 where it failed.
        self.state = np.zeros(INTERVALS, dtype=np.int8)
        self._lock = threading.Lock()

    def _exact(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        alpha, beta = u_to_angles(u)
        rec = eoc_recursion(alpha, beta, self.depth, self.delta, ("theta", "alpha", "beta"))
        return rec["theta"], angles_to_u(rec["alpha"], rec["beta"])

    def ensure(self, intervals: np.ndarray) -> None:
        """Build (once) every interval listed, in one vectorised pass of the recursion."""
        with self._lock:
            todo = self._todo(intervals)
            if todo.size:
                self._fit(todo, *self._exact(_sample_points(todo)))

    def _todo(self, intervals: np.ndarray) -> np.ndarray:
        todo: np.ndarray = np.unique(np.asarray(intervals, dtype=np.intp))
        pending: np.ndarray = todo[self.state[todo] == 0]
        return pending

    def _fit(self, todo: np.ndarray, theta: np.ndarray, u_last: np.ndarray) -> None:
        """Fit and check the intervals ``todo`` from exact values at :func:`_sample_points`."""
        k = todo.size * (_DEGREE + 1)
        self._theta[:, todo] = _node_solve(theta[:k].reshape(todo.size, -1))
        self._u_last[:, todo] = _node_solve(u_last[:k].reshape(todo.size, -1))
        t = np.full(todo.size, _CHECK)
        err_theta = np.abs(_horner(self._theta, todo, t) - theta[k:]) / self.depth
        err_u = np.abs(_horner(self._u_last, todo, t) - u_last[k:])
        good = (err_theta <= TOLERANCE) & (err_u <= TOLERANCE_U)
        self.state[todo] = np.where(good, 1, -1)

    def theta(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``theta_l`` at ``u`` (``|u| <= U_MAX``) and the mask of entries it is valid for.

        Entries in intervals not built or whose check failed are not valid: callers send
        them to the exact recursion.
        """
        return _evaluate(self._theta, self.state, u)

    def coefficients(self, which: str = "theta") -> np.ndarray:
        """Power-basis coefficients, shape ``(DEGREE + 1, INTERVALS)``: on interval ``j``,
        ``f(u) = sum_k c[k, j] t^k`` with ``t = 2 ((u + U_MAX) / WIDTH - j) - 1`` in ``[-1, 1]``.
        Only columns with ``state == 1`` are valid. Read-only view."""
        coef = self._theta if which == "theta" else self._u_last
        view = coef.view()
        view.flags.writeable = False
        return view

    def u_last(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``u_l = 2 log tan(alpha_l / 2)`` at ``u`` and the validity mask (as :meth:`theta`)."""
        return _evaluate(self._u_last, self.state, u)


def _node_solve(values: np.ndarray) -> np.ndarray:
    """Power-basis coefficients, shape (DEGREE + 1, m), of the m intervals whose values at the
    Chebyshev nodes are the rows of ``values`` (m, DEGREE + 1): ``_VANDER_INV @ values.T``,
    summed term by term in a fixed order rather than by BLAS, so that the coefficients (whose
    last bits the power basis amplifies to ~1e-13 of theta) are the same in every process:
    OpenBLAS rounds a 10 x 10 product differently when started on one thread (as in Dask
    workers) than on two, and kernels computed there differed by 5e-14."""
    out = np.zeros((_DEGREE + 1, values.shape[0]))
    for j in range(_DEGREE + 1):
        out += _VANDER_INV[:, j:j + 1] * values[:, j]
    return out


def _sample_points(todo: np.ndarray) -> np.ndarray:
    """``u`` at the Chebyshev nodes of each interval in ``todo`` (interval-major), then one
    check point per interval: the layout :meth:`AngleInterpolant._fit` reads."""
    mids = -U_MAX + WIDTH * (todo + 0.5)
    nodes = (mids[:, None] + 0.5 * WIDTH * _NODES[None, :]).ravel()
    return np.concatenate([nodes, mids + 0.5 * WIDTH * _CHECK])


def ensure_depths(interpolants: Iterable[AngleInterpolant], intervals: np.ndarray) -> None:
    """:meth:`AngleInterpolant.ensure` for interpolants of one ``Delta`` at many depths, from
    one pass of the recursion to the deepest (instead of one pass per depth)."""
    interpolants = sorted(interpolants, key=lambda i: i.depth)
    if not interpolants:
        return
    todos = {interp.depth: interp._todo(intervals) for interp in interpolants}
    union = np.unique(np.concatenate(list(todos.values())))
    if union.size == 0:
        return
    delta = interpolants[0].delta
    alpha, beta = u_to_angles(_sample_points(union))
    by_depth = {interp.depth: interp for interp in interpolants}
    columns = np.arange(_DEGREE + 1)
    for depth, theta, alpha_l, beta_l in eoc_recursion_steps(alpha, beta, interpolants[-1].depth, delta):
        interp = by_depth.get(depth)
        if interp is None or todos[depth].size == 0:
            continue
        # Rows of the interval-major layout that belong to this interpolant's intervals.
        where = np.searchsorted(union, todos[depth])
        nodes = (where[:, None] * (_DEGREE + 1) + columns[None, :]).ravel()
        pick = np.concatenate([nodes, union.size * (_DEGREE + 1) + where])
        u_last = angles_to_u(alpha_l[pick], beta_l[pick])
        with interp._lock:
            if np.all(interp.state[todos[depth]] == 0):
                interp._fit(todos[depth], theta[pick], u_last)


def _horner(coef: np.ndarray, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
    acc = np.take(coef[_DEGREE], idx)
    for j in range(_DEGREE - 1, -1, -1):
        acc *= t
        acc += np.take(coef[j], idx)
    return acc


def _evaluate(coef: np.ndarray, state: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = np.empty_like(u)
    valid = np.empty(u.shape, dtype=bool)
    for s in range(0, u.size, _CHUNK):
        f = (u[s:s + _CHUNK] + U_MAX) * (1.0 / WIDTH)
        i = f.astype(np.intp)
        np.clip(i, 0, INTERVALS - 1, out=i)
        t = (f - i) * 2.0 - 1.0
        out[s:s + _CHUNK] = _horner(coef, i, t)
        valid[s:s + _CHUNK] = np.take(state, i) == 1
    return out, valid


@functools.lru_cache(maxsize=64)
def eoc_interpolant(depth: int, delta: float) -> AngleInterpolant:
    """The cached :class:`AngleInterpolant` of ``(depth, Delta)`` (the 64 most recently used, about
    26 kB each; ``functools.lru_cache`` keeps its bookkeeping thread-safe, and each interpolant
    builds its intervals under its own lock)."""
    return AngleInterpolant(int(depth), float(delta))


#: The piecewise machinery, shared with the smooth activations' interpolants
#: (:mod:`eoc_ntk.core._numerics.smooth_interp`): sample layout, fit, evaluation and check point.
sample_points = _sample_points
node_solve = _node_solve
evaluate_pieces = _evaluate
horner_pieces = _horner
CHECK_POINT = _CHECK

"""Independent 50-digit reference implementation of docs/math.md's kernels, for the tests only.

Written from the specification (docs/math.md §2 and §5), deliberately *not* from ``eoc_ntk``:
it runs the general recursion in correlation ("rho") form,

- ``Sigma_1(x,x') = sigma_w^2 <x,x'> / m0 + sigma_b^2``,  ``Theta_1 = Sigma_1``,
- ``rho_k = Sigma_k(x,x') / sqrt(q_k(x) q_k(x'))``,
- ``Sigma_{k+1} = sigma_w^2 sqrt(q q') (a^2 rho + b^2 (2/pi)(sqrt(1-rho^2) + rho asin(rho))) + sigma_b^2``,
- ``Sigma_dot_{k+1} = sigma_w^2 (a^2 + b^2 (2/pi) asin(rho))``,
- ``Theta_{k+1} = Sigma_{k+1} + Theta_k Sigma_dot_{k+1}``,
- ``q_{k+1} = Sigma_{k+1}(x, x)`` (the same formula at ``rho = 1``),

for every ``sigma_w, sigma_b`` (no angle form, no EOC shortcut, no interpolant), in a private
mpmath context with 50 significant digits. Inputs and parameters are converted *exactly*
(``mpf`` of the float64 values), so the result is the true kernel of the float64 data the
core receives, to ~1e-45 relative; comparing the core with it measures the core's whole
error, including that of forming angles from rounded data.

The default ``sigma_w`` is the exact EOC value ``1/sqrt(a^2+b^2)`` of the float64 ``a, b``.

The only place where the rho form needs care is ``rho`` exactly ``+-1`` (duplicates,
``x`` and ``c x``): the exact first-layer correlation is detected with exact arithmetic
and ``rho`` is clamped to ``[-1, 1]`` so that ``asin`` stays real.

Costs: one pair and one layer take ~0.07 ms (pure-Python mpmath). Trajectories (all layers
up to the largest depth asked so far) are cached per (parameters, pair) for the whole test
session, so every smaller depth and every kind is then free, in any test file. Keep ``n``
<= ~8 and depth <= ~200 (or sample a few entries of a larger matrix).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import mpmath
import numpy as np

__all__ = [
    "MP", "RefModel", "ref_kernel", "ref_kernel_mp", "ref_eigenvalues", "ref_spectrum",
    "ref_theta_unit", "ref_parallel_mask", "to_mp_rows",
]

#: A private mpmath context: the tests never touch mpmath's global precision.
MP = mpmath.MPContext()
MP.dps = 50

_TWO_OVER_PI = 2 / MP.pi


@dataclass(frozen=True)
class RefModel:
    """Hyperparameters as exact float64 values; mp versions are derived on demand."""

    a: float
    b: float
    sigma_w: float | None = None
    sigma_b: float = 0.0

    @property
    def a2(self):
        return MP.mpf(self.a) ** 2

    @property
    def b2(self):
        return MP.mpf(self.b) ** 2

    @property
    def sw2(self):
        if self.sigma_w is None:
            return 1 / (self.a2 + self.b2)
        return MP.mpf(self.sigma_w) ** 2

    @property
    def sb2(self):
        return MP.mpf(self.sigma_b) ** 2

    @property
    def delta(self):
        return self.b2 / (self.a2 + self.b2)

    @property
    def chi(self):
        return self.sw2 * (self.a2 + self.b2)


@dataclass
class _Trajectory:
    """Layers 1..len of one pair: Sigma_k(x,x'), Theta_k, rho_k, q_k(x), q_k(x')."""

    sigma: list = field(default_factory=list)
    theta: list = field(default_factory=list)
    rho: list = field(default_factory=list)
    qx: list = field(default_factory=list)
    qy: list = field(default_factory=list)
    parallel: bool = False      # input angle exactly 0 (x' = c x, c > 0)
    rho_one: bool = False       # rho_k = 1 at every layer


_CACHE: dict = {}


def to_mp_rows(x) -> list[tuple]:
    """Rows of a float64 array as tuples of Python floats (exact; the cache key)."""
    arr = np.asarray(x, dtype=np.float64)
    return [tuple(float(v) for v in row) for row in arr]


def _exactly_parallel(x: tuple, y: tuple) -> bool:
    """True when ``y = c x`` with ``c > 0`` exactly (products of floats are exact at 50 digits)."""
    mx = [MP.mpf(v) for v in x]
    my = [MP.mpf(v) for v in y]
    k = max(range(len(mx)), key=lambda i: abs(mx[i]))
    if mx[k] == 0 or my[k] == 0:
        return False
    if any(mx[i] * my[k] != my[i] * mx[k] for i in range(len(mx))):
        return False
    return (mx[k] > 0) == (my[k] > 0)


def _clamp(rho):
    if rho > 1:
        return MP.mpf(1)
    if rho < -1:
        return MP.mpf(-1)
    return rho


def _trajectory(model: RefModel, x: tuple, y: tuple, depth: int) -> _Trajectory:
    key = (model, x, y)
    traj = _CACHE.get(key)
    if traj is None:
        key_t = (model, y, x)
        if key_t in _CACHE:          # the kernel is symmetric: reuse the transposed pair
            t = _CACHE[key_t]
            traj = _Trajectory(t.sigma, t.theta, t.rho, t.qy, t.qx, t.parallel, t.rho_one)
            _CACHE[key] = traj
    if traj is None:
        traj = _Trajectory()
        m0 = len(x)
        sw2, sb2 = model.sw2, model.sb2
        mx = [MP.mpf(v) for v in x]
        my = [MP.mpf(v) for v in y]
        dot = MP.fsum(u * v for u, v in zip(mx, my, strict=True))
        sigma = sw2 * dot / m0 + sb2
        qx = sw2 * MP.fsum(u * u for u in mx) / m0 + sb2
        qy = sw2 * MP.fsum(v * v for v in my) / m0 + sb2
        traj.parallel = x == y or _exactly_parallel(x, y)
        # rho stays exactly 1 along the recursion for x' = x, and for x' = c x when sigma_b = 0
        # (with a bias the two norms differ and the correlation drops below 1).
        traj.rho_one = x == y or (traj.parallel and sb2 == 0)
        traj.sigma.append(sigma)
        traj.theta.append(sigma)
        traj.qx.append(qx)
        traj.qy.append(qy)
        traj.rho.append(_rho(sigma, MP.sqrt(qx * qy), traj.rho_one))
        _CACHE[key] = traj
    a2, b2, sw2, sb2 = model.a2, model.b2, model.sw2, model.sb2
    # Constants folded out of the loop (the loop is the reference's whole cost):
    # Sigma_{k+1} = sqrt(q q') (c_a rho + c_b (sqrt(1-rho^2) + rho asin(rho))) + sigma_b^2,
    # Sigma_dot_{k+1} = c_a + c_b asin(rho), with c_a = sigma_w^2 a^2, c_b = sigma_w^2 b^2 2/pi.
    c_a, c_b, chi = sw2 * a2, sw2 * b2 * _TWO_OVER_PI, sw2 * (a2 + b2)
    half_pi = MP.pi / 2
    sq = MP.sqrt(traj.qx[-1] * traj.qy[-1])
    while len(traj.sigma) < depth:
        rho, qx, qy = traj.rho[-1], traj.qx[-1], traj.qy[-1]
        if rho == 1:        # the same formulas at rho = 1 (asin(1) = pi/2), without the cost
            sigma = sq * chi + sb2
            sigma_dot = chi
        else:
            root = MP.sqrt(1 - rho * rho)
            # asin(rho) = atan(rho / sqrt(1 - rho^2)): the same number, 5x cheaper in mpmath.
            asin = MP.atan(rho / root) if root != 0 else (half_pi if rho > 0 else -half_pi)
            sigma = sq * (c_a * rho + c_b * (root + rho * asin)) + sb2
            sigma_dot = c_a + c_b * asin
        theta = sigma + traj.theta[-1] * sigma_dot
        # q_{k+1} = Sigma_{k+1}(x, x): the same expectation at rho = 1, i.e. chi q + sigma_b^2.
        qx_next = chi * qx + sb2
        qy_next = chi * qy + sb2
        sq = MP.sqrt(qx_next * qy_next)
        traj.sigma.append(sigma)
        traj.theta.append(theta)
        traj.qx.append(qx_next)
        traj.qy.append(qy_next)
        traj.rho.append(_rho(sigma, sq, traj.rho_one))
    return traj


def _rho(sigma, sq, rho_one: bool):
    """``rho = Sigma(x, x') / sqrt(q q')`` (``sq = sqrt(q q')``), clamped to [-1, 1]."""
    if rho_one:
        return MP.mpf(1)
    if sq == 0:
        # A zero input with sigma_b = 0: every Sigma and Theta with it is 0, and rho only
        # ever multiplies sqrt(q q') = 0 or Theta = 0; any value in [-1, 1] gives 0.
        return MP.mpf(0)
    return _clamp(sigma / sq)


def _entry(model: RefModel, x: tuple, y: tuple, depth: int, kind: str):
    t = _trajectory(model, x, y, depth)
    k = depth - 1
    if kind == "ntk":
        return t.theta[k]
    if kind == "nngp":
        return t.sigma[k]
    if kind == "angle":
        return MP.acos(t.rho[k])
    if kind == "icd":
        if model.sigma_b != 0:
            raise ValueError("icd reference defined for sigma_b = 0 only")
        scale = MP.sqrt(t.qx[k] * t.qy[k])
        if t.parallel:
            return scale * depth
        alpha = MP.acos(t.rho[k])
        if alpha == 0:      # distinct inputs merged by the network (abs with x, -x): unbounded
            return MP.inf
        return scale * 3 * MP.pi / (8 * model.delta * alpha)
    raise ValueError(kind)


def ref_kernel_mp(x, x2=None, *, depth: int, a: float, b: float, sigma_w=None, sigma_b=0.0,
                  kind: str = "ntk") -> list[list]:
    """Unnormalised kernel as a list of lists of mpf (50 digits)."""
    model = RefModel(float(a), float(b), None if sigma_w is None else float(sigma_w), float(sigma_b))
    rows = to_mp_rows(x)
    cols = rows if x2 is None else to_mp_rows(x2)
    return [[_entry(model, r, c, int(depth), kind) for c in cols] for r in rows]


def ref_kernel(x, x2=None, **kwargs) -> np.ndarray:
    """:func:`ref_kernel_mp` rounded to float64."""
    k = ref_kernel_mp(x, x2, **kwargs)
    return np.array([[float(v) for v in row] for row in k], dtype=np.float64)


def ref_parallel_mask(x, x2=None) -> np.ndarray:
    """``mask[i, j]``: input angle exactly 0 (``x2_j = c x_i`` with ``c > 0``, exact arithmetic)."""
    rows = to_mp_rows(x)
    cols = rows if x2 is None else to_mp_rows(x2)
    return np.array([[r == c or _exactly_parallel(r, c) for c in cols] for r in rows], dtype=bool)


def ref_eigenvalues(matrix: list[list]) -> list:
    """Ascending eigenvalues (mpf) of a symmetric mp matrix, by mpmath's 50-digit Jacobi solver."""
    m = MP.matrix(matrix)
    evals = MP.eigsy(m, eigvals_only=True)
    return sorted(evals[i] for i in range(m.rows))


def ref_spectrum(x, **kwargs) -> list:
    """Ascending eigenvalues (mpf) of the paper's matrix ``K/n`` (docs/math.md §5)."""
    k = ref_kernel_mp(x, **kwargs)
    n = len(k)
    return ref_eigenvalues([[v / n for v in row] for row in k])


def ref_theta_unit(angle, depth: int, a: float, b: float):
    """``theta_l`` of two unit vectors in R^2 at the given angle (an mpf or a float), at the EOC.

    Built directly in mp (not from float64 data), for the reference values of docs/math.md §6.
    """
    model = RefModel(float(a), float(b))
    t = MP.mpf(angle)
    # Unit inputs in R^2, scaled so that q = 1: |x|^2 / ((a^2+b^2) m0) = 1.
    s = MP.sqrt(2 * (model.a2 + model.b2))
    sw2 = model.sw2
    sigma = sw2 * (s * s * MP.cos(t)) / 2
    theta = sigma
    rho = MP.cos(t)
    q = sw2 * s * s / 2
    a2, b2 = model.a2, model.b2
    for _ in range(depth - 1):
        asin = MP.asin(rho)
        sigma = sw2 * q * (a2 * rho + b2 * _TWO_OVER_PI * (MP.sqrt(1 - rho * rho) + rho * asin))
        theta = sigma + theta * sw2 * (a2 + b2 * _TWO_OVER_PI * asin)
        q = sw2 * q * (a2 + b2)
        rho = _clamp(sigma / q)
    return theta / q


def clear_cache() -> None:
    _CACHE.clear()


"""Gaussian moments of smooth activations: the expectations of one layer of the kernel recursion.

For centred jointly Gaussian ``(u, v)`` with ``E[u^2] = q1``, ``E[v^2] = q2``, ``E[u v] = c``
one hidden layer needs

- ``E[phi(u) phi(v)]`` (NNGP) and ``E[phi'(u) phi'(v)]`` (the NTK's derivative kernel),
- and on the diagonal ``E[phi(sqrt(q) z)^2]``, ``E[phi'(sqrt(q) z)^2]`` (``z ~ N(0, 1)``).

Closed forms (Williams 1997, "Computing with infinite networks"; the arcsine kernel):

- ``E[erf(u) erf(v)] = (2/pi) asin(2c / sqrt((1 + 2 q1)(1 + 2 q2)))``,
- ``E[erf'(u) erf'(v)] = (4/pi) / sqrt((1 + 2 q1)(1 + 2 q2) - 4 c^2)``.

GELU ``phi(x) = x Phi(x)`` has closed forms too (Tsuchida, Pearce, van der Heide, Roosta & Gallagher 2021,
"Avoiding kernel fixed points: computing with ELU and GELU infinite networks"; neural-tangents' ``Gelu``),
here in the form derived by writing ``x Phi(x) = E_a[x 1{a <= x}]`` and taking Gaussian orthant moments,
with ``t_i = 1 + q_i`` and ``D = t1 t2 - c^2 >= 1 + q1 + q2``:

- ``E[gelu(u) gelu(v)] = c/4 + c asin(c / sqrt(t1 t2)) / (2 pi) + (q1 q2 D + c^2) / (2 pi t1 t2 sqrt(D))``,
- ``E[gelu'(u) gelu'(v)] = 1/4 + asin(c / sqrt(t1 t2)) / (2 pi) + c / (2 pi sqrt(D))
  + c ((2 - q1 q2) D + c^2) / (2 pi t1 t2 D^(3/2))`` (the ``c``-derivative of the first: Price's theorem).

Every other activation (tanh, SiLU, custom) goes through the trapezoidal rule for the
Gaussian weight on ``[-Z_MAX, Z_MAX]`` (the truncated mass is ``2e-22``) in whitened coordinates
``u = sqrt(q1) z1``, ``v = sqrt(q2) (rho z1 + sqrt(1 - rho^2) z2)``,
``rho = c / sqrt(q1 q2)``, with a tensor rule of ``N x N`` nodes. For an integrand analytic in the strip ``|Im z| < d``
the trapezoidal rule of step ``h`` errs by ``O(exp(-2 pi d / h))`` (Trefethen & Weideman 2014,
"The exponentially convergent trapezoidal rule"): geometric in ``N``, unlike Gauss-Hermite,
whose nodes spread to ``sqrt(2N)`` and converge only like ``exp(-c d sqrt(N))`` (tanh has poles
at ``z = +-i pi / (2 sqrt(q))``, so ``d = pi / (2 sqrt(q))``). The order ``N`` is chosen per
largest variance from the ladder :data:`ORDERS` as the first one whose one-dimensional moments
``E[phi^2]`` and ``E[phi'^2]`` agree with the next order's to :data:`QUADRATURE_TOL` (relative):
that difference is the error estimate reported by :func:`quadrature_order`. Past the last order
the estimate is returned as it is and callers may refuse.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from scipy import special

__all__ = ["BUILTIN", "ORDERS", "QUADRATURE_TOL", "CLOSED_FORMS", "diag_moments", "gelu_moments", "pair_moments",
           "quadrature_order"]

Fn = Callable[[np.ndarray], np.ndarray]

_SQRT_2_OVER_PI = float(np.sqrt(2.0 / np.pi))
_INV_SQRT_2PI = float(1.0 / np.sqrt(2.0 * np.pi))
_TWO_OVER_SQRT_PI = float(2.0 / np.sqrt(np.pi))


def _erf(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = special.erf(x)
    return out


def _derf(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = _TWO_OVER_SQRT_PI * np.exp(-x * x)
    return out


def _tanh(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.tanh(x)
    return out


def _dtanh(x: np.ndarray) -> np.ndarray:
    c = 1.0 / np.cosh(np.minimum(np.abs(x), 350.0))
    out: np.ndarray = c * c
    return out


def _gelu(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = x * special.ndtr(x)
    return out


def _dgelu(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = special.ndtr(x) + x * _INV_SQRT_2PI * np.exp(-0.5 * x * x)
    return out


def _silu(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = x * special.expit(x)
    return out


def _dsilu(x: np.ndarray) -> np.ndarray:
    s = special.expit(x)
    out: np.ndarray = s * (1.0 + x * special.expit(-x))
    return out


#: ``name -> (phi, phi')`` of the built-in smooth activations (``gelu(x) = x Phi(x)``,
#: ``silu(x) = x / (1 + exp(-x))``).
BUILTIN: dict[str, tuple[Fn, Fn]] = {
    "erf": (_erf, _derf),
    "tanh": (_tanh, _dtanh),
    "gelu": (_gelu, _dgelu),
    "silu": (_silu, _dsilu),
}

#: Built-ins whose moments are in closed form.
CLOSED_FORMS = ("erf", "gelu")

#: Numbers of nodes tried, per dimension.
ORDERS = (33, 49, 65, 97, 129, 193, 257, 385, 513)
#: Relative agreement of consecutive orders accepted as converged.
QUADRATURE_TOL = 1e-15
#: Half-width of the truncated line: ``exp(-Z_MAX^2 / 2) = 2e-22``.
Z_MAX = 10.0


@functools.lru_cache(maxsize=None)
def _rule(order: int) -> tuple[np.ndarray, np.ndarray]:
    """``order`` equispaced nodes on ``[-Z_MAX, Z_MAX]`` and trapezoid weights of the standard normal
    density (``E[f(z)] ~ sum w_k f(z_k)``), normalised to sum 1."""
    z = np.linspace(-Z_MAX, Z_MAX, order)
    w = np.exp(-0.5 * z * z)
    return z, w / w.sum()


def _diag_quad(fn: Fn, q: np.ndarray, order: int) -> np.ndarray:
    z, w = _rule(order)
    vals = fn(np.sqrt(q)[..., None] * z)
    out: np.ndarray = (vals * vals) @ w
    return out


def quadrature_order(phi: Fn, dphi: Fn, q_max: float) -> tuple[int, float]:
    """``(N, estimate)``: the quadrature order for variances up to ``q_max`` and its relative error estimate.

    The estimate is ``max |M_N - M_N'| / |M_N'|`` over ``M = E[phi(sqrt(q) z)^2], E[phi'(sqrt(q) z)^2]``
    at ``q = q_max`` and at ``q_max / 4``, ``N'`` the next order of :data:`ORDERS`.
    """
    qs = np.array([q_max, 0.25 * q_max])
    prev: np.ndarray | None = None
    last, est = ORDERS[0], float("inf")
    for order in ORDERS:
        cur = np.concatenate([_diag_quad(phi, qs, order), _diag_quad(dphi, qs, order)])
        if prev is not None:
            scale = np.maximum(np.abs(cur), np.finfo(np.float64).tiny)
            est = float(np.max(np.abs(cur - prev) / scale))
            if est <= QUADRATURE_TOL:
                return last, est
        prev, last = cur, order
    return ORDERS[-1], est


def diag_moments(key: str | None, phi: Fn, dphi: Fn, q: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """``(E[phi(sqrt(q) z)^2], E[phi'(sqrt(q) z)^2])`` for an array of variances ``q``.

    ``key`` is the built-in activation's name (None for a custom one); erf in closed form:
    ``(2/pi) asin(2q / (1 + 2q))`` and ``(4/pi) / sqrt(1 + 4q)``.
    """
    q = np.asarray(q, dtype=np.float64)
    if key == "erf":
        return (2.0 / np.pi) * np.arcsin(2.0 * q / (1.0 + 2.0 * q)), (4.0 / np.pi) / np.sqrt(1.0 + 4.0 * q)
    if key == "gelu":
        return gelu_moments(q, q, q)
    return _diag_quad(phi, q, order), _diag_quad(dphi, q, order)


def gelu_moments(q1: np.ndarray, q2: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GELU's closed forms (module docstring) for covariances ``[[q1, c], [c, q2]]``."""
    t1, t2 = 1.0 + q1, 1.0 + q2
    tt = t1 * t2
    # (1 + q1)(1 + q2) - c^2 as a sum of non-negative terms, exact to rounding at any variance:
    # 1 + q1 + q2 + (p - c)(p + c) with p = sqrt(q1 q2) >= |c| (tt - c^2 cancels once q >> 1).
    p = np.sqrt(q1 * q2)
    d = 1.0 + q1 + q2 + np.maximum(p - c, 0.0) * (p + c)
    sd = np.sqrt(d)
    # arcsin(c / sqrt(tt)) as atan2(c, sqrt(tt - c^2)): arcsin is ill-conditioned next to 1, atan2 is not.
    angle = np.arctan2(c, sd) / (2.0 * np.pi)
    nngp = 0.25 * c + c * angle + (q1 * q2 * d + c * c) / (2.0 * np.pi * tt * sd)
    # c / (2 pi sd) + c ((2 - q1 q2) d + c^2) / (2 pi tt d sd), over one denominator: tt + 2 - q1 q2 =
    # 3 + q1 + q2, so no two terms of size sqrt(q) cancel (they did, to O(1), once q >> 1).
    deriv = 0.25 + angle + c * (d * (3.0 + q1 + q2) + c * c) / (2.0 * np.pi * tt * d * sd)
    return nngp, deriv


def pair_moments(key: str | None, phi: Fn, dphi: Fn, q1: np.ndarray, q2: np.ndarray, c: np.ndarray,
                 order: int) -> tuple[np.ndarray, np.ndarray]:
    """``(E[phi(u) phi(v)], E[phi'(u) phi'(v)])`` for covariances ``[[q1, c], [c, q2]]`` (arrays of one shape).

    erf in closed form (arcsine kernel); otherwise an ``order x order`` trapezoidal rule in
    whitened coordinates (see the module docstring), ``order`` from :func:`quadrature_order`.
    GELU in closed form (:func:`gelu_moments`).
    """
    if key == "gelu":
        return gelu_moments(q1, q2, c)
    if key == "erf":
        a1, a2 = 1.0 + 2.0 * q1, 1.0 + 2.0 * q2
        s = np.sqrt(a1 * a2)
        ratio = np.clip(2.0 * c / s, -1.0, 1.0)
        # (1 + 2 q1)(1 + 2 q2) - 4 c^2 as a sum that keeps its accuracy near duplicates:
        # a1 a2 - 4c^2 = (s - 2c)(s + 2c).
        det = (s - 2.0 * c) * (s + 2.0 * c)
        return (2.0 / np.pi) * np.arcsin(ratio), (4.0 / np.pi) / np.sqrt(det)
    z, w = _rule(order)
    sq1, sq2 = np.sqrt(q1), np.sqrt(q2)
    rho = np.clip(c / (sq1 * sq2), -1.0, 1.0)
    perp = np.sqrt(np.maximum((1.0 - rho) * (1.0 + rho), 0.0))
    e_phi = np.zeros(np.shape(c))
    e_dphi = np.zeros(np.shape(c))
    for zi, wi in zip(z, w, strict=True):
        v = sq2[..., None] * (rho[..., None] * zi + perp[..., None] * z)
        u = sq1 * zi
        e_phi += wi * phi(u) * (phi(v) @ w)
        e_dphi += wi * dphi(u) * (dphi(v) @ w)
    return e_phi, e_dphi

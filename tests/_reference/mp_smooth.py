"""Independent 50-digit reference for smooth activations (erf, tanh, GELU, SiLU), for the tests only.

Regenerate the committed values with (minutes; run it in the background)::

    python -m tests._reference.mp_smooth            # writes tests/_reference/smooth_values.json

Written from the specification (docs/math.md §2; the recursion of the smooth-activation issue),
deliberately *not* from ``eoc_ntk``. For an activation ``phi``:

- ``Sigma_1(x,x') = sigma_w^2 <x,x'> / m0 + sigma_b^2``,  ``Theta_1 = Sigma_1``, ``q_l(x) = Sigma_l(x,x)``,
- ``Sigma_{l+1} = sigma_w^2 E[phi(u) phi(v)] + sigma_b^2``,
- ``Sigma_dot_{l+1} = sigma_w^2 E[phi'(u) phi'(v)]``,
- ``Theta_{l+1} = Sigma_{l+1} + Sigma_dot_{l+1} Theta_l``,

with ``(u, v) ~ N(0, [[q_l(x), Sigma_l], [Sigma_l, q_l(x')]])``: per-input variances carried exactly.
The edge of chaos for a given ``sigma_b`` is the pair ``(sigma_w, q*)`` with
``q* = sigma_w^2 E[phi(sqrt(q*) z)^2] + sigma_b^2`` and ``chi = sigma_w^2 E[phi'(sqrt(q*) z)^2] = 1``,
i.e. ``(q* - sigma_b^2) E[phi'^2] = E[phi^2]`` solved for ``q*`` (then ``sigma_w^2 = (q* - sigma_b^2) / E[phi^2]``).

Three independent ways to the Gaussian expectations, all in a private mpmath context with 60
working digits (50 + 10 guard):

1. :func:`expect2_quad`: quadrature in whitened coordinates, ``u = sqrt(S11) z1``,
   ``v = (S12 / sqrt(S11)) z1 + sqrt(S22 - S12^2 / S11) z2``, with ``mpmath.quad`` (tanh-sinh) in
   both variables. General and slow (seconds): the cross-check.
2. :func:`erf_closed`: the arcsine closed forms of erf, ``E[erf u erf v] = (2/pi) asin(2 S12 /
   sqrt((1 + 2 S11)(1 + 2 S22)))``, ``E[erf' u erf' v] = (4/pi) / sqrt((1 + 2 S11)(1 + 2 S22) -
   4 S12^2)``: checks 1. and 3.
3. The recursion engine: Mehler's formula in normalised Hermite polynomials ``h_k = He_k / sqrt(k!)``,
   ``E[phi(sqrt(a) z) phi(sqrt(b) z')] = sum_k A_k(a) A_k(b) rho^k`` for ``corr(z, z') = rho``, with
   ``A_k(q) = E[phi(sqrt(q) z) h_k(z)]``, and (Gaussian integration by parts,
   ``E[f'(z) He_k(z)] = E[f(z) He_{k+1}(z)]``)
   ``E[phi'(u) phi'(v)] = sum_k (k+1) A_{k+1}(a) A_{k+1}(b) rho^k / sqrt(a b)``.
   The ``A_k`` are one-dimensional integrals, done by the trapezoidal rule on a grid fine enough for
   the activation's strip of analyticity (exponentially convergent), in fixed-point integers for speed.
   The truncation ``K`` is certified per variance: by Parseval the tails at ``rho = 1``,
   ``E[phi^2] - sum_{k<=K} A_k^2`` and ``E[phi'^2] q - sum_{k<K} (k+1) A_{k+1}^2`` (with ``E[.]``
   by direct 1-D quadrature), bound the tails at every ``|rho| <= 1`` (Cauchy-Schwarz); both must be
   below ``1e-55`` relative, or the engine refuses.

Feasibility over 1000 layers: the coefficients are computed per input and per layer while that
input's variance moves; once ``|q_{l+1} - q_l| <= 1e-58 q_l`` (the variance map is a contraction at
the points used, so ``q_l`` equals its limit to 57 digits) the same coefficients serve every later
layer. Every layer's series is still summed at that layer's correlation: no interpolation in ``rho``,
no closed form over depth.

Scope: the stored points keep every per-input variance bounded. At the edge of chaos GELU and SiLU
have a *repelling* ``q*`` (the variance map's slope there is about 1.10 and 1.07 at
``sigma_b = 0.1``): inputs with ``q_1 < q*`` fall to a lower, attracting fixed point, and inputs with
``q_1 > q*`` grow geometrically without bound. The stored inputs are small enough (norms <= 0.35 in
R^3) that every trajectory stays bounded; :func:`ref_pair` refuses a trajectory that leaves
``q <= 50``, where the fixed Hermite grid would no longer be certified.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import mpmath

__all__ = [
    "MP", "ACTIVATIONS", "DEPTHS", "JSON_PATH", "phi", "dphi", "expect1", "expect2_quad",
    "expect2_mehler", "erf_closed", "eoc", "hermite", "ref_pair", "generate",
]

#: Private context: the tests never touch mpmath's global precision.
MP = mpmath.MPContext()
MP.dps = 60

ACTIVATIONS = ("erf", "tanh", "gelu", "silu")
DEPTHS = (1, 2, 3, 5, 10, 30, 100, 300, 1000)
JSON_PATH = Path(__file__).with_name("smooth_values.json")

_TAIL_TOL = MP.mpf(10) ** -55        # certified relative tail of the Hermite series
_CONVERGED = MP.mpf(10) ** -58       # |q_{l+1} - q_l| / q_l below which the coefficients are frozen
_TINY_STEP = MP.mpf(10) ** -8       # |q / q_base - 1| * K below which moments come from Parseval
_Q_MAX = 50                          # largest variance the fixed Hermite grid is certified for
_FIX = 300                           # fixed-point fraction bits of the Hermite recurrence
_HALF_WIDTH = 26                     # grid half-width: |phi h_k| npdf <= |phi| exp(-z^2/4) < 1e-70 beyond


# ----------------------------------------------------------------------------- activations

def phi(name: str, t):
    """The activation at ``t`` (mpf)."""
    if name == "erf":
        return MP.erf(t)
    if name == "tanh":
        return MP.tanh(t)
    if name == "gelu":
        return t * MP.ncdf(t)
    if name == "silu":
        return t / (1 + MP.exp(-t))
    raise ValueError(f"unknown activation {name!r}")


def dphi(name: str, t):
    """The activation's derivative at ``t`` (mpf), written out by hand."""
    if name == "erf":
        return 2 / MP.sqrt(MP.pi) * MP.exp(-t * t)
    if name == "tanh":
        return 1 / MP.cosh(t) ** 2
    if name == "gelu":
        return MP.ncdf(t) + t * MP.npdf(t)
    if name == "silu":
        s = 1 / (1 + MP.exp(-t))
        return s * (1 + t * (1 - s))
    raise ValueError(f"unknown activation {name!r}")


def _strip(name: str, q) -> float:
    """Half-width (in z) of a strip where ``phi(sqrt(q) z)`` is analytic and tame, 90 % of the pole."""
    s = math.sqrt(float(q))
    if name == "tanh":                      # poles of tanh at i pi/2
        return min(3.0, 0.9 * math.pi / (2 * s))
    if name == "silu":                      # poles of the logistic function at i pi
        return min(3.0, 0.9 * math.pi / s)
    return 3.0 if s <= 1 else 3.0 / s       # entire; erf grows like exp(q y^2) in the strip


# ----------------------------------------------------------------------------- 1-D and 2-D expectations

@dataclass(frozen=True)
class _Grid:
    """Folded trapezoidal grid ``z_j = j h`` (j >= 0) with weights ``h npdf(z_j)`` (halved at 0)."""

    h: object
    z: tuple
    w: tuple


_GRIDS: dict = {}


def _grid(name: str, q, kmax: int) -> _Grid:
    d = _strip(name, q)
    # Trapezoid error ~ exp(-2 pi d / h) times the growth of h_k in the strip, exp(sqrt(2k) d).
    h = 2 * math.pi * d / (math.log(10) * (MP.dps + 8) + math.sqrt(2 * kmax) * d + d * d)
    n = int(math.ceil(_HALF_WIDTH / h))
    h = _HALF_WIDTH / n                      # round so that the grid ends at the half-width
    key = (n, kmax)
    grid = _GRIDS.get(key)
    if grid is None:
        hm = MP.mpf(_HALF_WIDTH) / n
        z = tuple(j * hm for j in range(n + 1))
        c = hm / MP.sqrt(2 * MP.pi)
        w = tuple((c / 2 if j == 0 else c) * MP.exp(-zj * zj / 2) for j, zj in enumerate(z))
        grid = _GRIDS[key] = _Grid(hm, z, w)
    return grid


def expect1(f, q, name: str = "erf"):
    """``E[f(sqrt(q) z)]``, ``z ~ N(0, 1)``, by the trapezoidal rule (``name`` picks the grid)."""
    g = _grid(name, q, 0)
    s = MP.sqrt(q)
    return MP.fsum(wj * (f(s * zj) + f(-s * zj)) for zj, wj in zip(g.z, g.w, strict=True))


def expect2_quad(f, g, s11, s12, s22, strip: float = 2.5):
    """``E[f(u) g(v)]`` for ``(u, v) ~ N(0, [[s11, s12], [s12, s22]])`` by quadrature in whitened
    coordinates: ``u = sqrt(s11) z1``, ``v = c z1 + r z2`` with ``c = s12 / sqrt(s11)``,
    ``r = sqrt(s22 - c^2)``, ``z1, z2`` independent standard normals.

    Nested trapezoidal rule on ``[-L, L]^2`` at the context's precision: step
    ``h = 2 pi strip / (ln 10 (dps + 5))`` (error ``~ exp(-2 pi strip / h)`` for integrands analytic
    in ``|Im z| < strip``), ``L`` where the Gaussian is below ``10^-(dps+5)``. Independent of the
    Hermite machinery; ``O((2L/h)^2)`` evaluations, for cross-checks only.
    """
    s11, s12, s22 = MP.mpf(s11), MP.mpf(s12), MP.mpf(s22)
    a = MP.sqrt(s11)
    c = s12 / a
    r = MP.sqrt(max(s22 - c * c, MP.zero))
    digits = MP.dps + 5
    h = MP.mpf(2 * math.pi * strip / (math.log(10) * digits))
    n = int(math.ceil(math.sqrt(2 * math.log(10) * digits) / float(h)))
    nodes = [j * h for j in range(-n, n + 1)]
    weights = [h * MP.npdf(z) for z in nodes]
    total = MP.zero
    for z1, w1 in zip(nodes, weights, strict=True):
        inner = MP.fsum(w2 * g(c * z1 + r * z2) for z2, w2 in zip(nodes, weights, strict=True)) if r != 0 \
            else g(c * z1)
        total += w1 * f(a * z1) * inner
    return total


def erf_closed(s11, s12, s22):
    """``(E[erf u erf v], E[erf' u erf' v])``: the arcsine closed forms (Williams 1997)."""
    s11, s12, s22 = MP.mpf(s11), MP.mpf(s12), MP.mpf(s22)
    p = (1 + 2 * s11) * (1 + 2 * s22)
    return 2 / MP.pi * MP.asin(2 * s12 / MP.sqrt(p)), 4 / MP.pi / MP.sqrt(p - 4 * s12 * s12)


# ----------------------------------------------------------------------------- Hermite coefficients

@dataclass(frozen=True)
class Hermite:
    """``A_k = E[phi(sqrt(q) z) h_k(z)]``, k = 0..len-1, certified by Parseval (see the module doc).

    ``k_needed``: the shortest length whose tails are below tolerance for this ``q``; a pair of
    variances uses the larger of the two (Cauchy-Schwarz needs both tails small at the same K).
    """

    name: str
    q: object
    a: tuple
    k_needed: int
    e_phi2: object      # E[phi(sqrt(q) z)^2]
    e_dphi2: object     # E[phi'(sqrt(q) z)^2]


def _coefficients(name: str, q, kmax: int):
    """``(A_0..A_kmax, E[phi^2], E[phi'^2])`` on the folded grid, recurrence in fixed point."""
    g = _grid(name, q, kmax)
    s = MP.sqrt(q)
    one = 1 << _FIX
    sq = [int(MP.ldexp(MP.sqrt(k), _FIX)) for k in range(kmax + 2)]
    inv = [0] + [int(MP.ldexp(1 / MP.sqrt(k), _FIX)) for k in range(1, kmax + 2)]
    acc = [0] * (kmax + 1)
    terms2, dterms2 = [], []
    for zj, wj in zip(g.z, g.w, strict=True):
        fp, fm = phi(name, s * zj), phi(name, -s * zj)
        dp, dm = dphi(name, s * zj), dphi(name, -s * zj)
        terms2.append(wj * (fp * fp + fm * fm))
        dterms2.append(wj * (dp * dp + dm * dm))
        even = int(MP.ldexp(wj * (fp + fm), _FIX))
        odd = int(MP.ldexp(wj * (fp - fm), _FIX))
        z = int(MP.ldexp(zj, _FIX))
        hkm, hk = 0, one
        for k in range(kmax + 1):
            acc[k] += ((odd if k & 1 else even) * hk) >> _FIX
            hkm, hk = hk, (((z * hk) >> _FIX) - ((sq[k] * hkm) >> _FIX)) * inv[k + 1] >> _FIX
    return [MP.ldexp(v, -_FIX) for v in acc], MP.fsum(terms2), MP.fsum(dterms2)


_HERMITE: dict = {}


def hermite(name: str, q, length: int = 0) -> Hermite:
    """Certified Hermite coefficients of ``phi(sqrt(q) z)``, at least ``length`` of them (cached)."""
    q = MP.mpf(q)
    key = (name, q)
    herm = _HERMITE.get(key)
    if herm is not None and len(herm.a) >= length:
        return herm
    if not 0 < q <= _Q_MAX:
        raise ValueError(f"variance q={MP.nstr(q, 8)} outside (0, {_Q_MAX}]: not certified")
    kmax = max(160, length)
    while True:
        a, e2, d2 = _coefficients(name, q, kmax)
        needed = _needed(a, e2, d2, q)
        if needed is not None:
            herm = _HERMITE[key] = Hermite(name, q, tuple(a), needed, e2, d2)
            return herm
        if kmax >= 2600:
            raise ValueError(f"{name}: Hermite series at q={MP.nstr(q, 8)} not certified by K=2600")
        kmax *= 2


def _needed(a: list, e2, d2, q) -> int | None:
    """Shortest prefix length whose Parseval tails (``phi`` and ``phi'``) are below tolerance."""
    # tail(K) = E[phi^2] - sum_{k<K} A_k^2, dtail(K) = q E[phi'^2] - sum_{k<K-1} (k+1) A_{k+1}^2.
    tail = e2 - MP.fsum(v * v for v in a)
    dtail = d2 * q - MP.fsum((k + 1) * a[k + 1] ** 2 for k in range(len(a) - 1))
    tol, dtol = _TAIL_TOL * e2, _TAIL_TOL * d2 * q
    if abs(tail) > tol or abs(dtail) > dtol:
        return None
    k = len(a)
    while k > 2:
        drop, ddrop = a[k - 1] ** 2, (k - 1) * a[k - 1] ** 2
        if abs(tail + drop) > tol or abs(dtail + ddrop) > dtol:
            break
        tail, dtail, k = tail + drop, dtail + ddrop, k - 1
    return k


def expect2_mehler(ha: Hermite, hb: Hermite, rho):
    """``(E[phi(u) phi(v)], E[phi'(u) phi'(v)])`` by Mehler's series, ``corr(u, v) = rho``.

    Summed to ``K = max(k_needed)`` terms; both coefficient lists must be that long.
    """
    n = max(ha.k_needed, hb.k_needed)
    if len(ha.a) < n or len(hb.a) < n:
        raise ValueError("coefficient lists shorter than the certified length: extend with hermite(..., length)")
    p = MP.one
    s0 = s1 = MP.zero
    for k in range(n):
        s0 += ha.a[k] * hb.a[k] * p
        if k + 1 < n:
            s1 += (k + 1) * ha.a[k + 1] * hb.a[k + 1] * p
        p *= rho
    return s0, s1 / MP.sqrt(ha.q * hb.q)


# ----------------------------------------------------------------------------- edge of chaos

def eoc(name: str, sigma_b) -> tuple:
    """``(sigma_w, q*)`` at the edge of chaos for ``sigma_b`` (mpf, 60 digits)."""
    sb2 = MP.mpf(sigma_b) ** 2

    def gap(q):
        e2 = expect1(lambda t: phi(name, t) ** 2, q, name)
        d2 = expect1(lambda t: dphi(name, t) ** 2, q, name)
        return (q - sb2) * d2 - e2

    lo = sb2 * MP.mpf("1.05") if sb2 > 0 else MP.mpf("1e-6")
    glo = gap(lo)
    hi = lo
    for _ in range(200):
        hi = hi * MP.mpf("1.25")
        ghi = gap(hi)
        if ghi * glo < 0:
            break
        lo, glo = hi, ghi
    else:
        raise ValueError(f"{name}: no edge of chaos found for sigma_b={sigma_b}")
    q = MP.findroot(gap, (lo, hi), solver="anderson")
    sw2 = (q - sb2) / expect1(lambda t: phi(name, t) ** 2, q, name)
    return MP.sqrt(sw2), q


# ----------------------------------------------------------------------------- the recursion

@dataclass
class _Variance:
    """Per-input trajectory: ``q_l`` and the coefficients used at layer ``l`` (l = 1, 2, ...)."""

    q: list = field(default_factory=list)
    herm: list = field(default_factory=list)
    frozen: bool = False


def _rescaled(base: Hermite, q) -> Hermite | None:
    """Coefficients at ``q`` from those at ``base.q`` by the Hermite multiplication theorem.

    With ``g^2 = q / base.q`` and ``d = g^2 - 1``,
    ``h_n(g z) = sum_i g^(n-2i) d^i sqrt(n! / (n-2i)!) / (i! 2^i) h_{n-2i}(z)``, so
    ``A_j(q) = g^j sum_i A_{j+2i}(base) d^i sqrt((j+2i)! / j!) / (i! 2^i)``. The result is certified
    like a direct computation (Parseval against 1-D quadrature at ``q``), or None.
    """
    name = base.name
    g2 = q / base.q
    n = len(base.a)
    one = 1 << _FIX
    fa = [int(MP.ldexp(v, _FIX)) for v in base.a]
    d = int(MP.ldexp(g2 - 1, _FIX))
    g = int(MP.ldexp(MP.sqrt(g2), _FIX))
    root = _sqrt_table(n + 2)
    # Stop a sum once the factor cannot move any A by 1e-66 (A_k <= sqrt(E[phi^2])).
    floor = int(MP.ldexp(MP.mpf(10) ** -66 / MP.sqrt(base.e_phi2), _FIX))
    out = []
    gj = one
    for j in range(n):
        total, coef, i = fa[j] * one, one, 0
        while j + 2 * (i + 1) < n:
            i += 1
            k = j + 2 * i
            coef = ((((coef * d) >> _FIX) * root[k - 1] >> _FIX) * root[k] >> _FIX) // (2 * i)
            total += fa[k] * coef
            if abs(coef) < floor:
                break
        out.append((gj * (total >> _FIX)) >> _FIX)
        gj = (gj * g) >> _FIX
    if abs(g2 - 1) * n < _TINY_STEP:
        # A step this small moves every A_j by a convergent, certified-in-the-base amount; the
        # moments follow by Parseval (tails <= 1e-55 relative, those of the base).
        e2 = MP.ldexp(sum(v * v for v in out), -2 * _FIX)
        d2 = MP.ldexp(sum((k + 1) * out[k + 1] ** 2 for k in range(n - 1)), -2 * _FIX) / q
        herm = _HERMITE[(name, q)] = Hermite(name, q, tuple(MP.ldexp(v, -_FIX) for v in out),
                                              base.k_needed, e2, d2)
        return herm
    out = [MP.ldexp(v, -_FIX) for v in out]
    e2 = expect1(lambda t: phi(name, t) ** 2, q, name)
    d2 = expect1(lambda t: dphi(name, t) ** 2, q, name)
    needed = _needed(out, e2, d2, q)
    if needed is None:
        return None
    herm = _HERMITE[(name, q)] = Hermite(name, q, tuple(out), needed, e2, d2)
    return herm


_ROOTS: list = []


def _sqrt_table(n: int) -> list:
    """``sqrt(k) * 2^_FIX`` as integers, k = 0..n-1 (grown on demand)."""
    while len(_ROOTS) < n:
        _ROOTS.append(int(MP.ldexp(MP.sqrt(len(_ROOTS)), _FIX)))
    return _ROOTS


def _variance(name: str, sw2, sb2, q1, depth: int, traj: _Variance) -> _Variance:
    if not traj.q:
        traj.q.append(q1)
    base = None
    while len(traj.herm) < depth:
        q = traj.q[len(traj.herm)]
        if traj.frozen:
            traj.herm.append(traj.herm[-1])
            traj.q.append(q)
            continue
        herm = None
        if base is not None and abs(q / base.q - 1) * len(base.a) < 2:
            herm = _rescaled(base, q)
        if herm is None:
            herm = base = hermite(name, q, int(1.2 * base.k_needed) if base is not None else 0)
        traj.herm.append(herm)
        q_next = sw2 * herm.e_phi2 + sb2
        if abs(q_next - q) <= _CONVERGED * q:
            traj.frozen = True
            q_next = q
        if q_next > _Q_MAX:
            raise ValueError(f"{name}: the variance grows past {_Q_MAX} (q={MP.nstr(q_next, 8)} "
                             f"at layer {len(traj.q) + 1}); this reference covers bounded trajectories")
        traj.q.append(q_next)
    return traj


_VARIANCES: dict = {}


def ref_pair(name: str, sigma_w, sigma_b, x: tuple, y: tuple, depth: int) -> list:
    """``[(Sigma_l, Theta_l)]`` for l = 1..depth (mpf) of the pair ``(x, y)`` (tuples of floats).

    ``sigma_w``, ``sigma_b``: mpf or float (floats are converted exactly).
    """
    sw2, sb2 = MP.mpf(sigma_w) ** 2, MP.mpf(sigma_b) ** 2
    m0 = len(x)
    mx, my = [MP.mpf(v) for v in x], [MP.mpf(v) for v in y]
    sigma = sw2 * MP.fsum(u * v for u, v in zip(mx, my, strict=True)) / m0 + sb2
    trajs = []
    for row in (mx, my):
        q1 = sw2 * MP.fsum(u * u for u in row) / m0 + sb2
        key = (name, sw2, sb2, q1)
        trajs.append(_variance(name, sw2, sb2, q1, depth, _VARIANCES.setdefault(key, _Variance())))
    tx, ty = trajs
    same = x == y
    theta = sigma
    out = [(sigma, theta)]
    for layer in range(1, depth):
        hx, hy = tx.herm[layer - 1], ty.herm[layer - 1]
        qx, qy = tx.q[layer - 1], ty.q[layer - 1]
        if same:
            e_pp, e_dd = hx.e_phi2, hx.e_dphi2
        else:
            n = max(hx.k_needed, hy.k_needed)
            hx, hy = hermite(name, hx.q, n), hermite(name, hy.q, n)
            rho = sigma / MP.sqrt(qx * qy)
            e_pp, e_dd = expect2_mehler(hx, hy, max(min(rho, MP.one), -MP.one))
        sigma = sw2 * e_pp + sb2
        theta = sigma + sw2 * e_dd * theta
        out.append((sigma, theta))
    return out


# ----------------------------------------------------------------------------- the stored values

def stored_inputs() -> dict:
    """Named inputs in R^3 (floats): small norms (see the module doc), near-duplicate, near-opposite."""
    x0 = (0.2, -0.1, 0.15)
    # A unit vector orthogonal to x0, to tilt x0 by ~1e-6 rad (near-duplicate) and -1.3 x0 by ~1e-6.
    perp = (0.1 / math.sqrt(0.05), 0.2 / math.sqrt(0.05), 0.0)
    n0 = math.sqrt(sum(v * v for v in x0))
    near = tuple(v + 1e-6 * n0 * p for v, p in zip(x0, perp, strict=True))
    opp = tuple(-1.3 * v + 1.3e-6 * n0 * p for v, p in zip(x0, perp, strict=True))
    return {
        "x0": x0,
        "x1": (-0.05, 0.3, 0.12),
        "x0_near": near,
        "x0_opposite": opp,
        "x_small": (0.05, 0.02, -0.03),
    }


#: (label, first input, second input)
PAIRS = (
    ("generic", "x0", "x1"),
    ("diagonal", "x0", "x0"),
    ("near_duplicate", "x0", "x0_near"),
    ("near_opposite", "x0", "x0_opposite"),
    ("different_norms", "x1", "x_small"),
)

#: (label, sigma_w or None for the EOC, sigma_b)
POINTS = (("eoc", None, 0.1), ("off_eoc", 1.2, 0.3))


def _digits(v) -> str:
    return MP.nstr(v, 40, min_fixed=-5, max_fixed=5)


def generate(names=ACTIVATIONS, depths=DEPTHS, log=sys.stderr) -> dict:
    """The stored table for ``names`` (see :data:`PAIRS`, :data:`POINTS`)."""
    inputs = stored_inputs()
    out = {
        "doc": "Written by `python -m tests._reference.mp_smooth` (tests/_reference/mp_smooth.py); "
               "values as 40-significant-digit strings of the 60-digit reference.",
        "inputs": {k: [repr(v) for v in x] for k, x in inputs.items()},
        "depths": list(depths),
        "activations": {},
    }
    for name in names:
        per = out["activations"][name] = {}
        for label, sw, sb in POINTS:
            t0 = time.time()
            if sw is None:
                sigma_w, q_star = eoc(name, sb)
            else:
                sigma_w, q_star = MP.mpf(sw), None
            entry = per[label] = {
                "sigma_w": _digits(sigma_w) if sw is None else repr(sw),
                "sigma_b": repr(sb),
                "q_star": None if q_star is None else _digits(q_star),
                "pairs": {},
            }
            for plabel, a, b in PAIRS:
                vals = ref_pair(name, sigma_w, sb, inputs[a], inputs[b], max(depths))
                entry["pairs"][plabel] = {
                    "x": a, "y": b,
                    "nngp": {str(d): _digits(vals[d - 1][0]) for d in depths},
                    "ntk": {str(d): _digits(vals[d - 1][1]) for d in depths},
                }
            print(f"{name} {label}: {time.time() - t0:.1f} s", file=log, flush=True)
    return out


def main(argv: list[str]) -> None:
    """All activations into :data:`JSON_PATH`; with names given, that part of the table to stdout."""
    if argv:
        print(json.dumps(generate(tuple(argv)), indent=1))
        return
    data = generate()
    JSON_PATH.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {JSON_PATH}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])

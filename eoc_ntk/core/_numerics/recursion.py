"""Layer-by-layer recursion of the infinite-width kernels in stable angle form.

Every function here assumes checked inputs. Angles travel as pairs ``(alpha, beta)``
with ``beta = pi - alpha`` so that both ends of ``[0, pi]`` keep full relative accuracy
(docs/math.md §4). Notation: ``g(t) = sin(t) - t*cos(t)``, ``Delta = b^2/(a^2+b^2)``.

One hidden layer maps the normalised correlation ``rho = cos(alpha)`` to
``rho' = cos(alpha) + Delta*(2/pi)*g(alpha)`` (docs/math.md §3), computed as

- ``1 - rho' = 2 sin^2(alpha/2) - Delta (2/pi) g(alpha)``                       for alpha <= pi/2,
- ``1 - rho' = 2(1-Delta) + (2 Delta - 1) 2 sin^2(beta/2) - Delta (2/pi) g(beta)`` otherwise,
- ``1 + rho' = 2 sin^2(beta/2) + Delta (2/pi) g(alpha)`` (a sum of non-negative terms),

and the derivative kernel factor is ``rho_dot' = 1 - (2 Delta/pi) alpha
= (1 - Delta) + Delta (beta - alpha)/pi``.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import numpy as np

_TWO_OVER_PI = 2.0 / np.pi
# Series g(t) = sum_{k>=1} (-1)^(k+1) 2k t^(2k+1) / (2k+1)!, used below this angle.
_G_SERIES_MAX = 0.5
_G_SERIES = tuple(
    (-1.0) ** (k + 1) * 2.0 * k / float(np.prod(np.arange(1, 2 * k + 2, dtype=np.float64)))
    for k in range(1, 11)
)


def g(t: np.ndarray) -> np.ndarray:
    """``g(t) = sin(t) - t cos(t)`` without cancellation for small ``t`` (t in [0, pi])."""
    t = np.asarray(t, dtype=np.float64)
    out: np.ndarray = np.sin(t) - t * np.cos(t)
    small = t < _G_SERIES_MAX
    if np.any(small):
        ts = t[small]
        t2 = ts * ts
        acc = np.zeros_like(ts)
        for coef in reversed(_G_SERIES):
            acc = acc * t2 + coef
        out[small] = acc * t2 * ts
    return out


def _sin_half_sq2(t: np.ndarray) -> np.ndarray:
    """``2 sin^2(t/2) = 1 - cos(t)`` without cancellation."""
    s = np.sin(0.5 * t)
    return 2.0 * s * s


def hidden_layer(alpha: np.ndarray, beta: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """``(1 - rho', 1 + rho')`` after one hidden layer, both without cancellation."""
    one_plus = _sin_half_sq2(beta) + delta * _TWO_OVER_PI * g(alpha)
    if delta == 0.0:
        return _sin_half_sq2(alpha), one_plus
    wide = alpha > 0.5 * np.pi
    one_minus = np.empty_like(alpha)
    an = alpha[~wide]
    one_minus[~wide] = _sin_half_sq2(an) - delta * _TWO_OVER_PI * g(an)
    bw = beta[wide]
    one_minus[wide] = (2.0 * (1.0 - delta) + (2.0 * delta - 1.0) * _sin_half_sq2(bw)
                       - delta * _TWO_OVER_PI * g(bw))
    return one_minus, one_plus


def correlation(alpha: np.ndarray, beta: np.ndarray, delta: float) -> np.ndarray:
    """``rho' = cos(alpha) + Delta (2/pi) g(alpha)`` with full relative accuracy near both ends.

    For ``alpha > pi/2`` it is rewritten in ``beta = pi - alpha`` as
    ``(2 Delta - 1) cos(beta) + Delta (2/pi) g(beta)``: for ReLU (``Delta = 1/2``) near
    opposite inputs ``rho' = g(beta)/pi ~ beta^3/(3 pi)``, which ``(1 + rho') - (1 - rho')``
    would leave with an absolute error ``eps`` (a relative error of order 1 there).
    """
    out: np.ndarray = np.cos(alpha) + delta * _TWO_OVER_PI * g(alpha)
    wide = alpha > 0.5 * np.pi
    if np.any(wide):
        bw = beta[wide]
        out[wide] = (2.0 * delta - 1.0) * np.cos(bw) + delta * _TWO_OVER_PI * g(bw)
    return out


def derivative_factor(alpha: np.ndarray, beta: np.ndarray, delta: float) -> np.ndarray:
    """``rho_dot = 1 - (2 Delta / pi) alpha``, with full relative accuracy at both ends of [0, pi].

    For ``alpha > pi/2`` it is ``(1 - 2 Delta) + (2 Delta / pi) beta``: for ReLU near opposite
    inputs that is ``beta / pi`` exactly, where ``1 - (2 Delta/pi) alpha`` cancels.
    """
    out = 1.0 - (2.0 * delta / np.pi) * alpha
    wide = alpha > 0.5 * np.pi
    if np.any(wide):
        out[wide] = (1.0 - 2.0 * delta) + (2.0 * delta / np.pi) * beta[wide]
    return out


def angles_from(one_minus: np.ndarray, one_plus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Angles ``(alpha, beta)`` with ``cos(alpha) = rho`` from ``1 - rho`` and ``1 + rho``."""
    sm = np.sqrt(np.maximum(one_minus, 0.0))
    sp = np.sqrt(np.maximum(one_plus, 0.0))
    return 2.0 * np.arctan2(sm, sp), 2.0 * np.arctan2(sp, sm)


def eoc_recursion(alpha: np.ndarray, beta: np.ndarray, depth: int, delta: float,
                  want: tuple[str, ...] = ("theta",)) -> dict[str, np.ndarray]:
    """Normalised kernels of a ``depth``-layer MLP with ``sigma_b = 0`` as functions of the input angle.

    Parameters
    ----------
    alpha, beta : ndarray of any shape
        Input angles and their complements ``pi - alpha``.
    depth : int
        Number of weight layers ``l >= 1``.
    delta : float
        ``Delta`` in [0, 1].
    want : tuple of str
        Any of ``"theta"`` (NTK, ``theta_l``), ``"rho"`` (NNGP, ``rho_l = cos(alpha_l)``),
        ``"alpha"`` (last-layer angle ``alpha_l``), ``"beta"`` (``pi - alpha_l``).

    Returns
    -------
    dict of ndarray
        Arrays of the input shape. ``theta_1 = cos(alpha)``,
        ``theta_{k+1} = rho_{k+1} + theta_k * rho_dot_{k+1}`` (docs/math.md §3).
    """
    theta = np.cos(alpha)
    if delta == 0.0:  # linear activation: every layer keeps the angle, theta_l = l cos(alpha)
        out = {"theta": depth * theta, "rho": theta, "alpha": alpha, "beta": beta}
        return {key: out[key] for key in ("theta",) + tuple(want)}
    rho = theta.copy() if "rho" in want else None
    for _ in range(depth - 1):
        rho_dot = derivative_factor(alpha, beta, delta)
        one_minus, one_plus = hidden_layer(alpha, beta, delta)
        rho_next = correlation(alpha, beta, delta)
        theta *= rho_dot
        theta += rho_next
        if rho is not None:
            rho = rho_next
        alpha, beta = angles_from(one_minus, one_plus)
    out = {"theta": theta}
    if rho is not None:
        out["rho"] = rho
    if "alpha" in want:
        out["alpha"] = alpha
    if "beta" in want:
        out["beta"] = beta
    return out


def eoc_recursion_all_depths(alpha: np.ndarray, beta: np.ndarray, max_depth: int,
                             delta: float) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(depth, theta_depth, alpha_depth)`` for depth = 1..max_depth in one pass."""
    for depth, theta, angle, _ in eoc_recursion_steps(alpha, beta, max_depth, delta):
        yield depth, theta, angle


def eoc_recursion_steps(alpha: np.ndarray, beta: np.ndarray, max_depth: int,
                        delta: float) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(depth, theta_depth, alpha_depth, beta_depth)`` for depth = 1..max_depth in one pass."""
    theta = np.cos(alpha)
    yield 1, theta, alpha, beta
    for depth in range(2, max_depth + 1):
        rho_dot = derivative_factor(alpha, beta, delta)
        one_minus, one_plus = hidden_layer(alpha, beta, delta)
        theta = correlation(alpha, beta, delta) + theta * rho_dot
        alpha, beta = angles_from(one_minus, one_plus)
        yield depth, theta, alpha, beta


def _affine(scale: float, n_i: np.ndarray, n_j: np.ndarray, one_minus_hat: np.ndarray, one_plus_hat: np.ndarray,
            sb2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Second moments and angle after ``h = sqrt(scale) W z + sigma_b beta``.

    The incoming activations have ``E[z z'] = n_i n_j rho_hat`` and ``E[z^2] = n_i^2``;
    ``rho_hat`` is given through ``1 -+ rho_hat``. Returns ``(Sigma, one_minus, one_plus)``
    of the outgoing pre-activations, with the differences of square roots rewritten so
    that nothing cancels (see docs/math.md §4 for the idea).
    """
    c = scale * n_i * n_j
    q_i = scale * n_i * n_i + sb2
    q_j = scale * n_j * n_j + sb2
    sq = np.sqrt(q_i * q_j)
    diff = n_i - n_j
    one_minus = (scale * sb2 * diff * diff / (sq + c + sb2) + c * one_minus_hat) / sq
    one_plus = ((scale * sb2 * (n_i * n_i + n_j * n_j) + sb2 * sb2) / (sq + c) + sb2 + c * one_plus_hat) / sq
    sigma = c * 0.5 * (one_plus_hat - one_minus_hat) + sb2
    return sigma, one_minus, one_plus


def general_recursion_steps(r_i: np.ndarray, r_j: np.ndarray, alpha: np.ndarray, beta: np.ndarray, m0: int,
                            max_depth: int, delta: float, a2b2: float, sw2: float,
                            sigma_b: float) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(depth, Theta, Sigma, alpha)`` for depth = 1..max_depth, any ``sigma_w, sigma_b`` (docs/math.md §2).

    Parameters
    ----------
    r_i, r_j : ndarray broadcastable to the pair shape
        Input norms ``|x|`` and ``|x'|``.
    alpha, beta : ndarray of the pair shape
        Input angles and complements.
    sw2 : float
        ``sigma_w^2``.

    Yields
    ------
    depth : int
    Theta, Sigma : ndarray
        Unnormalised NTK and NNGP of the ``depth``-layer network.
    alpha : ndarray
        Angle between the last layer's pre-activations.
    """
    sb2 = sigma_b * sigma_b
    chi = sw2 * a2b2
    # Layer 1 is an identity "activation" applied to the inputs, E[x x'] / m0.
    sigma, one_minus, one_plus = _affine(sw2 / m0, r_i, r_j, _sin_half_sq2(alpha), _sin_half_sq2(beta), sb2)
    theta = sigma
    q_i = sw2 * r_i * r_i / m0 + sb2
    q_j = sw2 * r_j * r_j / m0 + sb2
    alpha, beta = angles_from(one_minus, one_plus)
    yield 1, theta, sigma, alpha
    for depth in range(2, max_depth + 1):
        sigma_dot = chi * derivative_factor(alpha, beta, delta)
        om_hat, op_hat = hidden_layer(alpha, beta, delta)
        # E[phi(u)^2] = (a^2 + b^2) q, so the activations' "norms" are sqrt((a^2+b^2) q).
        sigma, one_minus, one_plus = _affine(sw2, np.sqrt(a2b2 * q_i), np.sqrt(a2b2 * q_j), om_hat, op_hat, sb2)
        theta = sigma + theta * sigma_dot
        q_i = chi * q_i + sb2
        q_j = chi * q_j + sb2
        alpha, beta = angles_from(one_minus, one_plus)
        yield depth, theta, sigma, alpha


def general_recursion(r_i: np.ndarray, r_j: np.ndarray, alpha: np.ndarray, beta: np.ndarray, m0: int, depth: int,
                      delta: float, a2b2: float, sw2: float, sigma_b: float) -> dict[str, np.ndarray]:
    """Last step of :func:`general_recursion_steps`: ``{"ntk", "nngp", "alpha"}`` at ``depth``."""
    steps = general_recursion_steps(r_i, r_j, alpha, beta, m0, depth, delta, a2b2, sw2, sigma_b)
    _, theta, sigma, angle = deque(steps, maxlen=1)[0]
    return {"ntk": theta, "nngp": sigma, "alpha": angle}

"""The layer recursion of :mod:`eoc_ntk.core._numerics.recursion` on torch tensors.

The same formulas, branch for branch (docs/math.md §2-4), in float64 on any torch device:
``g(t) = sin(t) - t cos(t)`` by its series below ``t = 0.5``, angles carried as pairs
``(alpha, beta = pi - alpha)``, ``1 -+ rho`` without cancellation. Callers hand in tensors of one
device and dtype float64; torch itself is imported by :mod:`eoc_ntk.core._numerics.torch_device`
only when the torch backend is asked for.
"""
from __future__ import annotations

import math

from eoc_ntk.core._numerics.torch_device import Tensor, load_torch

__all__ = ["eoc_recursion", "general_recursion", "u_to_angles", "angles_to_u", "ldexp"]

_TWO_OVER_PI = 2.0 / math.pi
# The series of g below this angle, as in the NumPy recursion:
# g(t) = sum_{k>=1} (-1)^(k+1) 2k t^(2k+1) / (2k+1)!.
_G_SERIES_MAX = 0.5
_G_SERIES = tuple((-1.0) ** (k + 1) * 2.0 * k / float(math.factorial(2 * k + 1)) for k in range(1, 11))


def g(t: Tensor) -> Tensor:
    """``sin(t) - t cos(t)`` for ``t`` in [0, pi], by its series where ``t < 0.5``."""
    torch = load_torch()
    out = torch.sin(t) - t * torch.cos(t)
    small = t < _G_SERIES_MAX
    if bool(small.any()):
        ts = t[small]
        t2 = ts * ts
        acc = torch.zeros_like(ts)
        for coef in reversed(_G_SERIES):
            acc = acc * t2 + coef
        out[small] = acc * t2 * ts
    return out


def _sin_half_sq2(t: Tensor) -> Tensor:
    """``2 sin^2(t/2) = 1 - cos(t)`` without cancellation."""
    s = load_torch().sin(0.5 * t)
    return 2.0 * s * s


def hidden_layer(alpha: Tensor, beta: Tensor, delta: float) -> tuple[Tensor, Tensor]:
    """``(1 - rho', 1 + rho')`` after one hidden layer, both without cancellation."""
    torch = load_torch()
    one_plus = _sin_half_sq2(beta) + delta * _TWO_OVER_PI * g(alpha)
    if delta == 0.0:
        return _sin_half_sq2(alpha), one_plus
    wide = alpha > 0.5 * math.pi
    one_minus = torch.empty_like(alpha)
    an = alpha[~wide]
    one_minus[~wide] = _sin_half_sq2(an) - delta * _TWO_OVER_PI * g(an)
    bw = beta[wide]
    one_minus[wide] = (2.0 * (1.0 - delta) + (2.0 * delta - 1.0) * _sin_half_sq2(bw)
                       - delta * _TWO_OVER_PI * g(bw))
    return one_minus, one_plus


def correlation(alpha: Tensor, beta: Tensor, delta: float) -> Tensor:
    """``rho' = cos(alpha) + Delta (2/pi) g(alpha)``, rewritten in ``beta`` past pi/2."""
    torch = load_torch()
    out = torch.cos(alpha) + delta * _TWO_OVER_PI * g(alpha)
    wide = alpha > 0.5 * math.pi
    if bool(wide.any()):
        bw = beta[wide]
        out[wide] = (2.0 * delta - 1.0) * torch.cos(bw) + delta * _TWO_OVER_PI * g(bw)
    return out


def derivative_factor(alpha: Tensor, beta: Tensor, delta: float) -> Tensor:
    """``rho_dot = 1 - (2 Delta / pi) alpha``, as ``(1 - 2 Delta) + (2 Delta / pi) beta`` past pi/2."""
    out = 1.0 - (2.0 * delta / math.pi) * alpha
    wide = alpha > 0.5 * math.pi
    if bool(wide.any()):
        out[wide] = (1.0 - 2.0 * delta) + (2.0 * delta / math.pi) * beta[wide]
    return out


def angles_from(one_minus: Tensor, one_plus: Tensor) -> tuple[Tensor, Tensor]:
    """``(alpha, beta)`` with ``cos(alpha) = rho`` from ``1 - rho`` and ``1 + rho``."""
    torch = load_torch()
    sm = torch.sqrt(torch.clamp(one_minus, min=0.0))
    sp = torch.sqrt(torch.clamp(one_plus, min=0.0))
    return 2.0 * torch.atan2(sm, sp), 2.0 * torch.atan2(sp, sm)


def u_to_angles(u: Tensor) -> tuple[Tensor, Tensor]:
    """``(alpha, beta)`` from ``u = 2 log tan(alpha/2)``."""
    torch = load_torch()
    half = 0.5 * u
    return 2.0 * torch.atan(torch.exp(half)), 2.0 * torch.atan(torch.exp(-half))


def angles_to_u(alpha: Tensor, beta: Tensor) -> Tensor:
    """``2 log tan(alpha/2)`` from both angles."""
    torch = load_torch()
    return 2.0 * (torch.log(torch.sin(0.5 * alpha)) - torch.log(torch.sin(0.5 * beta)))


def ldexp(mantissa: Tensor, exponent: Tensor) -> Tensor:
    """``mantissa * 2^exponent`` for integer tensors ``exponent``, exact wherever the result is
    a normal float64 (``torch.ldexp`` forms ``2^exponent`` first, which under- or overflows
    for ``|exponent| > 1022`` even when the product is representable): two exact halves."""
    torch = load_torch()
    half = torch.div(exponent, 2, rounding_mode="floor")
    return mantissa * _pow2(half) * _pow2(exponent - half)


def _pow2(k: Tensor) -> Tensor:
    """``2^k`` as float64 from its bits (exact on every device), ``k`` clamped to the normal range."""
    torch = load_torch()
    return ((k.clamp(-1022, 1023) + 1023) << 52).view(torch.float64)


def eoc_recursion(alpha: Tensor, beta: Tensor, depth: int, delta: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(theta_l, alpha_l, beta_l)`` at ``sigma_b = 0`` (docs/math.md §3):
    ``theta_1 = cos(alpha)``, ``theta_{k+1} = rho_{k+1} + theta_k rho_dot_{k+1}``."""
    torch = load_torch()
    theta = torch.cos(alpha)
    if delta == 0.0:
        return depth * theta, alpha, beta
    for _ in range(depth - 1):
        rho_dot = derivative_factor(alpha, beta, delta)
        one_minus, one_plus = hidden_layer(alpha, beta, delta)
        rho_next = correlation(alpha, beta, delta)
        theta = theta * rho_dot + rho_next
        alpha, beta = angles_from(one_minus, one_plus)
    return theta, alpha, beta


def _affine(scale: float, n_i: Tensor, n_j: Tensor, one_minus_hat: Tensor, one_plus_hat: Tensor,
            sb2: float) -> tuple[Tensor, Tensor, Tensor]:
    """Second moments and angle after ``h = sqrt(scale) W z + sigma_b beta`` (as the NumPy one)."""
    torch = load_torch()
    c = scale * n_i * n_j
    q_i = scale * n_i * n_i + sb2
    q_j = scale * n_j * n_j + sb2
    sq = torch.sqrt(q_i * q_j)
    diff = n_i - n_j
    one_minus = (scale * sb2 * diff * diff / (sq + c + sb2) + c * one_minus_hat) / sq
    one_plus = ((scale * sb2 * (n_i * n_i + n_j * n_j) + sb2 * sb2) / (sq + c) + sb2 + c * one_plus_hat) / sq
    sigma = c * 0.5 * (one_plus_hat - one_minus_hat) + sb2
    return sigma, one_minus, one_plus


def general_recursion(r_i: Tensor, r_j: Tensor, alpha: Tensor, beta: Tensor, m0: int, depth: int, delta: float,
                      a2b2: float, sw2: float, sigma_b: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(Theta, Sigma, alpha_l)`` of the general recursion (docs/math.md §2), any ``sigma_w, sigma_b``."""
    torch = load_torch()
    sb2 = sigma_b * sigma_b
    chi = sw2 * a2b2
    sigma, one_minus, one_plus = _affine(sw2 / m0, r_i, r_j, _sin_half_sq2(alpha),
                                         _sin_half_sq2(beta), sb2)
    theta = sigma
    q_i = sw2 * r_i * r_i / m0 + sb2
    q_j = sw2 * r_j * r_j / m0 + sb2
    alpha, beta = angles_from(one_minus, one_plus)
    for _ in range(2, depth + 1):
        sigma_dot = chi * derivative_factor(alpha, beta, delta)
        om_hat, op_hat = hidden_layer(alpha, beta, delta)
        sigma, one_minus, one_plus = _affine(sw2, torch.sqrt(a2b2 * q_i), torch.sqrt(a2b2 * q_j),
                                             om_hat, op_hat, sb2)
        theta = sigma + theta * sigma_dot
        q_i = chi * q_i + sb2
        q_j = chi * q_j + sb2
        alpha, beta = angles_from(one_minus, one_plus)
    return theta, sigma, alpha

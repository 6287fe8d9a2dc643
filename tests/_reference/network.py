"""A random finite-width MLP in NumPy with explicit Jacobians (docs/math.md §1), for Monte Carlo tests.

NTK parameterisation, every weight and bias i.i.d. N(0, 1):
``h_1 = sigma_w W_1 x / sqrt(m0) + sigma_b beta_1``,
``h_{k+1} = sigma_w W_{k+1} phi(h_k) / sqrt(m_k) + sigma_b beta_{k+1}``, ``f(x) = h_l`` (scalar).

The Jacobian ``J[i, p] = d f(x_i) / d p`` is formed explicitly, one column per parameter
(weights of every layer, and biases when ``sigma_b != 0``), by the chain rule:
``d f / d W_k = (sigma_w / sqrt(m_{k-1})) delta_k z_{k-1}^T`` and ``d f / d beta_k = sigma_b delta_k``
with ``delta_l = 1``, ``delta_{k-1} = phi'(h_{k-1}) * (sigma_w / sqrt(m_{k-1})) W_k^T delta_k`` and
``z_0 = x``, ``z_k = phi(h_k)``. The empirical NTK is ``J J^T``.
"""
from __future__ import annotations

import numpy as np


def phi(s, a, b):
    return a * s + b * np.abs(s)


def phi_prime(s, a, b):
    return a + b * np.sign(s)


def init_params(m0: int, width: int, depth: int, rng: np.random.Generator):
    """``[(W_1, beta_1), ..., (W_l, beta_l)]``: hidden widths ``width``, output width 1."""
    widths = [m0] + [width] * (depth - 1) + [1]
    return [(rng.standard_normal((widths[k + 1], widths[k])), rng.standard_normal(widths[k + 1]))
            for k in range(depth)]


def forward(params, x, a, b, sigma_w, sigma_b):
    """Pre-activations ``[h_1..h_l]`` and layer inputs ``[z_0..z_{l-1}]``, each of shape (n, width)."""
    hs, zs = [], [np.asarray(x, dtype=params[0][0].dtype)]  # float64 unless the weights are float32
    for k, (w, beta) in enumerate(params):
        z = zs[-1]
        h = sigma_w * z @ w.T / np.sqrt(w.shape[1]) + sigma_b * beta
        hs.append(h)
        if k < len(params) - 1:
            zs.append(phi(h, a, b))
    return hs, zs


def output(params, x, a, b, sigma_w, sigma_b) -> np.ndarray:
    hs, _ = forward(params, x, a, b, sigma_w, sigma_b)
    return hs[-1][:, 0]


def jacobian(params, x, a, b, sigma_w, sigma_b) -> np.ndarray:
    """Explicit Jacobian of shape (n, n_params), parameters in the order of ``flatten``."""
    hs, zs = forward(params, x, a, b, sigma_w, sigma_b)
    n = zs[0].shape[0]
    delta = np.ones((n, 1))
    blocks = []
    for k in range(len(params) - 1, -1, -1):
        w, _ = params[k]
        scale = sigma_w / np.sqrt(w.shape[1])
        # d f / d W_k[r, c] = scale * delta_k[r] * z_{k-1}[c], one row per input.
        dw = scale * delta[:, :, None] * zs[k][:, None, :]
        layer = [dw.reshape(n, -1)]
        if sigma_b != 0.0:
            layer.append(sigma_b * delta)
        blocks = layer + blocks
        if k > 0:
            delta = phi_prime(hs[k - 1], a, b) * (scale * delta @ w)
    return np.concatenate(blocks, axis=1)


def ntk_by_layers(params, x, a, b, sigma_w, sigma_b) -> np.ndarray:
    """``J J^T`` without forming J: ``sum_k (scale_k^2 Z_{k-1} Z_{k-1}^T + sigma_b^2) * (Delta_k Delta_k^T)``

    with the per-input back-propagated vectors ``Delta_k`` of :func:`jacobian` (``Delta_l = 1``).
    """
    hs, zs = forward(params, x, a, b, sigma_w, sigma_b)
    n = zs[0].shape[0]
    delta = np.ones((n, 1), dtype=zs[0].dtype)
    out = np.zeros((n, n))
    for k in range(len(params) - 1, -1, -1):
        w, _ = params[k]
        scale = sigma_w / np.sqrt(w.shape[1])
        gram = scale * scale * (zs[k] @ zs[k].T) + sigma_b * sigma_b
        out += gram * (delta @ delta.T)
        if k > 0:
            delta = phi_prime(hs[k - 1], a, b) * (scale * delta @ w)
    return out


def flatten(params, with_bias: bool) -> np.ndarray:
    parts = []
    for w, beta in params:
        parts.append(w.ravel())
        if with_bias:
            parts.append(beta)
    return np.concatenate(parts)


def unflatten(vector: np.ndarray, like, with_bias: bool):
    out, i = [], 0
    for w, beta in like:
        nw = w.size
        w_new = vector[i:i + nw].reshape(w.shape)
        i += nw
        if with_bias:
            beta_new = vector[i:i + beta.size]
            i += beta.size
        else:
            beta_new = beta
        out.append((w_new, beta_new))
    return out


def empirical_ntk(x, *, width, depth, a, b, sigma_w, sigma_b, seed) -> np.ndarray:
    """``J J^T`` of one random network of the given width (output dimension 1)."""
    rng = np.random.default_rng(seed)
    params = init_params(np.asarray(x).shape[1], width, depth, rng)
    j = jacobian(params, x, a, b, sigma_w, sigma_b)
    return j @ j.T

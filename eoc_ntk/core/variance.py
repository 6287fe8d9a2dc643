"""A bound the family's recursion with a bias needs: its layer variances, squared, stay in float64."""
from __future__ import annotations

import math

from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.model import Model

__all__ = ["check_variance_products"]


#: ln of the largest layer variance q the recursion with sigma_b > 0 takes: it multiplies two
#: variances (q_i q_j, sigma_b^4), which stay finite below sqrt(float max) = 1.3e154; 1e153 leaves a margin.
_LOG_MAX_VARIANCE = math.log(1e153)


def check_variance_products(model: Model, rmax: float, m0: int) -> None:
    """Refuse a model with ``sigma_b > 0`` and depth >= 2 whose layer variances
    ``q_l = chi q_(l-1) + sigma_b^2``, ``q_1 = sigma_w^2 |x|^2 / m0 + sigma_b^2``, may exceed 1e153:
    the recursion's products of two variances would overflow float64.

    Bound, in logs: ``q_l <= 2 max(1, chi)^(l-1) max(2 q_1, sigma_b^2 min(l, 1 / (1 - chi)))``.

    Parameters
    ----------
    model : Model
        The network (depth, chi = sigma_w^2 (a^2 + b^2), sigma_b).
    rmax : float
        The largest input norm |x|, > 0.
    m0 : int
        The number of features of each input.

    Raises
    ------
    InvalidParameterError
        ``param="sigma_b"`` when the bias term dominates the bound, else ``param="x"``.
    """
    if model.sigma_b == 0.0 or model.depth < 2:
        return
    log_sb2 = 2.0 * math.log(model.sigma_b)
    log_q1 = max(log_sb2, math.log(model.sigma_w2) - math.log(m0) + 2.0 * math.log(rmax)) + math.log(2.0)
    steps = model.depth if model.chi >= 1.0 else min(model.depth, 1.0 / (1.0 - model.chi))
    log_bias = log_sb2 + math.log(steps)
    log_q = max(0.0, (model.depth - 1) * math.log(model.chi)) + max(log_q1, log_bias) + math.log(2.0)
    if log_q > _LOG_MAX_VARIANCE:
        by_bias = log_bias >= log_q1
        raise InvalidParameterError(
            f"the layer variances reach about 1e{log_q / math.log(10.0):.0f} (sigma_b = {model.sigma_b:.3g}, largest "
            f"input norm {rmax:.3g}, depth {model.depth}, chi = {model.chi:.6g}); with sigma_b > 0 the recursion "
            "multiplies two of them, which overflows float64 above 1e154: "
            + ("lower sigma_b" if by_bias else "rescale the inputs")
            + " (at sigma_b = 0 the kernel scales exactly with the inputs' norms)",
            param="sigma_b" if by_bias else "x")

"""Conversion of results to JSON-safe Python values (no NaN or infinity in JSON)."""
from __future__ import annotations

import math


def json_float(value) -> float | None:
    """``float(value)``, or None when it is not finite (JSON has no infinity)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None

"""JSON-safe values, both ways: results -> JSON (no NaN or infinity) and JSON -> NumPy.

JSON has no infinity and no NaN: :func:`to_jsonable` writes them as ``null``, and turns
NumPy arrays and scalars and tuples into plain lists and numbers. :func:`from_jsonable` is
its inverse for result bodies (what the client hands back): numeric lists become float
arrays, with ``null`` read as ``inf`` where the field is a condition number (singular) and
as ``nan`` elsewhere.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["json_float", "to_jsonable", "from_jsonable"]

#: Fields whose ``null`` means infinity (a singular matrix), not "undefined".
_INFINITE_WHEN_NULL = ("condition_number", "limit_condition_number", "condition_number_bounds",
                       # docs/learning.md §1: never fitted (null space), an overflow, a diverging estimate
                       "fit_steps", "train_loss", "expected_train_loss", "predicted_test_mse")
#: Lists of index groups, kept as lists of lists.
_INDEX_GROUPS = ("duplicate_groups", "antipodal_pairs")


def json_float(value: Any) -> float | None:
    """``float(value)``, or None when it is not finite (JSON has no infinity)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def to_jsonable(value: Any) -> Any:
    """``value`` with NumPy types and tuples made plain and non-finite floats replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            return to_jsonable(value.tolist())
        return value.tolist()
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    return value


def _is_numbers(value: list[Any]) -> bool:
    return all(v is None or isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def from_jsonable(body: Any, key: str | None = None) -> Any:
    """A JSON result body with its numeric lists as NumPy arrays (inverse of :func:`to_jsonable`).

    Lists held by a dict key are converted: ``condition_number``-like fields read ``null`` as
    ``inf``, other numeric lists read it as ``nan``, lists of lists become 2-D arrays (index
    groups stay lists), ``depths`` become integers and ``singular`` booleans. Items of a list
    are converted inside, never themselves turned into arrays.
    """
    if isinstance(body, dict):
        return {k: from_jsonable(v, k) for k, v in body.items()}
    if key in _INFINITE_WHEN_NULL and body is None:
        return math.inf
    if not isinstance(body, list):
        return body
    if key is None or key in _INDEX_GROUPS:
        return [from_jsonable(v) for v in body]
    if key == "depths":
        return np.asarray(body, dtype=int)
    if key == "singular":
        return np.asarray(body, dtype=bool)
    if key in _INFINITE_WHEN_NULL and _is_numbers(body):
        return np.array([math.inf if v is None else v for v in body], dtype=float)
    if body and _is_numbers(body):
        return np.array([math.nan if v is None else v for v in body], dtype=float)
    if body and isinstance(body[0], list):
        return np.array(body, dtype=float)
    return [from_jsonable(v) for v in body]

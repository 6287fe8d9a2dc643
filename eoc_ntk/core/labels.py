"""Checking training labels ``y`` against the inputs ``x`` (docs/learning.md §1).

Labels are regression targets of shape (n,) or several outputs (one-hot classes, ...) of
shape (n, k). Every function of the core that takes labels calls :func:`check_labels` once
and hands the checked (n, k) float64 array to its private code.
"""
from __future__ import annotations

import numpy as np
import numpy.typing as npt

from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.validation import MAX_ABS_VALUE

__all__ = ["check_labels", "check_label_shape", "Labels"]


class Labels:
    """Checked labels: ``values`` of shape (n, k) float64 and whether they came as shape (n,).

    Attributes
    ----------
    values : ndarray of shape (n, k)
    one_dimensional : bool
        True when the caller gave shape (n,): results of shape (.., k) are returned as (..,).
    """

    __slots__ = ("values", "one_dimensional")

    def __init__(self, values: np.ndarray, one_dimensional: bool):
        self.values = values
        self.one_dimensional = one_dimensional

    @property
    def energy(self) -> float:
        """``|y|^2``, summed over points and outputs."""
        return float(np.sum(self.values * self.values))

    def shaped(self, out: np.ndarray) -> np.ndarray:
        """``out`` of shape (m, k) as the caller's labels were shaped: (m,) for 1-D labels."""
        return out[:, 0] if self.one_dimensional else out


def check_label_shape(shape: tuple[int, ...], n: int, name: str = "y", x_name: str = "x") -> None:
    """Refuse a labels shape other than (n,) or (n, k) with ``k >= 1``.

    Raises
    ------
    InvalidParameterError (param=name)
        Naming the shape given, the one expected and the fix.
    """
    shape = tuple(shape)
    if len(shape) not in (1, 2):
        raise InvalidParameterError(
            f"{name} must have shape ({n},) or ({n}, k), got {len(shape)}-D with shape {shape}", param=name)
    if shape[0] != n:
        raise InvalidParameterError(
            f"{name} has {shape[0]} rows (shape {shape}) but {x_name} has {n}; "
            f"give one label row per row of {x_name}", param=name)
    if len(shape) == 2 and shape[1] == 0:
        raise InvalidParameterError(f"{name} has no column (shape {shape}); give at least one output", param=name)


def check_labels(y: npt.ArrayLike, n: int, name: str = "y", x_name: str = "x") -> Labels:
    """Return ``y`` as checked :class:`Labels` for ``n`` input rows.

    Parameters
    ----------
    y : array-like of shape (n,) or (n, k)
        Real, finite numbers, one row per row of ``x``; ``k >= 1``.
    n : int
        Number of rows of the checked inputs.
    name, x_name : str
        Argument names used in error messages.

    Raises
    ------
    InvalidParameterError (param=name)
        When ``y`` is not numeric, not 1-D or 2-D, has a row count other than ``n``, no
        column, a non-finite entry, or an entry beyond ``MAX_ABS_VALUE`` (its square would
        overflow). The message names the shapes and the fix.
    """
    if isinstance(y, (str, bytes, dict)):
        raise InvalidParameterError(
            f"{name} must be an array of numbers of shape ({n},) or ({n}, k), got {type(y).__name__}", param=name)
    if isinstance(y, np.ndarray) and y.dtype.kind not in "biuf":
        raise InvalidParameterError(
            f"{name} must hold real numbers, got an array of dtype {y.dtype} with shape {y.shape}; "
            "convert it with np.asarray(y, dtype=float) (one-hot encode class names first)", param=name)
    try:
        arr = np.array(y, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"{name} must be a (ragged-free) array of real numbers of shape ({n},) or ({n}, k): {exc}",
            param=name) from exc
    check_label_shape(arr.shape, n, name, x_name)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise InvalidParameterError(
            f"{name} must be finite, found {arr[bad]} at index {bad} (shape {arr.shape})", param=name)
    big = (arr > MAX_ABS_VALUE) | (arr < -MAX_ABS_VALUE)
    if big.any():
        bad = tuple(int(i) for i in np.argwhere(big)[0])
        raise InvalidParameterError(
            f"{name} has an entry of magnitude {arr[bad]:.3g} at index {bad} (shape {arr.shape}); squared "
            f"errors would overflow float64: rescale the labels so that every |value| <= {MAX_ABS_VALUE:g}",
            param=name)
    one_d = arr.ndim == 1
    return Labels(np.ascontiguousarray(arr.reshape(n, -1)), one_d)

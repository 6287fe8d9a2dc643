"""Input checks shared by every public function of the core.

Public functions call these once and hand checked float64 arrays to private
implementations, which assume their inputs are already valid (the pattern of
scikit-learn's ``check_pairwise_arrays``).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse

from eoc_ntk.core.errors import InvalidParameterError

__all__ = ["parse_depths", "check_data", "check_pair", "check_depth", "check_integer", "check_real", "MAX_ABS_VALUE",
           "MAX_DEPTH", "MAX_SPARSE_ENTRIES"]

#: Largest accepted |entry| of the data: squared norms of up to 1e6 features stay finite.
MAX_ABS_VALUE = 1e150
#: Largest accepted depth (number of weight layers). The exact recursion costs O(depth) per
#: entry and building the interpolants O(depth) per interval, so the cost is bounded only
#: through the depth; 100,000 layers cover every regime of docs/math.md §5 (the service has its
#: own, lower limit, EOC_NTK_MAX_DEPTH).
MAX_DEPTH = 100_000
#: Largest sparse input densified (n * m0 entries, 400 MB as float64).
MAX_SPARSE_ENTRIES = 50_000_000


def _dense_input(x: Any, name: str) -> Any:
    """Sparse matrices densified (size-checked), masked arrays unmasked (only without masked
    entries), strings refused wherever they hide: ``x`` ready for ``np.array(x, float64)``."""
    if scipy.sparse.issparse(x):
        n, m0 = x.shape
        if n * m0 > MAX_SPARSE_ENTRIES:
            raise InvalidParameterError(
                f"{name} is a SciPy sparse matrix of shape {x.shape} ({n * m0} entries once dense, more than "
                f"{MAX_SPARSE_ENTRIES}); the kernel needs dense rows: pass fewer inputs or features", param=name)
        return x.toarray()
    if np.ma.isMaskedArray(x):
        mask = np.ma.getmaskarray(x)
        if mask.any():
            where = np.argwhere(mask)[0].tolist()
            raise InvalidParameterError(
                f"{name} is a masked array with {int(mask.sum())} masked entries (first at index {where}, "
                f"shape {x.shape}); a masked value has no number to use: fill it (x.filled(value)) or drop "
                "those rows", param=name)
        return np.ma.getdata(x)
    if isinstance(x, np.ndarray):
        return x
    try:
        probe = np.asarray(x)
    except (ValueError, TypeError):
        return x  # ragged or otherwise unconvertible: reported by the float conversion
    strings = probe.dtype.kind in "USa"
    if probe.dtype.kind == "O":
        strings = any(isinstance(v, (str, bytes)) for v in probe.ravel())
    if strings:
        raise InvalidParameterError(
            f"{name} holds strings ({_describe_shape(x)}); numbers are required, also for numeric text such "
            "as '1': convert the data with np.asarray(x, dtype=float) first", param=name)
    return x


def _describe_shape(value: object) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"shape {tuple(shape)}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"type {type(value).__name__}"


def check_data(x: npt.ArrayLike, name: str = "x") -> npt.NDArray[np.float64]:
    """Return ``x`` as a new C-contiguous float64 array of shape (n, m0).

    Accepted besides arrays and nested lists: SciPy sparse matrices (densified, up to
    ``MAX_SPARSE_ENTRIES`` entries) and masked arrays without masked entries.

    Parameters
    ----------
    x : array-like of shape (n, m0)
        Real, finite numbers; at least one row and one column.
    name : str
        Argument name used in error messages.

    Raises
    ------
    TypeError
        If ``x`` is a string, bytes, a mapping, or holds non-numeric entries, strings
        included (also numeric text such as ``"1"``: InvalidParameterError, a TypeError).
    InvalidParameterError
        A masked array with masked entries; a sparse matrix above ``MAX_SPARSE_ENTRIES``.
    ValueError
        If ``x`` is ragged, not 2-D, empty, holds NaN or infinity, an entry larger than
        ``MAX_ABS_VALUE`` in magnitude (its square overflows) or a subnormal entry
        (its square underflows to 0).
    """
    if isinstance(x, (str, bytes, dict)):
        raise InvalidParameterError(f"{name} must be a 2-D array of numbers of shape (n, m0), got "
                                    f"{type(x).__name__}", param=name)
    x = _dense_input(x, name)
    if isinstance(x, np.ndarray) and x.dtype.kind not in "biuf":
        raise InvalidParameterError(
            f"{name} must hold real numbers, got an array of dtype {x.dtype} with {_describe_shape(x)}; "
            "convert it with np.asarray(x, dtype=float)", param=name)
    try:
        arr = np.array(x, dtype=np.float64, order="C", copy=True)  # the one copy (C order: no second one below)
    except ValueError as exc:
        msg = str(exc)
        if "inhomogeneous" in msg or "sequence" in msg:
            raise InvalidParameterError(
                f"{name} is ragged: its rows have different lengths ({_describe_shape(x)}); "
                "every row must have the same number of features m0", param=name) from exc
        raise InvalidParameterError(f"{name} must hold only real numbers ({msg})", param=name) from exc
    except TypeError as exc:
        raise InvalidParameterError(f"{name} must hold only real numbers ({exc})", param=name) from exc
    if arr.ndim != 2:
        raise InvalidParameterError(
            f"{name} must be 2-D of shape (n, m0), got {arr.ndim}-D with shape {arr.shape}; "
            "for a single point use x.reshape(1, -1), for one feature x.reshape(-1, 1)", param=name)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidParameterError(f"{name} is empty (shape {arr.shape}); it needs at least one row and one "
                                    "column", param=name)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InvalidParameterError(
            f"{name} must be finite, found {arr[tuple(bad)]} at row {bad[0]}, column {bad[1]} "
            f"(shape {arr.shape})", param=name)
    # Comparisons, not np.abs(arr): boolean temporaries (1/8 of the array), no second float64 copy.
    big = (arr > MAX_ABS_VALUE) | (arr < -MAX_ABS_VALUE)
    if big.any():
        i, j = np.argwhere(big)[0]
        raise InvalidParameterError(
            f"{name} has an entry of magnitude {arr[i, j]:.3g} at row {i}, column {j} (shape {arr.shape}); "
            "squared norms would overflow float64: rescale the data so that every |value| <= "
            f"{MAX_ABS_VALUE:g}", param=name)
    smallest = np.finfo(np.float64).tiny
    tiny = (arr != 0.0) & (arr < smallest) & (arr > -smallest)
    if tiny.any():
        i, j = np.argwhere(tiny)[0]
        raise InvalidParameterError(
            f"{name} has a subnormal entry {arr[i, j]:.3g} at row {i}, column {j} (shape {arr.shape}); "
            "its square underflows to 0: rescale the data or round such values to 0", param=name)
    return np.ascontiguousarray(arr)


def check_pair(x: npt.ArrayLike, x2: npt.ArrayLike | None, name: str = "x",
               name2: str = "x2") -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
    """Check ``x`` and an optional ``x2`` of the same width."""
    x = check_data(x, name)
    if x2 is None:
        return x, None
    x2 = check_data(x2, name2)
    if x2.shape[1] != x.shape[1]:
        raise InvalidParameterError(
            f"{name2} has {x2.shape[1]} features (shape {x2.shape}) but {name} has {x.shape[1]} "
            f"(shape {x.shape}); both must have the same width m0", param=name2)
    return x, x2


def check_depth(depth: Any, name: str = "depth") -> int:
    """Return ``depth`` as an int >= 1 (bools and fractional numbers are refused)."""
    if isinstance(depth, bool):
        raise InvalidParameterError(f"{name} must be an integer number of weight layers >= 1, got the bool "
                                    f"{depth!r}", param=name)
    if not isinstance(depth, numbers.Integral):
        if isinstance(depth, numbers.Real) and float(depth).is_integer():
            depth = int(float(depth))
        else:
            raise InvalidParameterError(f"{name} must be an integer number of weight layers >= 1, got "
                                        f"{depth!r}", param=name)
    layers = int(depth)
    if layers < 1:
        raise InvalidParameterError(f"{name} must be >= 1 (the number of weight layers), got {layers}", param=name)
    if layers > MAX_DEPTH:
        raise InvalidParameterError(
            f"{name} = {layers} is above MAX_DEPTH = {MAX_DEPTH} (eoc_ntk.MAX_DEPTH): the cost grows with the "
            "depth; the depth limit itself is eoc_ntk.depth_limit_matrix / limit_condition_number", param=name)
    return layers


def check_integer(value: Any, name: str, minimum: int = 1) -> int:
    """Return ``value`` (an int or NumPy integer, not a bool) as an int ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}, got {value!r} of type "
                                    f"{type(value).__name__}", param=name)
    number = int(value)
    if number < minimum:
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}, got {number}", param=name)
    return number


def check_real(value: Any, name: str) -> float:
    """Return ``value`` as a finite float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidParameterError(f"{name} must be a real number, got {value!r}", param=name)
    number = float(value)
    if not math.isfinite(number):
        raise InvalidParameterError(f"{name} must be finite, got {number}", param=name)
    return number


def parse_depths(text: str | int | Iterable[int], max_count: int | None = None) -> list[int]:
    """``"10"``, ``"1,2,5"``, ``"1:100"`` (inclusive) or ``"1:100:10"`` (step), combinable with commas.

    Returns the sorted distinct depths; :class:`InvalidParameterError` (``param="depths"``) otherwise.

    ``max_count``: more distinct depths are refused while the text is read, each range counted
    (``(STOP - START) // STEP + 1`` depths) before it is expanded, so the work is at most
    ``max_count`` depths per comma-separated part of the text.
    """
    if isinstance(text, int):
        return [text]
    if not isinstance(text, str):
        return sorted({int(d) for d in text})
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            bits = [int(v) for v in part.split(":")]
        except ValueError as exc:
            raise InvalidParameterError(f"depths {text!r}: {part!r} is not an integer or START:STOP[:STEP]",
                                        param="depths") from exc
        if len(bits) == 1:
            out.add(bits[0])
        elif len(bits) in (2, 3):
            step = bits[2] if len(bits) == 3 else 1
            if step < 1 or bits[1] < bits[0]:
                raise InvalidParameterError(f"depths {text!r}: {part!r} needs START <= STOP and STEP >= 1",
                                            param="depths")
            span = bits[1] - bits[0]
            if max_count is not None and span // step + 1 + (span % step != 0) > max_count:
                _too_many(text, max_count)
            out.update(range(bits[0], bits[1] + 1, step))
            out.add(bits[1])
        else:
            raise InvalidParameterError(f"depths {text!r}: {part!r} has too many ':'", param="depths")
        if max_count is not None and len(out) > max_count:
            _too_many(text, max_count)
    if not out or min(out) < 1:
        raise InvalidParameterError(f"depths {text!r}: give depths >= 1", param="depths")
    return sorted(out)


def _too_many(text: str, max_count: int) -> None:
    raise InvalidParameterError(f"depths {text[:80]!r} hold more than {max_count} depths, the most one sweep takes",
                                param="depths")

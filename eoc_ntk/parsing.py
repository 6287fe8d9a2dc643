"""Users' spellings of data files, activations and depth ranges (shared by the CLI and the client).

Nothing numerical happens here: these helpers only turn strings and files into the arguments
of :func:`eoc_ntk.spectrum`, :func:`eoc_ntk.depth_sweep` and the REST API.
"""
from __future__ import annotations

import io
import os

import numpy as np

from .model import ACTIVATION_NAMES, activation_coefficients

__all__ = ["Activation", "parse_activation", "parse_activations", "parse_depths", "load_points", "read_points"]


class Activation(tuple):
    """``(a, b)`` of ``phi(s) = a*s + b*|s|`` with the user's label (``"relu"``, ``"a=0.3,b=0.7"``)."""

    label: str

    def __new__(cls, a: float, b: float, label: str):
        obj = super().__new__(cls, (float(a), float(b)))
        obj.label = label
        return obj

    @property
    def a(self) -> float:
        return self[0]

    @property
    def b(self) -> float:
        return self[1]

    def api(self) -> dict:
        """The REST API's activation object ``{"a": .., "b": ..}``."""
        return {"a": self.a, "b": self.b}


def parse_activation(text) -> Activation:
    """``relu``, ``abs``, ``linear``, ``leaky_relu`` (slope 0.01), ``leaky_relu:SLOPE`` or ``A,B``.

    A tuple ``(a, b)`` or an :class:`Activation` is accepted as well.
    """
    if isinstance(text, Activation):
        return text
    if isinstance(text, (tuple, list)) and len(text) == 2:
        a, b = (float(v) for v in text)
        return Activation(a, b, f"a={a:g},b={b:g}")
    if not isinstance(text, str):
        raise TypeError(f"activation must be a string such as 'relu' or 'A,B', got {type(text).__name__}")
    s = text.strip().lower()
    if "," in s:
        parts = s.split(",")
        if len(parts) != 2:
            raise ValueError(f"activation {text!r}: give two coefficients 'A,B' for phi(s) = A*s + B*|s|")
        try:
            a, b = float(parts[0]), float(parts[1])
        except ValueError as exc:
            raise ValueError(f"activation {text!r}: 'A,B' must be two numbers") from exc
        return Activation(a, b, f"a={a:g},b={b:g}")
    name, _, slope = s.partition(":")
    if name not in ACTIVATION_NAMES:
        raise ValueError(f"unknown activation {text!r}; use one of {', '.join(ACTIVATION_NAMES)}, "
                         "leaky_relu:SLOPE or A,B")
    if slope and name != "leaky_relu":
        raise ValueError(f"activation {text!r}: only leaky_relu takes a slope")
    try:
        c = float(slope) if slope else None
    except ValueError as exc:
        raise ValueError(f"activation {text!r}: the slope must be a number") from exc
    a, b = activation_coefficients(name, c)
    label = name if name != "leaky_relu" else f"leaky_relu:{0.01 if c is None else c:g}"
    return Activation(a, b, label)


def parse_activations(text) -> list[Activation]:
    """Several activations separated by ``;`` or spaces, or by commas between names.

    ``"relu,abs"`` is two activations; ``"0.3,0.7"`` (two numbers) is one, and ``"relu;0.3,0.7"``
    mixes both forms. A list is parsed item by item.
    """
    if isinstance(text, (list, tuple)) and not (len(text) == 2 and all(isinstance(v, (int, float)) for v in text)):
        return [parse_activation(t) for t in text]
    if not isinstance(text, str):
        return [parse_activation(text)]
    out = []
    for group in text.replace(" ", ";").split(";"):
        if not group:
            continue
        items = group.split(",")
        if len(items) == 2 and all(_is_number(v) for v in items):
            out.append(parse_activation(group))
        else:
            out.extend(parse_activation(item) for item in items if item)
    if not out:
        raise ValueError("no activation given")
    return out


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def parse_depths(text) -> list[int]:
    """``"10"``, ``"1,2,5"``, ``"1:100"`` (inclusive) or ``"1:100:10"`` (step), combinable with commas."""
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
            raise ValueError(f"depths {text!r}: {part!r} is not an integer or START:STOP[:STEP]") from exc
        if len(bits) == 1:
            out.add(bits[0])
        elif len(bits) in (2, 3):
            step = bits[2] if len(bits) == 3 else 1
            if step < 1 or bits[1] < bits[0]:
                raise ValueError(f"depths {text!r}: {part!r} needs START <= STOP and STEP >= 1")
            out.update(range(bits[0], bits[1] + 1, step))
            out.add(bits[1])
        else:
            raise ValueError(f"depths {text!r}: {part!r} has too many ':'")
    if not out or min(out) < 1:
        raise ValueError(f"depths {text!r}: give depths >= 1")
    return sorted(out)


def read_points(data: bytes, name: str = "") -> np.ndarray:
    """Points from the bytes of a ``.npy`` file (no pickles) or a CSV/whitespace text (no header)."""
    if data[:6] == b"\x93NUMPY" or name.endswith(".npy"):
        x = np.load(io.BytesIO(data), allow_pickle=False)
    else:
        text = data.decode("utf-8-sig")
        delimiter = "," if "," in text else None
        rows = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        x = np.loadtxt(rows, delimiter=delimiter, ndmin=2, dtype=float)
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{name or 'data'}: expected a 2-D array of shape (n, m0), got shape {x.shape}")
    return x


def load_points(path: str | os.PathLike) -> np.ndarray:
    """Points of shape (n, m0) from a ``.npy`` file or a CSV file (one point per line, no header)."""
    with open(path, "rb") as fh:
        return read_points(fh.read(), os.fspath(path))

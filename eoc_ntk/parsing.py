"""Users' spellings in one import: depth ranges (here), activations and points (re-exported).

``parse_depths`` lives here; ``parse_activation``/``parse_activations`` are
:mod:`eoc_ntk.activations`' and ``load_points``/``read_points`` :mod:`eoc_ntk.points`',
re-exported so that the CLI, the client and users' scripts read every spelling from one place.
"""
from __future__ import annotations

from .activations import Activation, parse_activation, parse_activations
from .errors import InvalidParameterError
from .points import load_points, read_points

__all__ = ["Activation", "parse_activation", "parse_activations", "parse_depths", "load_points", "read_points"]


def parse_depths(text) -> list[int]:
    """``"10"``, ``"1,2,5"``, ``"1:100"`` (inclusive) or ``"1:100:10"`` (step), combinable with commas.

    Returns the sorted distinct depths; :class:`InvalidParameterError` (``param="depths"``) otherwise.
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
            out.update(range(bits[0], bits[1] + 1, step))
            out.add(bits[1])
        else:
            raise InvalidParameterError(f"depths {text!r}: {part!r} has too many ':'", param="depths")
    if not out or min(out) < 1:
        raise InvalidParameterError(f"depths {text!r}: give depths >= 1", param="depths")
    return sorted(out)

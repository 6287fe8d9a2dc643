"""Why is a kernel matrix singular? Structural causes found from the data (docs/math.md §4).

Called only when the spectrum is (numerically) singular, so the O(n^2 m0) search for
near-parallel rows costs nothing on the common path.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from eoc_ntk.core.angles import unit_rows
from eoc_ntk.core.model import Model

#: Inputs whose angle (or angle to the opposite direction) is below this many radians
#: are reported as duplicates (or antipodal pairs).
DUPLICATE_ANGLE = 1e-8
_BLOCK_ROWS = 512


@dataclass(frozen=True)
class Diagnosis:
    zero_rows: tuple[int, ...] = ()
    duplicate_groups: tuple[tuple[int, ...], ...] = ()
    antipodal_pairs: tuple[tuple[int, int], ...] = ()
    rank_bound: int | None = None

    def reason(self, n: int) -> str | None:
        """A one-sentence explanation, or None when no structural cause is known."""
        parts = []
        if self.zero_rows:
            parts.append(f"zero input rows {list(self.zero_rows[:10])} give zero kernel rows")
        if self.duplicate_groups:
            parts.append(f"inputs pointing the same way (duplicates) {[list(g) for g in self.duplicate_groups[:10]]} "
                         "give proportional kernel rows")
        if self.antipodal_pairs:
            parts.append("the even activation (Delta = 1) sees x and -c*x as the same input: pairs "
                         f"{[list(p) for p in self.antipodal_pairs[:10]]}")
        if self.rank_bound is not None and self.rank_bound < n:
            parts.append("the kernel is linear in the input Gram matrix (depth 1 or b = 0), so its rank is at most "
                         f"{self.rank_bound} < n = {n}")
        return "; ".join(parts) if parts else None


def _union_groups(pairs: list[tuple[int, int]], n: int) -> tuple[tuple[int, ...], ...]:
    """Groups (sorted, each of two or more indices) of the graph on ``n`` nodes with edges ``pairs``."""
    if not pairs:
        return ()
    rows, cols = np.array(pairs, dtype=np.intp).T
    graph = coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    groups: dict[int, list[int]] = {}
    for i in np.flatnonzero(sizes[labels] > 1):
        groups.setdefault(int(labels[i]), []).append(int(i))
    return tuple(sorted(tuple(g) for g in groups.values()))


def diagnose(x: np.ndarray, model: Model) -> Diagnosis:
    """Structural reasons for singularity of the NTK of ``model`` on ``x`` (checked float64)."""
    n, m0 = x.shape
    u, r = unit_rows(x)
    bias = model.sigma_b != 0.0
    zero = tuple(int(i) for i in np.flatnonzero(r == 0.0)) if not bias else ()
    same: list[tuple[int, int]] = []
    opposite: list[tuple[int, int]] = []
    want_opposite = not model.is_smooth and model.delta == 1.0 and model.depth >= 2 and not bias
    # Candidates from the Gram matrix (angle below about 1e-5), confirmed with the stable angle.
    cos_cut = 1.0 - 1e-10
    for i0 in range(0, n, _BLOCK_ROWS):
        i1 = min(n, i0 + _BLOCK_ROWS)
        cos = u[i0:i1] @ u.T
        for sign, found in ((1.0, same), (-1.0, opposite)):
            if sign < 0 and not want_opposite:
                continue
            rows, cols = np.nonzero(sign * cos >= cos_cut)
            rows = rows + i0
            keep = cols > rows
            for i, j in zip(rows[keep], cols[keep], strict=True):
                if r[i] == 0.0 or r[j] == 0.0:
                    continue
                gap = float(np.linalg.norm(u[i] - sign * u[j]))
                if 2.0 * np.arcsin(min(1.0, 0.5 * gap)) > DUPLICATE_ANGLE:
                    continue
                if bias and (sign < 0 or abs(r[i] - r[j]) > DUPLICATE_ANGLE * max(r[i], r[j])):
                    continue  # with biases only (nearly) identical inputs are duplicates
                found.append((int(i), int(j)))
    rank_bound = None
    if model.depth == 1 or (not model.is_smooth and model.delta == 0.0):
        rank_bound = m0 + (1 if bias else 0)
    return Diagnosis(
        zero_rows=zero,
        duplicate_groups=_union_groups(same, n),
        antipodal_pairs=tuple(sorted(opposite)),
        rank_bound=rank_bound if rank_bound is not None and rank_bound < n else None,
    )

"""Minimum-cost matching of rows to columns, small enough to need no SciPy at run time.

The tracker matches a handful of tracks to a handful of detections per frame; the Hungarian method
with potentials is exact and, at these sizes, costs microseconds.
"""

from __future__ import annotations

import numpy as np


def linear_assignment(cost: np.ndarray) -> list[tuple[int, int]]:
    """Row/column pairs of minimum total cost (Hungarian method with potentials, O(n^2 m)).

    Every row of the smaller side is assigned; callers mark forbidden pairs with a large cost and
    drop them afterwards.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2 or 0 in cost.shape:
        return []
    transposed = cost.shape[0] > cost.shape[1]
    if transposed:
        cost = cost.T
    n, m = cost.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    owner = np.zeros(m + 1, dtype=np.int64)  # owner[j]: 1-based row holding column j, 0 = free
    way = np.zeros(m + 1, dtype=np.int64)
    for row in range(1, n + 1):
        owner[0] = row
        col = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[col] = True
            i0 = owner[col]
            reduced = cost[i0 - 1] - u[i0] - v[1:]
            free = ~used[1:]
            better = free & (reduced < minv[1:])
            minv[1:][better] = reduced[better]
            way[1:][better] = col
            candidates = np.where(free, minv[1:], np.inf)
            nxt = int(np.argmin(candidates)) + 1
            delta = candidates[nxt - 1]
            done = np.nonzero(used)[0]
            u[owner[done]] += delta
            v[done] -= delta
            minv[1:][free] -= delta
            col = nxt
            if owner[col] == 0:
                break
        while col:
            prev = way[col]
            owner[col] = owner[prev]
            col = prev
    pairs = [(int(owner[j]) - 1, j - 1) for j in range(1, m + 1) if owner[j]]
    return sorted((c, r) for r, c in pairs) if transposed else sorted(pairs)

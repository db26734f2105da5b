"""Optimal one-to-one assignment for the small problems of tracking and scoring.

Both the tracker (tracks to peaks, :mod:`sst_ros.tracking.tracker`) and the multi-source score
(talkers to tracks, :mod:`sst_ros.tracking.score`) match a handful of directions per frame.
:func:`min_cost_assignment` solves such problems exactly by enumerating the injective maps
(at most :data:`MAX_ENUMERATED` of them, one vectorised numpy pass) and hands larger ones to
``scipy.optimize.linear_sum_assignment``, imported only then: importing ``scipy.optimize``
costs the node about 48 MB of memory and a second of start-up for 4 x 4 matrices.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

__all__ = ["MAX_ENUMERATED", "gated_assignment", "min_cost_assignment"]

MAX_ENUMERATED = 5040
"""Largest number of injective maps solved by enumeration (7 x 7); larger problems use scipy."""

_INFEASIBLE = 1e6  # the price of a pair outside the gate: any gated pair beats it


@functools.lru_cache(maxsize=64)
def _maps(n: int, m: int) -> np.ndarray:
    """(count, n) every injective map of n rows into m columns (n <= m), lexicographic."""
    return np.array(list(itertools.permutations(range(m), n)), dtype=np.intp).reshape(-1, n)


def _n_maps(n: int, m: int) -> int:
    return int(np.prod(np.arange(m - n + 1, m + 1, dtype=np.float64)))


def min_cost_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of a minimum-cost one-to-one assignment (``linear_sum_assignment``'s contract).

    Args:
        cost: (n, m) finite costs.
    Returns:
        (rows, cols): ``min(n, m)`` pairs, rows ascending, minimising ``cost[rows, cols].sum()``.
        Among equal-cost optima the choice may differ from scipy's.
    """
    c = np.asarray(cost, dtype=np.float64)
    n, m = c.shape
    if n == 0 or m == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty
    transposed = n > m
    if transposed:
        c, n, m = c.T, m, n
    if _n_maps(n, m) > MAX_ENUMERATED:
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(c)
    else:
        maps = _maps(n, m)
        best = maps[int(np.argmin(c[np.arange(n), maps].sum(axis=1)))]
        rows, cols = np.arange(n), best
    if transposed:
        order = np.argsort(cols, kind="stable")
        rows, cols = cols[order], rows[order]
    return np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp)


def gated_assignment(dist: np.ndarray, gate: float | np.ndarray) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` of an optimal matching within a gate.

    Maximises the number of pairs with ``dist[i, j] <= gate`` (inclusive), then minimises their
    summed distance; pairs outside the gate are never returned.

    Args:
        dist: (n, m) non-negative distances (e.g. wrap-aware azimuth differences, degrees).
        gate: largest distance of a pair: a scalar, or (n,) one per row (a track's own gate).
    Returns:
        the pairs, rows ascending.
    """
    d = np.asarray(dist, dtype=np.float64)
    g = np.asarray(gate, dtype=np.float64)
    inside = d <= (g[:, None] if g.ndim == 1 else g)
    rows, cols = min_cost_assignment(np.where(inside, d, _INFEASIBLE))
    return [(int(i), int(j)) for i, j in zip(rows, cols, strict=True) if inside[i, j]]

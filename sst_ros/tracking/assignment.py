"""Optimal one-to-one assignment for the small problems of tracking and scoring.

Both the tracker (tracks to peaks, :mod:`sst_ros.tracking.tracker`) and the multi-source score
(talkers to tracks, :mod:`sst_ros.tracking.score`) match a handful of directions per frame.
:func:`min_cost_assignment` solves them exactly with the Hungarian method (shortest augmenting
paths with potentials, O(n^2 m)) in plain Python. That is slower per call than scipy's C solver
(about 30 against 2 microseconds for 3 x 4, measured; a few hundredths of a percent of a core at
10 frames a second), but it keeps ``scipy.optimize`` (about 48 MB of memory and a second of
start-up) out of the node.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["gated_assignment", "min_cost_assignment"]

_INFEASIBLE = 1e6  # the price of a pair outside the gate: any gated pair beats it


def _hungarian(cost: list[list[float]], n: int, m: int) -> list[int]:
    """Column of each row of a minimum-cost assignment of n rows to m >= n columns."""
    u = [0.0] * (n + 1)  # row potentials (1-based; index 0 is the virtual start)
    v = [0.0] * (m + 1)  # column potentials
    owner = [0] * (m + 1)  # row assigned to each column (0: none)
    for row in range(1, n + 1):
        _augment(row, cost, u, v, owner)
    col_of = [0] * n
    for j in range(1, m + 1):
        if owner[j]:
            col_of[owner[j] - 1] = j - 1
    return col_of


def _augment(row: int, cost: list[list[float]], u: list[float], v: list[float], owner: list[int]) -> None:
    """Assign ``row`` along a shortest augmenting path, updating the potentials ``u``, ``v`` and ``owner``."""
    m = len(v) - 1
    way = [0] * (m + 1)  # the previous column on the shortest path
    dist = [math.inf] * (m + 1)
    done = [False] * (m + 1)
    owner[0] = row
    j0 = 0
    while owner[j0] != 0 or j0 == 0:  # grow the shortest-path tree until it reaches a free column
        done[j0] = True
        i0, delta, j1 = owner[j0], math.inf, 0
        ci, ui = cost[i0 - 1], u[i0]
        for j in range(1, m + 1):
            if not done[j]:
                reduced = ci[j - 1] - ui - v[j]
                if reduced < dist[j]:
                    dist[j], way[j] = reduced, j0
                if dist[j] < delta:
                    delta, j1 = dist[j], j
        for j in range(m + 1):
            if done[j]:
                u[owner[j]] += delta
                v[j] -= delta
            else:
                dist[j] -= delta
        j0 = j1
    while j0:  # flip the path
        j1 = way[j0]
        owner[j0] = owner[j1]
        j0 = j1


def min_cost_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of a minimum-cost one-to-one assignment (``linear_sum_assignment``'s contract).

    Args:
        cost: (n, m) finite costs.
    Returns:
        (rows, cols): ``min(n, m)`` pairs, rows ascending, minimising ``cost[rows, cols].sum()``.
        Among equal-cost optima the choice may differ from scipy's.
    Raises:
        ValueError: a NaN or infinite cost.
    """
    c = np.asarray(cost, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError(f"cost must be a 2-D matrix, got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("cost matrix contains NaN or infinite entries")
    pairs = _assign(c.tolist())
    rows = np.array([i for i, _ in pairs], dtype=np.intp)
    cols = np.array([j for _, j in pairs], dtype=np.intp)
    return rows, cols


def _assign(cost: list[list[float]]) -> list[tuple[int, int]]:
    """``min(n, m)`` (row, column) pairs of a minimum-cost assignment of a finite (n, m) cost
    given as lists, rows ascending."""
    n = len(cost)
    m = len(cost[0]) if n else 0
    if n == 0 or m == 0:
        return []
    if n <= m:
        return list(enumerate(_hungarian(cost, n, m)))
    row_of = _hungarian([list(col) for col in zip(*cost, strict=True)], m, n)  # the row of each column
    return sorted((r, j) for j, r in enumerate(row_of))


def gated_assignment(
    dist: np.ndarray | list[list[float]], gate: float | list[float] | np.ndarray
) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` of an optimal matching within a gate.

    Maximises the number of pairs with ``dist[i, j] <= gate`` (inclusive), then minimises their
    summed distance; pairs outside the gate are never returned. Plain Python: the tracker calls it
    twice a frame with a handful of tracks and peaks, where numpy's per-call overhead cost more
    than the assignment.

    Args:
        dist: (n, m) non-negative distances (e.g. wrap-aware azimuth differences, degrees), an
            array or lists.
        gate: largest distance of a pair: a scalar, or (n,) one per row (a track's own gate).
    Returns:
        the pairs, rows ascending.
    """
    rows = dist.tolist() if isinstance(dist, np.ndarray) else [[float(x) for x in row] for row in dist]
    if isinstance(gate, (int, float)):
        gates = [float(gate)] * len(rows)
    else:
        gates = [float(g) for g in np.ravel(gate)]
    cost = [[x if x <= g else _INFEASIBLE for x in row] for row, g in zip(rows, gates, strict=True)]
    return [(i, j) for i, j in _assign(cost) if rows[i][j] <= gates[i]]

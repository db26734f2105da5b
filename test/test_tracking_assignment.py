"""The small-problem assignment (tracker and multi-source score) against scipy's solver."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from sst_ros.tracking.assignment import MAX_ENUMERATED, gated_assignment, min_cost_assignment


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (3, 2), (4, 4), (5, 7), (7, 7), (6, 1), (0, 3), (3, 0)])
def test_same_optimum_as_scipy(shape: tuple[int, int], rng: np.random.Generator) -> None:
    for _ in range(50):
        cost = rng.uniform(0.0, 100.0, shape)
        rows, cols = min_cost_assignment(cost)
        ref_rows, ref_cols = linear_sum_assignment(cost)
        assert len(rows) == min(shape)
        assert list(rows) == sorted(rows) and len(set(cols)) == len(cols)
        assert cost[rows, cols].sum() == pytest.approx(cost[ref_rows, ref_cols].sum(), abs=1e-9)


def test_large_problems_go_to_scipy(rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    import scipy.optimize

    calls: list[tuple[int, int]] = []

    def spy(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls.append(cost.shape)
        return linear_sum_assignment(cost)

    monkeypatch.setattr(scipy.optimize, "linear_sum_assignment", spy)
    min_cost_assignment(rng.uniform(0.0, 1.0, (7, 7)))  # 5040 maps: enumerated
    assert calls == [] and MAX_ENUMERATED == 5040
    cost = rng.uniform(0.0, 1.0, (9, 8))  # 9 * 8 * ... * 2 maps: scipy, on the transposed problem
    rows, cols = min_cost_assignment(cost)
    assert calls == [(8, 9)]
    ref = linear_sum_assignment(cost)
    assert cost[rows, cols].sum() == pytest.approx(cost[ref].sum())
    assert list(rows) == sorted(rows)


def test_gated_assignment_maximises_pairs_inside_the_gate_first() -> None:
    # the cheapest single pair (0, 0) would leave row 1 unmatched; two gated pairs win
    dist = np.array([[1.0, 20.0], [5.0, 50.0]])
    assert gated_assignment(dist, 25.0) == [(0, 1), (1, 0)]
    # nothing outside the gate is ever returned, per-row gates included
    assert gated_assignment(dist, np.array([10.0, 4.0])) == [(0, 0)]
    assert gated_assignment(np.zeros((0, 2)), 30.0) == []

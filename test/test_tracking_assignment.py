"""The small-problem assignment (tracker and multi-source score) against scipy's solver."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from sst_ros.tracking.assignment import gated_assignment, min_cost_assignment


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (3, 2), (4, 4), (5, 7), (7, 7), (6, 1), (0, 3), (3, 0)])
def test_same_optimum_as_scipy(shape: tuple[int, int], rng: np.random.Generator) -> None:
    for _ in range(50):
        cost = rng.uniform(0.0, 100.0, shape)
        rows, cols = min_cost_assignment(cost)
        ref_rows, ref_cols = linear_sum_assignment(cost)
        assert len(rows) == min(shape)
        assert list(rows) == sorted(rows) and len(set(cols)) == len(cols)
        assert cost[rows, cols].sum() == pytest.approx(cost[ref_rows, ref_cols].sum(), abs=1e-9)


def test_larger_problems_and_bad_costs(rng: np.random.Generator) -> None:
    for shape in [(6, 8), (9, 12), (12, 9), (15, 15)]:  # many tracks and peaks: still exact, no scipy
        for _ in range(20):
            cost = rng.uniform(0.0, 180.0, shape)
            rows, cols = min_cost_assignment(cost)
            ref = linear_sum_assignment(cost)
            assert cost[rows, cols].sum() == pytest.approx(cost[ref].sum(), abs=1e-9)
            assert list(rows) == sorted(rows) and len(set(cols)) == len(cols) == min(shape)
    ties = np.ones((3, 3))  # every assignment is optimal: any one, but a valid one
    rows, cols = min_cost_assignment(ties)
    assert sorted(cols) == [0, 1, 2]
    with pytest.raises(ValueError, match="NaN or infinite"):
        min_cost_assignment(np.array([[0.0, np.nan]]))


def test_gated_assignment_maximises_pairs_inside_the_gate_first() -> None:
    # the cheapest single pair (0, 0) would leave row 1 unmatched; two gated pairs win
    dist = np.array([[1.0, 20.0], [5.0, 50.0]])
    assert gated_assignment(dist, 25.0) == [(0, 1), (1, 0)]
    # nothing outside the gate is ever returned, per-row gates included
    assert gated_assignment(dist, np.array([10.0, 4.0])) == [(0, 0)]
    assert gated_assignment(np.zeros((0, 2)), 30.0) == []

"""Scoring tracks against labels (sst_ros.tracking.score): nearest track per talker, wrap-aware."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sst_ros.data.clipset import Labels
from sst_ros.tracking.score import nearest_error, score_tracks, truth_at


def _labels(az: list[float], active: list[bool]) -> Labels:
    n = len(az)
    return Labels(
        time_s=np.arange(n) * 0.1,
        azimuth_deg=np.asarray(az, dtype=np.float64),
        elevation_deg=np.zeros(n),
        active=np.asarray(active, dtype=bool),
        frame_s=0.1,
    )


def test_nearest_error_wraps_around_180() -> None:
    assert nearest_error([170.0, -60.0], -175.0) == (170.0, pytest.approx(15.0))
    assert nearest_error([], 10.0) is None


def test_truth_at_per_talker() -> None:
    a = _labels([10.0, 20.0, 30.0], [True, False, True])
    b = _labels([-90.0] * 2, [True, True])
    assert truth_at([a, b], 0.0) == [10.0, -90.0]
    assert truth_at([a, b], 0.1) == [None, -90.0]
    assert truth_at([a, b], 0.2) == [30.0, None]  # b has no label there


def test_score_two_talkers_with_a_missed_frame() -> None:
    a = _labels([10.0, 10.0, 10.0, 10.0], [True, True, True, False])
    b = _labels([-100.0, -100.0, -100.0, -100.0], [True, True, True, True])
    times = [0.0, 0.1, 0.2, 0.3]
    estimates = [[12.0, -104.0], [8.0], [], [-96.0]]
    score = score_tracks(times, estimates, [a, b])
    # a: 2, 2, missed; b: 4, 108 (the only estimate is a's), missed, 4
    assert (score.n_active, score.n_errors) == (7, 5)
    assert score.mae_deg == pytest.approx((2 + 2 + 4 + 108 + 4) / 5)
    assert score.detected_fraction == pytest.approx(5 / 7)


def test_no_labels_gives_nan() -> None:
    score = score_tracks([0.0, 0.1], [[1.0], []], [])
    assert math.isnan(score.mae_deg) and math.isnan(score.detected_fraction) and score.n_active == 0

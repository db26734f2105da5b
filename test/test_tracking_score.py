"""Scoring tracks against labels (sst_ros.tracking.score): gated optimal matching, F1, identity
switches, OSPA, interferers; wrap-aware throughout."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sst_ros.data.clipset import Labels, SourceLabels
from sst_ros.errors import ConfigError, DataError
from sst_ros.model.azimuth import AzimuthGrid
from sst_ros.tracking.score import (
    ScoreConfig,
    TrackScore,
    match_frame,
    nearest_error,
    ospa_distance,
    score_tracks,
    truth_at,
)
from sst_ros.tracking.types import Track


def _labels(az: list[float], active: list[bool]) -> Labels:
    n = len(az)
    return Labels(
        time_s=np.arange(n) * 0.1,
        azimuth_deg=np.asarray(az, dtype=np.float64),
        elevation_deg=np.zeros(n),
        active=np.asarray(active, dtype=bool),
        frame_s=0.1,
    )


def _multi(sources: dict[int, tuple[list[float], list[bool]]]) -> Labels:
    n = len(next(iter(sources.values()))[0])
    srcs = [SourceLabels(i, az, np.zeros(n), act) for i, (az, act) in sources.items()]
    return Labels.from_sources(np.arange(n) * 0.1, srcs)


def test_match_frame_is_optimal_gated_and_wraps() -> None:
    # Greedy nearest would give talker 0 the estimate at 10 and leave talker 1 (at 25) unmatched.
    assert [(i, j) for i, j, _ in match_frame([0.0, 25.0], [10.0, -5.0])] == [(0, 1), (1, 0)]
    ((i, j, d),) = match_frame([179.0], [-171.0])
    assert (i, j, d) == (0, 0, pytest.approx(10.0))
    assert match_frame([0.0], [30.0]) != [] and match_frame([0.0], [30.5]) == []  # gate inclusive
    assert match_frame([], [1.0]) == [] and match_frame([1.0], []) == []


def test_ospa_definition() -> None:
    assert ospa_distance([], []) == 0.0
    assert ospa_distance([10.0], []) == 30.0 and ospa_distance([], [10.0]) == 30.0
    assert ospa_distance([10.0], [14.0]) == pytest.approx(4.0)
    # one matched at 4 deg, one extra estimate: (4 + 30) / 2
    assert ospa_distance([10.0], [14.0, 100.0]) == pytest.approx(17.0)
    assert ospa_distance([10.0], [90.0]) == pytest.approx(30.0)  # distances are cut off at c
    assert ospa_distance([0.0], [3.0], order=2) == pytest.approx(3.0)


def test_labels_scored_against_themselves_are_perfect() -> None:
    n = 40
    t = np.arange(n)
    lab = _multi({
        0: (list(-170.0 + 9.0 * t), list(t % 10 != 0)),
        1: (list(np.full(n, 90.0)), list(t >= 5)),
        -1: (list(np.full(n, -45.0)), [True] * n),
    })  # fmt: skip
    frames = [[(s.source_id, s.azimuth_deg[k]) for s in lab.talkers() if s.active[k]] for k in range(n)]
    score = score_tracks(frames, lab)
    assert score.mae_deg == 0.0 and score.f1 == 1.0 and score.precision == 1.0 and score.recall == 1.0
    assert score.n_id_switches == 0 and score.id_switches_per_min == 0.0 and score.ospa_deg == 0.0
    assert score.interferer_rate == 0.0 and score.n_interferer_frames == n
    assert score.n_frames == n and score.n_true == score.n_matched == score.n_reported
    d = score.to_dict()
    assert d["f1"] == 1.0 and d["n_matched"] == score.n_matched and d["duration_s"] == pytest.approx(4.0)


def test_swapping_track_ids_halfway_is_one_switch_per_talker() -> None:
    n = 20
    lab = _multi({0: ([20.0] * n, [True] * n), 1: ([-100.0] * n, [True] * n)})
    first, second = (1, 2), (2, 1)
    frames = [
        [Track(ids[0], 20.0, 0, 1, 1, 0, 1, True), Track(ids[1], -100.0, 0, 1, 1, 0, 1, True)]
        for ids in [first] * (n // 2) + [second] * (n - n // 2)
    ]
    score = score_tracks(frames, lab)
    assert score.n_id_switches == 2  # one per talker
    assert score.id_switches_per_min == pytest.approx(2 / (n * 0.1 / 60.0))
    assert score.f1 == 1.0 and score.ospa_deg == 0.0
    # A talker that loses its track and gets it back keeps its identity; bare azimuths have no id.
    gaps = [[(7, 20.0)], [], [(7, 20.0)], [(8, 20.0)]]
    assert score_tracks(gaps, _multi({0: ([20.0] * 4, [True] * 4)})).n_id_switches == 1
    assert score_tracks([[20.0], [20.0]], _labels([20.0, 20.0], [True, True])).n_id_switches == 0


def test_close_talkers_do_not_swap_stable_tracks_from_frame_to_frame() -> None:
    """Two talkers 8 deg apart, two tracks each within the gate of both: the per-frame optimal
    assignment alone would flip the pairs whenever the estimates cross; CLEAR-MOT keeps them."""
    n = 10
    lab = _multi({0: ([0.0] * n, [True] * n), 1: ([8.0] * n, [True] * n)})
    frames = [[(1, 1.0 if k % 2 else 7.0), (2, 7.0 if k % 2 else 1.0)] for k in range(n)]
    assert score_tracks(frames, lab).n_id_switches == 0
    assert score_tracks(frames, lab).n_matched == 2 * n


def test_gate_estimate_40_deg_away_is_a_miss_and_a_false_positive() -> None:
    lab = _labels([0.0, 0.0], [True, True])
    score = score_tracks([[(1, 40.0)], [(1, 10.0)]], lab)
    assert (score.n_matched, score.n_missed, score.n_false_positives) == (1, 1, 1)
    assert score.mae_deg == pytest.approx(10.0)
    assert score.precision == 0.5 and score.recall == 0.5 and score.f1 == 0.5
    assert score.ospa_deg == pytest.approx((30.0 + 10.0) / 2)
    assert score_tracks([[(1, 40.0)]], lab, times_s=[0.0], config=ScoreConfig(gate_deg=45.0)).n_matched == 1


def test_unmatched_track_near_an_interferer_counts_toward_interferer_rate() -> None:
    lab = _multi({0: ([0.0] * 4, [True] * 4), -1: ([120.0] * 4, [True, True, True, False])})
    frames = [
        [(1, 2.0), (2, 110.0)],  # interferer tracked as a talker (10 deg away, unmatched)
        [(1, 2.0)],  # not tracked
        [(1, 2.0), (2, 170.0)],  # a false positive, but 50 deg from the interferer
        [(1, 2.0), (2, 120.0)],  # interferer inactive: not counted
    ]
    score = score_tracks(frames, lab)
    assert (score.n_interferer_frames, score.n_interferer_tracked) == (3, 1)
    assert score.interferer_rate == pytest.approx(1 / 3)
    assert score.n_false_positives == 3 and score.n_matched == 4
    # A track matched to a talker standing next to the interferer is not the interferer's.
    near = _multi({0: ([100.0], [True]), -1: ([110.0], [True])})
    assert score_tracks([[(1, 104.0)]], near).n_interferer_tracked == 0


def test_single_source_labels_and_times() -> None:
    lab = _labels([10.0, 10.0, 10.0, 10.0], [True, True, True, False])
    # reported frames 2..3 only (times on the label grid), plus one frame off the labels
    score = score_tracks([[12.0], [8.0, 50.0], [1.0]], lab, times_s=[0.2, 0.3, 0.9])
    assert score.n_frames == 2 and score.n_true == 1 and score.n_matched == 1 and score.n_reported == 3
    assert score.mae_deg == pytest.approx(2.0)
    with pytest.raises(DataError, match="times_s"):
        score_tracks([[1.0]], lab)
    with pytest.raises(DataError, match="reported track"):
        score_tracks([["x"]] * 4, lab)


def test_linear_array_folds_mirror_images() -> None:
    grid = AzimuthGrid(n_bins=37, circular=False, center_deg=90.0)  # axis along x
    lab = _labels([60.0], [True])
    assert score_tracks([[-60.0]], lab).n_matched == 0
    assert score_tracks([[-60.0]], lab, identifiable=grid).mae_deg == pytest.approx(0.0)  # mirror across the axis


def test_overlap_recall_counts_only_frames_with_several_active_talkers() -> None:
    """Talker 0 speaks in all 10 frames, talker 1 joins in frames 6-9; a model that reports only
    talker 0 finds all 6 talker-frames where one speaks but 4 of the 8 where both speak. An
    interferer beside one talker is no overlap."""
    n = 10
    lab = _multi({0: ([0.0] * n, [True] * n), 1: ([120.0] * n, [k >= 6 for k in range(n)])})
    only_first = [[(1, 2.0)] for _ in range(n)]
    score = score_tracks(only_first, lab)
    assert (score.n_true, score.n_matched) == (14, 10)
    assert (score.n_true_overlap, score.n_matched_overlap) == (8, 4)
    assert score.overlap_recall == pytest.approx(0.5) and score.to_dict()["overlap_recall"] == pytest.approx(0.5)
    both = [[(1, 2.0)] + ([(2, 118.0)] if k >= 6 else []) for k in range(n)]
    assert score_tracks(both, lab).overlap_recall == 1.0
    # one talker at a time: no overlap frame, so the figure is undefined, not perfect
    assert math.isnan(score_tracks(only_first, _labels([0.0] * n, [True] * n)).overlap_recall)
    pooled = TrackScore.pooled([score, score_tracks(both, lab)])
    assert (pooled.n_true_overlap, pooled.n_matched_overlap) == (16, 12)
    with_interferer = _multi({0: ([0.0] * n, [True] * n), -1: ([120.0] * n, [True] * n)})
    assert score_tracks(only_first, with_interferer).n_true_overlap == 0


def test_pooled_scores_sum_counts() -> None:
    a = score_tracks([[(1, 2.0)]], _labels([0.0], [True]))
    b = score_tracks([[(1, 40.0)], []], _labels([0.0, 0.0], [True, False]))
    p = TrackScore.pooled([a, b])
    assert (p.n_frames, p.n_true, p.n_reported, p.n_matched) == (3, 2, 2, 1)
    assert p.mae_deg == pytest.approx(2.0) and p.ospa_deg == pytest.approx((2.0 + 30.0 + 0.0) / 3)
    assert math.isnan(TrackScore.pooled([]).f1)


def test_no_labels_gives_nan() -> None:
    empty = Labels(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, bool))
    score = score_tracks([[1.0], []], empty, times_s=[0.0, 0.1])
    assert math.isnan(score.mae_deg) and math.isnan(score.recall) and score.n_true == 0 and score.n_frames == 0


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="gate_deg"):
        ScoreConfig(gate_deg=0.0)
    with pytest.raises(ConfigError, match="ospa_order"):
        ScoreConfig(ospa_order=0.5)


def test_display_helpers() -> None:
    assert nearest_error([170.0, -60.0], -175.0) == (170.0, pytest.approx(15.0))
    assert nearest_error([], 10.0) is None
    a = _labels([10.0, 20.0, 30.0], [True, False, True])
    b = _labels([-90.0] * 2, [True, True])
    assert truth_at([a, b], 0.0) == [10.0, -90.0]
    assert truth_at([a, b], 0.1) == [None, -90.0]
    assert truth_at([a, b], 0.2) == [30.0, None]  # b has no label there

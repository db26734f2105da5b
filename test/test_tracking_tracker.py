"""Multi-source tracker: ids, birth/death hysteresis, wrap-aware association (pure Python)."""

from __future__ import annotations

import numpy as np
import pytest

from sst_ros.errors import ConfigError
from sst_ros.geometry import angular_distance_deg, wrap_deg
from sst_ros.tracking import MultiTracker, Peak, TrackerConfig


def test_single_moving_talker_keeps_one_id(rng: np.random.Generator) -> None:
    tracker = MultiTracker(TrackerConfig(birth_hits=3, coast_misses=5, death_misses=5))
    ids: set[int] = set()
    errors = []
    for k in range(200):  # 20 s, 30 deg/s, noisy, 10 % missed detections
        true_az = float(wrap_deg(-100.0 + 3.0 * k))
        peaks = [] if rng.random() < 0.1 else [Peak(float(wrap_deg(true_az + rng.normal(0, 3.0))), 0.8)]
        tracks = tracker.update(peaks)
        if k >= 5:
            assert len(tracks) == 1
            ids.add(tracks[0].track_id)
            errors.append(angular_distance_deg(tracks[0].azimuth_deg, true_az))
    assert ids == {1}
    assert float(np.mean(errors)) < 5.0


def test_birth_hysteresis_suppresses_single_frame_blip() -> None:
    tracker = MultiTracker(TrackerConfig(birth_hits=3, birth_window=4))
    assert tracker.update([Peak(50.0, 0.9)]) == []
    for _ in range(6):
        assert tracker.update([]) == []
    assert tracker.tracks(include_hidden=True) == []
    for _ in range(2):
        assert tracker.update([Peak(-20.0, 0.9)]) == []
    confirmed = tracker.update([Peak(-20.0, 0.9)])
    assert [t.track_id for t in confirmed] == [2]


def test_ended_track_is_hidden_after_coasting_and_removed_after_death_misses() -> None:
    cfg = TrackerConfig(birth_hits=2, coast_misses=3, death_misses=6)
    tracker = MultiTracker(cfg)
    for _ in range(5):
        tracks = tracker.update([Peak(120.0, 0.9)])
    assert len(tracks) == 1 and tracks[0].misses == 0
    for m in range(1, cfg.coast_misses):
        tracks = tracker.update([])
        assert len(tracks) == 1 and tracks[0].misses == m  # coasting (hysteresis)
        assert tracks[0].activity < 0.9
    assert tracker.update([]) == []  # ended for the outside world
    assert len(tracker.tracks(include_hidden=True)) == 1  # identity kept a little longer
    for _ in range(cfg.death_misses - cfg.coast_misses):
        assert tracker.update([]) == []
    assert tracker.tracks(include_hidden=True) == []  # removed
    # a new talker later gets a new id, never the old one
    for _ in range(3):
        tracks = tracker.update([Peak(120.0, 0.9)])
    assert [t.track_id for t in tracks] == [2]


def test_talker_pausing_keeps_its_id() -> None:
    tracker = MultiTracker(TrackerConfig(birth_hits=2, coast_misses=5, death_misses=30, gate_deg=30.0))
    for k in range(10):
        tracks = tracker.update([Peak(60.0 + k, 0.8)])
    assert [t.track_id for t in tracks] == [1]
    for _ in range(15):  # a 1.5 s pause between utterances: hidden, not forgotten
        tracks = tracker.update([])
    assert tracks == []
    tracks = tracker.update([Peak(85.0, 0.8)])  # resumes a little further on, within the gate
    assert [t.track_id for t in tracks] == [1] and tracks[0].misses == 0


def test_association_across_plus_minus_180() -> None:
    tracker = MultiTracker(TrackerConfig(birth_hits=2, gate_deg=20.0))
    seq = [170.0, 174.0, 178.0, -178.0, -174.0, -170.0, -166.0]
    ids = []
    for az in seq:
        tracks = tracker.update([Peak(az, 0.9)])
        ids.extend(t.track_id for t in tracks)
        for t in tracks:
            assert -180.0 < t.azimuth_deg <= 180.0
    assert set(ids) == {1}
    assert len(tracker.tracks(include_hidden=True)) == 1
    assert angular_distance_deg(tracks[0].azimuth_deg, -166.0) < 6.0


def test_two_sources_keep_their_ids() -> None:
    tracker = MultiTracker(TrackerConfig(birth_hits=2, gate_deg=25.0))
    for k in range(60):
        a = float(wrap_deg(30.0 + k))  # moving counter-clockwise
        b = float(wrap_deg(-90.0 - k))  # moving clockwise
        peaks = [Peak(b, 0.7), Peak(a, 0.9)] if k % 2 else [Peak(a, 0.9), Peak(b, 0.7)]
        tracks = tracker.update(peaks)
    by_id = {t.track_id: t for t in tracks}
    assert sorted(by_id) == [1, 2]
    assert angular_distance_deg(by_id[1].azimuth_deg, wrap_deg(30.0 + 59)) < 5.0
    assert angular_distance_deg(by_id[2].azimuth_deg, wrap_deg(-90.0 - 59)) < 5.0


def test_gate_rejects_far_peak_and_starts_new_track() -> None:
    tracker = MultiTracker(TrackerConfig(birth_hits=1, gate_deg=20.0, coast_misses=3, death_misses=3, handover_deg=0.0))
    tracker.update([Peak(0.0, 0.9)])
    tracks = tracker.update([Peak(90.0, 0.9)])
    assert sorted(t.track_id for t in tracks) == [1, 2]
    old = next(t for t in tracks if t.track_id == 1)
    assert old.misses == 1 and angular_distance_deg(old.azimuth_deg, 0.0) < 1.0


def test_reset_and_config_validation() -> None:
    tracker = MultiTracker(TrackerConfig(birth_hits=1))
    tracker.update([Peak(10.0, 0.9)])
    tracker.reset()
    assert tracker.tracks(include_hidden=True) == []
    assert [t.track_id for t in tracker.update([Peak(10.0, 0.9)])] == [1]
    with pytest.raises(ConfigError, match="birth_window"):
        TrackerConfig(birth_hits=5, birth_window=3)
    with pytest.raises(ConfigError, match="gate_deg"):
        TrackerConfig(gate_deg=0.0)
    with pytest.raises(ConfigError, match="coast_misses"):
        TrackerConfig(coast_misses=10, death_misses=5)


def test_jump_out_of_the_gate_hands_the_id_over() -> None:
    """Regression: an outlier peak at a speech onset pulled a track away; the talker got a new id."""
    tracker = MultiTracker(TrackerConfig(birth_hits=2, gate_deg=30.0, handover_deg=90.0))
    for _ in range(5):
        tracks = tracker.update([Peak(70.0, 0.8)])
    tracker.update([Peak(40.0, 0.4)])  # outlier within the gate
    ids = set()
    for _ in range(6):  # the talker is at 100 deg: out of the gate of the pulled track
        ids |= {t.track_id for t in tracker.update([Peak(100.0, 0.8)])}
    tracks = tracker.tracks()
    assert ids == {1} and [t.track_id for t in tracks] == [1]
    assert angular_distance_deg(tracks[0].azimuth_deg, 100.0) < 5.0
    # two talkers at once never swap: both keep getting peaks
    two = MultiTracker(TrackerConfig(birth_hits=2, handover_deg=90.0))
    for _ in range(5):
        two.update([Peak(0.0, 0.8)])
    for _ in range(5):
        tracks = two.update([Peak(0.0, 0.8), Peak(60.0, 0.8)])
    assert sorted(t.track_id for t in tracks) == [1, 2]

"""The pieces of ``training/multi_recall_anatomy.py``: frame energies, the cause of a miss, the
per-talker-frame rows (SINR, SIR, own level, onset, detection) and the reweighted recall."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import REPO_ROOT, load_module

from sst_ros.data.clipset import Labels, SourceLabels
from sst_ros.model.azimuth import AzimuthGrid
from sst_ros.tracking.pipeline import PipelineConfig
from sst_ros.tracking.spectra import FrameTracks
from sst_ros.tracking.types import Peak, PeakConfig, Track

anatomy = load_module("multi_recall_anatomy", REPO_ROOT / "training" / "multi_recall_anatomy.py")
GRID = AzimuthGrid(n_bins=72)
CENTERS = GRID.bin_centers_deg()
TRACKING = PipelineConfig(peaks=PeakConfig(max_peaks=3, threshold=0.3, min_separation_deg=25.0))


def _bump(center_deg: float, height: float) -> np.ndarray:
    d = np.abs((CENTERS - center_deg + 180.0) % 360.0 - 180.0)
    return height * np.exp(-0.5 * (d / 8.0) ** 2)


def _track(track_id: int, azimuth_deg: float) -> Track:
    return Track(track_id, azimuth_deg, 0.0, 1.0, 5, 0, 5, True)


def _frame(activity: float = 0.9, peaks: tuple[float, ...] = (), tracks: tuple[Track, ...] = ()) -> FrameTracks:
    return FrameTracks(tracks=tracks, peaks=tuple(Peak(az, 0.9) for az in peaks), activity=activity, bad=False)


def test_frame_energies_sum_each_frame_over_microphones() -> None:
    img = np.zeros((30, 2))
    img[10:20, 0] = 2.0  # frame 1 of 10 samples: 10 samples x 4 on one microphone
    img[20:30] = 1.0  # frame 2: 10 samples x 1 on both
    np.testing.assert_allclose(anatomy.frame_energies([img], 10, 3), [[0.0, 40.0, 20.0]])
    np.testing.assert_allclose(anatomy.frame_energies([img], 10, 4)[0, 3], 0.0)  # past the image


def test_miss_cause_names_what_happened() -> None:
    spec = _bump(0.0, 0.9) + _bump(90.0, 0.2)
    cause = anatomy.miss_cause
    assert cause(_frame(activity=0.2, peaks=(0.0,)), spec, GRID, 0.0, TRACKING, 30.0) == "activity gated"
    assert cause(_frame(peaks=(0.0,)), spec, GRID, 88.0, TRACKING, 30.0) == "peak below threshold"
    assert cause(_frame(peaks=(0.0,)), spec, GRID, -100.0, TRACKING, 30.0) == "no local max in gate"
    assert cause(_frame(peaks=(0.0,)), spec, GRID, 10.0, TRACKING, 30.0) == "peak, no track"
    # a local maximum above the threshold that the picking dropped (no extracted peak in the gate)
    assert cause(_frame(peaks=()), spec, GRID, 10.0, TRACKING, 30.0) == "peak dropped by picking"
    # two local maxima in the gate: the higher one decides
    two = _bump(80.0, 0.1) + _bump(100.0, 0.5)
    assert cause(_frame(peaks=(100.0,)), two, GRID, 85.0, TRACKING, 30.0) == "peak, no track"


def test_talker_frames_measure_each_active_talker() -> None:
    t = np.arange(4) * 0.1
    labels = Labels.from_sources(
        t,
        [
            SourceLabels(0, np.zeros(4), np.zeros(4), np.array([True, True, True, False])),
            SourceLabels(1, np.full(4, 90.0), np.zeros(4), np.array([False, True, True, True])),
        ],
    )
    energy = np.array([[1.0, 10.0, 100.0, 0.0], [0.0, 1.0, 1.0, 50.0]])
    background = np.array([1.0, 9.0, 0.0, 50.0])
    spectrum = np.tile(_bump(0.0, 0.9) + _bump(90.0, 0.2), (4, 1))
    frames = [
        _frame(peaks=(0.0,), tracks=(_track(1, 2.0),)),
        _frame(peaks=(0.0,), tracks=(_track(1, 2.0), _track(2, 150.0))),  # talker 1's track is far off
        _frame(peaks=(0.0,), tracks=(_track(1, 2.0), _track(2, 95.0))),
        _frame(activity=0.1),
    ]
    rows = anatomy.talker_frames(labels, frames, spectrum, GRID, energy, background, 7.0, TRACKING)
    assert len(rows) == 6  # 3 active frames of talker 0, 3 of talker 1
    first = rows[0]  # frame 0, talker 0: alone, SINR against the background only
    assert first.detected and first.cause == "" and np.isposinf(first.sir_db) and first.since_onset == 0
    assert first.sinr_db == pytest.approx(0.0) and first.own_level_db == pytest.approx(-20.0)
    assert first.snr_db == 7.0
    # frame 1: talker 0 at 10 against talker 1's 1 (+ background 9); talker 1 missed (its track is 60 deg off)
    t0, t1 = rows[1], rows[2]
    assert t0.detected and t0.sir_db == pytest.approx(10.0) and t0.sinr_db == pytest.approx(0.0)
    assert t0.since_onset == 1 and t0.own_level_db == pytest.approx(-10.0)
    assert not t1.detected and t1.cause == "peak below threshold" and t1.sir_db == pytest.approx(-10.0)
    assert t1.own_level_db == pytest.approx(-10.0 * np.log10(50.0))
    # frame 2: both detected; frame 3: talker 1 gated by the activity
    assert rows[3].detected and rows[4].detected and rows[4].since_onset == 1
    assert not rows[5].detected and rows[5].cause == "activity gated" and rows[5].since_onset == 2
    assert rows[5].sinr_db == pytest.approx(0.0) and np.isposinf(rows[5].sir_db)


def _rows(sinr_db: list[float], detected: list[bool]) -> list:
    return [anatomy.TalkerFrame(d, "", s, s, 0.0, 0.0, 0) for s, d in zip(sinr_db, detected, strict=True)]


def test_matched_recall_reweights_by_the_reference_rate_per_sinr_bin() -> None:
    reference = _rows([12.0, 12.0, -12.0, -12.0], [True, True, True, False])  # >= 10 dB: 1.0, < -10 dB: 0.5
    rows = _rows([12.0, -12.0, -12.0, -12.0], [False, False, False, False])
    assert anatomy.matched_recall(rows, reference) == (1.0 + 3 * 0.5) / 4
    # a bin the reference lacks keeps the rows' own rate
    assert anatomy.matched_recall(_rows([2.0, 2.0], [True, False]), reference) == 0.5


def test_false_tracks_name_what_lies_in_the_gate() -> None:
    t = np.arange(4) * 0.1
    labels = Labels.from_sources(
        t,
        [
            SourceLabels(0, np.zeros(4), np.zeros(4), np.array([True, True, False, False])),
            SourceLabels(1, np.full(4, 90.0), np.zeros(4), np.array([False, False, False, False])),
            SourceLabels(-1, np.full(4, -90.0), np.zeros(4), np.array([True, True, True, False])),  # an interferer
        ],
    )
    frames = [
        # frame 0: talker 0 matched; a second track 40 deg beside it; one at the silent talker 1
        _frame(tracks=(_track(1, 2.0), _track(2, 40.0), _track(3, 95.0))),
        # frame 1: talker 0 matched; a track on the active interferer; one where nothing is
        _frame(tracks=(_track(1, 1.0), _track(4, -85.0), _track(5, 180.0))),
        # frame 2: talker 0 silent, active in frame 1: its label edge; a track at 150 deg
        _frame(tracks=(_track(1, 3.0), _track(5, 150.0))),
        # frame 3: the interferer silent by label
        _frame(tracks=(_track(4, -90.0),)),
    ]
    reported, causes = anatomy.false_tracks(labels, frames)
    assert reported == 9
    assert causes == [
        "beside an active talker",
        "silent talker",
        "interferer",
        "elsewhere",
        "label edge of a talker",
        "elsewhere",
        "silent interferer",
    ]
    # a talker silent in frames 2 and 3 only: frame 3 is no longer an edge
    late = [_frame(), _frame(), _frame(), _frame(tracks=(_track(1, 0.0),))]
    assert anatomy.false_tracks(labels, late) == (1, ["silent talker"])


def test_false_tracks_edges_before_onsets_precedence_and_duplicates() -> None:
    t = np.arange(4) * 0.1
    labels = Labels.from_sources(
        t,
        [
            SourceLabels(0, np.zeros(4), np.zeros(4), np.array([False, False, True, True])),
            SourceLabels(1, np.full(4, 60.0), np.zeros(4), np.array([False, False, False, False])),
            SourceLabels(-1, np.full(4, 70.0), np.zeros(4), np.array([True, True, True, True])),  # an interferer
        ],
    )
    frames = [
        _frame(tracks=(_track(1, 0.0),)),  # talker 0 silent, not beside an active frame: silent talker
        _frame(tracks=(_track(1, 0.0), _track(2, 62.0))),  # before talker 0's onset: an edge; 62: the interferer wins
        _frame(tracks=(_track(1, 0.0), _track(3, 15.0), _track(4, float("nan")))),  # a duplicate 15 deg off
    ]
    reported, causes = anatomy.false_tracks(labels, frames)
    assert reported == 5  # the NaN track is not counted, as the scorer drops it
    assert causes == ["silent talker", "label edge of a talker", "interferer", "beside an active talker"]
    # the output stops a frame before the labels: its last frame still sees the onset after it
    assert anatomy.false_tracks(labels, frames[:2])[1][1] == "label edge of a talker"


def test_print_false_tracks_precision_with_and_without_the_label_edges(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [anatomy.TalkerFrame(i < 8, "", 0.0, 0.0, 0.0, 0.0, 0) for i in range(10)]  # recall 0.8
    scene = anatomy.SceneAnatomy(rows, 10, ["label edge of a talker", "elsewhere"])  # 8 of 10 reported are right
    anatomy.print_false_tracks("two_talkers", [scene])
    out = capsys.readouterr().out
    assert "false track: label edge of a talker    10.0 % of the 10 reported" in out
    assert "precision 0.800, F1 0.800 (recall 0.800)\n" in out
    assert "precision 0.889, F1 0.842 (recall 0.800), label-edge tracks not scored" in out  # 8 / 9

"""The pieces of ``training/multi_recall_anatomy.py``: frame energies, the cause of a miss and the
single-talker-matched recall."""

from __future__ import annotations

import numpy as np
from helpers import REPO_ROOT, load_module

anatomy = load_module("multi_recall_anatomy", REPO_ROOT / "training" / "multi_recall_anatomy.py")
CENTERS = np.arange(72) * 5.0 - 175.0  # a 5-degree circular grid, degrees


def _bump(center_deg: float, height: float) -> np.ndarray:
    d = np.abs((CENTERS - center_deg + 180.0) % 360.0 - 180.0)
    return height * np.exp(-0.5 * (d / 10.0) ** 2)


def test_frame_energies_sum_each_frame_over_microphones() -> None:
    img = np.zeros((30, 2))
    img[10:20, 0] = 2.0  # frame 1 of 10 samples: 10 samples x 4 on one microphone
    img[20:30] = 1.0  # frame 2: 10 samples x 1 on both
    np.testing.assert_allclose(anatomy.frame_energies([img], 10, 3), [[0.0, 40.0, 20.0]])
    # frames past the image stay 0
    np.testing.assert_allclose(anatomy.frame_energies([img], 10, 4)[0, 3], 0.0)


def test_miss_cause_names_what_happened() -> None:
    spec = _bump(0.0, 0.9) + _bump(90.0, 0.2)
    cause = anatomy.miss_cause
    assert cause(spec, 0.2, CENTERS, 0.0, 0.5, 0.3, 30.0) == "activity gated"
    assert cause(spec, 0.9, CENTERS, 88.0, 0.5, 0.3, 30.0) == "peak below threshold"
    assert cause(spec, 0.9, CENTERS, -100.0, 0.5, 0.3, 30.0) == "no local max in gate"
    assert cause(spec, 0.9, CENTERS, 10.0, 0.5, 0.3, 30.0) == "peak, no track"


def _frames(sinr_db: list[float], detected: list[bool]) -> list:
    return [anatomy.TalkerFrame(d, "", s, s, 0.0, 0.0, 0) for s, d in zip(sinr_db, detected, strict=True)]


def test_matched_recall_reweights_by_the_reference_rate_per_sinr_bin() -> None:
    reference = _frames([12.0, 12.0, -12.0, -12.0], [True, True, True, False])  # >= 10 dB: 1.0, < -10 dB: 0.5
    rows = _frames([12.0, -12.0, -12.0, -12.0], [False, False, False, False])
    assert anatomy.matched_recall(rows, reference) == (1.0 + 3 * 0.5) / 4
    # a bin the reference lacks keeps the rows' own rate
    rows = _frames([2.0, 2.0], [True, False])
    assert anatomy.matched_recall(rows, reference) == 0.5

"""Tracking metrics on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sst_ros.errors import DataError
from sst_ros.geometry import MicArray
from sst_ros.train.metrics import doa_metrics


def test_wrap_around_at_180() -> None:
    m = doa_metrics(np.array([179.0, -178.0, 0.0]), np.array([-179.0, 178.0, 350.0]), np.ones(3, bool))
    assert m["mae_deg"] == pytest.approx((2.0 + 4.0 + 10.0) / 3)
    assert m["acc5"] == pytest.approx(2 / 3)
    assert m["acc10"] == pytest.approx(1.0)
    assert m["n_active"] == 3


def test_inactive_frames_are_excluded() -> None:
    pred = np.array([10.0, 100.0, -50.0, 12.0])
    true = np.array([10.0, 0.0, 90.0, 10.0])
    act = np.array([True, False, False, True])
    m = doa_metrics(pred, true, act)
    assert m["mae_deg"] == pytest.approx(1.0)
    assert m["acc5"] == 1.0 and m["n_active"] == 2 and m["n_frames"] == 4


def test_activity_f1_reported_separately() -> None:
    act = np.array([True, True, False, False, True])
    pa = np.array([0.9, 0.2, 0.7, 0.1, 0.6])  # tp 2, fn 1, fp 1
    m = doa_metrics(np.zeros(5), np.zeros(5), act, pa)
    assert m["activity_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert m["activity_precision"] == pytest.approx(2 / 3) and m["activity_recall"] == pytest.approx(2 / 3)
    assert m["acc5"] == 1.0  # missed detection does not gate the azimuth accuracy


def test_empty_predictions() -> None:
    m = doa_metrics(np.zeros(0), np.zeros(0), np.zeros(0, bool), np.zeros(0))
    assert m["n_active"] == 0 and m["n_frames"] == 0
    assert math.isnan(m["mae_deg"]) and math.isnan(m["acc10"]) and math.isnan(m["activity_f1"])
    # no active frame at all: azimuth metrics undefined, never a crash
    m = doa_metrics(np.array([5.0, 6.0]), np.array([0.0, 0.0]), np.zeros(2, bool), np.zeros(2))
    assert math.isnan(m["mae_deg"]) and math.isnan(m["activity_f1"])


def test_missing_estimate_counts_as_worst_error() -> None:
    m = doa_metrics(np.array([np.nan, 0.0]), np.array([0.0, 0.0]), np.ones(2, bool))
    assert m["mae_deg"] == pytest.approx(90.0)
    assert m["acc10"] == pytest.approx(0.5)


def test_identifiable_range_of_a_linear_array() -> None:
    pair = MicArray("pair", np.array([[0.0, 0.05, 0.0], [0.0, -0.05, 0.0]]), (0, 1), 2)  # broadside 0 deg
    pred = np.array([30.0, 170.0])  # front estimates of back sources are not errors
    true = np.array([150.0, 10.0])
    assert doa_metrics(pred, true, np.ones(2, bool))["mae_deg"] == pytest.approx((120 + 160) / 2)
    for ident in (pair, 0.0):
        assert doa_metrics(pred, true, np.ones(2, bool), identifiable=ident)["mae_deg"] == pytest.approx(0.0)


def test_length_mismatch_is_refused() -> None:
    with pytest.raises(DataError, match="same 100 ms frame grid"):
        doa_metrics(np.zeros(3), np.zeros(4), np.ones(4, bool))

"""Tracking metrics (the method's definitions: wrapped error on active frames only).

* ``mae_deg``: mean wrapped azimuth error over frames where the source is truly active.
* ``acc5`` / ``acc10``: fraction of those frames with error <= 5 / 10 degrees.
* ``activity_f1``: F1 of the predicted activity (``pred_activity >= activity_threshold``)
  against the true activity over all frames, reported separately (it does not gate the
  accuracy figures).

Conventions: a NaN predicted azimuth on an active frame means "no estimate" and counts as
the worst error (180 degrees) and a miss. With no active frames the azimuth figures are NaN;
with no true and no predicted active frames the F1 is NaN (undefined). For arrays with a
front-back ambiguity pass ``identifiable`` (the model's :class:`AzimuthGrid`, the
:class:`MicArray`, or a linear array's broadside azimuth in degrees): both the estimate and
the truth are folded into the identifiable half plane before the error is taken.
"""

from __future__ import annotations

import math

import numpy as np

from sst_ros.errors import DataError
from sst_ros.geometry import MicArray, angular_distance_deg
from sst_ros.model.azimuth import AzimuthGrid, grid_for_array

__all__ = ["doa_metrics", "fold_identifiable"]


def fold_identifiable(azimuth_deg: np.ndarray, identifiable: AzimuthGrid | MicArray | float | None) -> np.ndarray:
    """Fold azimuths (degrees) into the identifiable range (identity for None / circular)."""
    az = np.asarray(azimuth_deg, dtype=np.float64)
    if identifiable is None:
        return az
    if isinstance(identifiable, MicArray):
        identifiable = grid_for_array(identifiable)
    elif not isinstance(identifiable, AzimuthGrid):
        identifiable = AzimuthGrid(n_bins=37, circular=False, center_deg=float(identifiable))
    return identifiable.fold(az)


def doa_metrics(
    pred_az_deg: np.ndarray,
    true_az_deg: np.ndarray,
    true_active: np.ndarray,
    pred_activity: np.ndarray | None = None,
    activity_threshold: float = 0.5,
    identifiable: AzimuthGrid | MicArray | float | None = None,
) -> dict[str, float]:
    """Azimuth and activity metrics on one frame grid.

    Args:
        pred_az_deg: (T,) estimated azimuth, degrees (NaN = no estimate).
        true_az_deg: (T,) true azimuth, degrees.
        true_active: (T,) bool, source active.
        pred_activity: (T,) predicted activity probability (or bool), optional.
        activity_threshold: probability at or above which a frame counts as detected active.
        identifiable: fold angles into a linear array's identifiable half plane (see module doc).
    Returns:
        dict with ``mae_deg``, ``acc5``, ``acc10`` (fractions), ``activity_f1``,
        ``activity_precision``, ``activity_recall``, ``n_active``, ``n_frames``.
    """
    pred = np.asarray(pred_az_deg, dtype=np.float64).ravel()
    true = np.asarray(true_az_deg, dtype=np.float64).ravel()
    act = np.asarray(true_active).astype(bool).ravel()
    if not (pred.shape == true.shape == act.shape):
        raise DataError(
            f"metric inputs differ in length: pred {pred.shape}, true {true.shape}, active {act.shape}; "
            "put predictions and labels on the same 100 ms frame grid"
        )
    act = act & np.isfinite(true)
    out: dict[str, float] = {"n_active": int(act.sum()), "n_frames": int(act.size)}
    if act.any():
        p = fold_identifiable(pred[act], identifiable)
        t = fold_identifiable(true[act], identifiable)
        err = np.where(np.isfinite(p), np.asarray(angular_distance_deg(np.nan_to_num(p), t)), 180.0)
        out["mae_deg"] = float(err.mean())
        out["acc5"] = float((err <= 5.0).mean())
        out["acc10"] = float((err <= 10.0).mean())
    else:
        out["mae_deg"] = out["acc5"] = out["acc10"] = math.nan
    if pred_activity is None:
        out["activity_f1"] = out["activity_precision"] = out["activity_recall"] = math.nan
        return out
    pa = np.asarray(pred_activity, dtype=np.float64).ravel()
    if pa.shape != act.shape:
        raise DataError(f"pred_activity has {pa.shape[0]} frames, labels {act.shape[0]}")
    det = pa >= activity_threshold
    tp = float((det & act).sum())
    fp = float((det & ~act).sum())
    fn = float((~det & act).sum())
    out["activity_precision"] = tp / (tp + fp) if tp + fp > 0 else math.nan
    out["activity_recall"] = tp / (tp + fn) if tp + fn > 0 else math.nan
    out["activity_f1"] = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) > 0 else math.nan
    return out

"""Scoring tracker output against labels: per talker, the nearest track (no rclpy, no torch).

The tracker reports zero or more azimuths per 100 ms frame; a label set (one
:class:`~sst_ros.data.clipset.Labels` per talker) says where each talker is and whether it
is active. For every labelled active frame of every talker, the error is the wrap-aware
distance to the nearest reported azimuth (degrees); frames without any estimate count as
missed. Used by ``sst demo``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sst_ros.geometry import angular_distance_deg

if TYPE_CHECKING:
    from sst_ros.data.clipset import Labels

__all__ = ["TrackScore", "nearest_error", "score_tracks", "truth_at"]


def truth_at(truths: Sequence[Labels], t_s: float) -> list[float | None]:
    """True azimuth (degrees) of each talker at audio time ``t_s`` seconds; None where inactive or unlabelled."""
    out: list[float | None] = []
    for lab in truths:
        k = int(round(t_s / lab.frame_s))
        out.append(float(lab.azimuth_deg[k]) if 0 <= k < len(lab) and lab.active[k] else None)
    return out


def nearest_error(estimates_deg: Sequence[float], true_deg: float) -> tuple[float, float] | None:
    """(nearest estimate, its wrap-aware distance to ``true_deg``), degrees; None without estimates."""
    if not estimates_deg:
        return None
    d = [float(angular_distance_deg(a, true_deg)) for a in estimates_deg]
    i = int(np.argmin(d))
    return float(estimates_deg[i]), d[i]


@dataclass(frozen=True)
class TrackScore:
    """Accuracy of tracks against labels.

    Attributes:
        mae_deg: mean nearest-estimate error over labelled active frames with an estimate,
            degrees (NaN when there is none).
        detected_fraction: share of labelled active frames (all talkers) with at least one
            estimate (NaN without active frames).
        n_errors: frames (per talker) that have an error, i.e. were detected.
        n_active: labelled active frames (per talker).
    """

    mae_deg: float
    detected_fraction: float
    n_errors: int
    n_active: int


def score_tracks(
    times_s: Sequence[float], estimates_deg: Sequence[Sequence[float]], truths: Sequence[Labels]
) -> TrackScore:
    """Score per-frame estimates against labels.

    Args:
        times_s: (F,) audio time of the start of each reported frame, seconds.
        estimates_deg: per frame, the reported azimuths (degrees, any number).
        truths: one label set per talker (empty: nothing to score).
    """
    errors: list[float] = []
    n_active = 0
    for t, est in zip(times_s, estimates_deg, strict=True):
        for true_deg in truth_at(truths, float(t)):
            if true_deg is None:
                continue
            n_active += 1
            near = nearest_error(est, true_deg)
            if near is not None:
                errors.append(near[1])
    mae = float(np.mean(errors)) if errors else float("nan")
    detected = len(errors) / n_active if n_active else float("nan")
    return TrackScore(mae_deg=mae, detected_fraction=detected, n_errors=len(errors), n_active=n_active)

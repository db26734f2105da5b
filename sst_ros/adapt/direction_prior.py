"""Estimate a target's direction prior from the model's own estimates, and decide whether to ship it.

The weights (:class:`~sst_ros.model.direction_prior.DirectionPrior`) come from the histogram
of the model's decoded azimuths on the active frames of the unlabelled target recordings,
smoothed with a Gaussian of :data:`SMOOTHING_DEG`: a bin keeps weight 1 where talkers are heard
at least :data:`UNIFORM_SHARE` times as often as under a uniform distribution, and falls in
proportion below that, never under :data:`FLOOR`. So a target with talkers all around gets
weight 1 everywhere (no prior), and only directions the recordings (almost) never hold are
suppressed. No target label is read.

The prior is shipped only when (:func:`decide_direction_prior`):

1. the recordings hold at least :data:`MIN_ACTIVE_S` seconds of active frames;
2. at least :data:`MIN_SUPPRESSED_SHARE` of the directions are suppressed (weight below 1): the
   talkers keep to a sector of at most half the circle. A narrower gap in the estimates is as
   likely the model's own bias (a mismatched device makes it avoid some directions) as the room;
3. the earlier and the later half of the talker frames (in recording order) give the same
   weights within :data:`MAX_HALF_DIFFERENCE` (mean absolute difference): a sector
   that one half does not confirm is chance, not the room.

The settings were fixed before the benchmark's test clips were scored with them (an earlier
exploration of similar settings had looked at those clips; ``training/README.md`` says which).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sst_ros.geometry import angular_distance_deg
from sst_ros.model.azimuth import AzimuthGrid
from sst_ros.model.direction_prior import DirectionPrior
from sst_ros.model.runtime import TrackerModel

__all__ = [
    "ACTIVITY_MIN",
    "FLOOR",
    "MAX_HALF_DIFFERENCE",
    "MIN_ACTIVE_S",
    "MIN_SUPPRESSED_SHARE",
    "SMOOTHING_DEG",
    "UNIFORM_SHARE",
    "PriorDecision",
    "decide_direction_prior",
    "direction_weights",
    "learn_direction_prior",
    "target_directions",
]

ACTIVITY_MIN = 0.5
"""Frames with the model's activity above this count as talker frames."""
SMOOTHING_DEG = 15.0
"""Standard deviation of the Gaussian that smooths the direction histogram, degrees."""
UNIFORM_SHARE = 0.5
"""A bin keeps weight 1 where its density is at least this fraction of the uniform density."""
FLOOR = 0.1
"""Smallest weight: a talker outside the learned sector is suppressed, never removed."""
MIN_ACTIVE_S = 60.0
"""Talker frames needed before a prior is estimated, seconds."""
MAX_HALF_DIFFERENCE = 0.15
"""Largest mean absolute difference between the weights of the two halves of the recordings."""
MIN_SUPPRESSED_SHARE = 0.5
"""Smallest share of the azimuth bins that must be weighted down for a prior to be shipped."""


@dataclass(frozen=True)
class PriorDecision:
    """Whether the adapted model carries a direction prior, and why.

    Attributes:
        prior: the prior to ship, or None.
        reason: one sentence for the summary and the provenance.
        stats: the figures behind the decision (plain data): active seconds, suppressed share
            of the bins, the halves' difference, the settings.
    """

    prior: DirectionPrior | None
    reason: str
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the provenance (the weights themselves are stored with the model)."""
        return {"applied": self.prior is not None, "reason": self.reason, **self.stats}


def target_directions(loaded: TrackerModel, recordings: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The model's decoded azimuth (degrees, array frame) on the talker frames of each recording.

    Args:
        loaded: the model without a direction prior (the network's own estimates).
        recordings: float32 (frames, M) audio at the model's rate, microphone order.
    Returns:
        one (n_i,) float64 array per recording: azimuths of frames with activity > :data:`ACTIVITY_MIN`.
    """
    from sst_ros.model.infer import predict_audio

    fs = loaded.feature_cfg.sample_rate_hz
    preds = [predict_audio(loaded, a, fs, source="target recording") for a in recordings]
    return [p.azimuth_deg[p.activity > ACTIVITY_MIN] for p in preds]


def direction_weights(
    azimuth_deg: np.ndarray,
    grid: AzimuthGrid,
    *,
    smoothing_deg: float = SMOOTHING_DEG,
    uniform_share: float = UNIFORM_SHARE,
    floor: float = FLOOR,
) -> np.ndarray:
    """Per-bin weights (K,) in [floor, 1] from talker azimuths (see the module docstring).

    Args:
        azimuth_deg: (n,) azimuths of talker frames, degrees (array frame); n > 0.
        grid: the model's azimuth grid.
    """
    centers = grid.bin_centers_deg()
    az = grid.fold(np.asarray(azimuth_deg, dtype=np.float64))
    hist = np.bincount(np.argmin(_distance(centers[None, :], az[:, None], grid), axis=1), minlength=grid.n_bins)
    d = _distance(centers[:, None], centers[None, :], grid)
    density = np.exp(-0.5 * (d / smoothing_deg) ** 2) @ hist.astype(np.float64)
    density /= density.sum()
    return np.clip(density * grid.n_bins / uniform_share, floor, 1.0)


def _distance(a: np.ndarray, b: np.ndarray, grid: AzimuthGrid) -> np.ndarray:
    """|a - b| in degrees, wrapped on a circular grid (a linear grid's folded angles do not wrap)."""
    return np.asarray(angular_distance_deg(a, b)) if grid.circular else np.abs(a - b)


def learn_direction_prior(loaded: TrackerModel, recordings: Sequence[np.ndarray]) -> PriorDecision:
    """:func:`decide_direction_prior` on :func:`target_directions` of ``loaded`` (a model without
    a prior) over ``recordings`` (float32 (frames, M) at the model's rate): what ``sst adapt`` does."""
    return decide_direction_prior(target_directions(loaded, recordings), loaded.model_cfg.grid, loaded.frame_s)


def _halves(all_az: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The talker frames in recording order, cut in two equal halves (earlier and later audio)."""
    return all_az[: len(all_az) // 2], all_az[len(all_az) // 2 :]


def _sectors(weights: np.ndarray, grid: AzimuthGrid) -> list[list[float]]:
    """Runs of full-weight bins as [first, last] bin centres, degrees (for people reading the provenance)."""
    centers = grid.bin_centers_deg()
    full = weights >= 1.0
    runs: list[list[float]] = []
    for k in range(grid.n_bins):
        if full[k] and (k == 0 or not full[k - 1]):
            runs.append([float(centers[k]), float(centers[k])])
        elif full[k]:
            runs[-1][1] = float(centers[k])
    if grid.circular and len(runs) > 1 and full[0] and full[-1]:  # a run across -180/180
        runs[0][0] = runs.pop()[0]
    return runs


def decide_direction_prior(directions: Sequence[np.ndarray], grid: AzimuthGrid, frame_s: float) -> PriorDecision:
    """Estimate the prior from per-recording talker azimuths and decide whether to ship it.

    Args:
        directions: :func:`target_directions`' output.
        grid: the model's azimuth grid.
        frame_s: output frame length, seconds.
    """
    settings = {
        "smoothing_deg": SMOOTHING_DEG,
        "uniform_share": UNIFORM_SHARE,
        "floor": FLOOR,
        "min_active_s": MIN_ACTIVE_S,
        "max_half_difference": MAX_HALF_DIFFERENCE,
        "min_suppressed_share": MIN_SUPPRESSED_SHARE,
    }
    all_az = np.concatenate(list(directions)) if directions else np.zeros(0)
    active_s = round(len(all_az) * frame_s, 1)
    stats: dict[str, Any] = {"active_s": active_s, "settings": settings}
    if active_s < MIN_ACTIVE_S:
        return PriorDecision(
            None,
            f"not applied: {active_s:g} s of talker frames in the target recordings, {MIN_ACTIVE_S:g} s needed "
            "(record more speech)",
            stats,
        )
    weights = direction_weights(all_az, grid)
    suppressed = float(np.mean(weights < 1.0))
    stats["suppressed_bin_share"] = round(suppressed, 3)
    if suppressed == 0.0:
        return PriorDecision(None, "not applied: talkers are heard from every direction (no sector to learn)", stats)
    if suppressed < MIN_SUPPRESSED_SHARE:
        return PriorDecision(
            None,
            f"not applied: talkers are heard across {1 - suppressed:.0%} of the directions; a sector must leave out "
            f"at least {MIN_SUPPRESSED_SHARE:.0%} (a narrower gap may be the model's own bias, not the room)",
            stats,
        )
    a, b = _halves(all_az)  # both hold >= MIN_ACTIVE_S / 2 of talker frames
    diff = float(np.mean(np.abs(direction_weights(a, grid) - direction_weights(b, grid))))
    stats["half_difference"] = round(diff, 3)
    if diff > MAX_HALF_DIFFERENCE:
        return PriorDecision(
            None,
            f"not applied: the two halves of the recordings disagree on the talkers' directions (mean weight "
            f"difference {diff:.2f} > {MAX_HALF_DIFFERENCE}); record more, or the talkers move around the robot",
            stats,
        )
    sectors = _sectors(weights, grid)
    stats["sectors_deg"] = sectors
    where = ", ".join(f"{lo:+.0f}..{hi:+.0f}" for lo, hi in sectors)
    prior = DirectionPrior(weights, {"active_s": active_s, "sectors_deg": sectors, **settings})
    return PriorDecision(
        prior,
        f"applied: talkers heard within {where} deg (array frame); {suppressed:.0%} of the directions weighted "
        f"down to {FLOOR:g}",
        stats,
    )

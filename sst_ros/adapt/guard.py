"""The do-no-harm guard: ship an adapted model only when the label-free criteria show a clear gain.

Adaptation can make a model worse (an adversary that collapses the predictions, a shift that
aligning features cannot undo). Without target labels nobody can measure that directly, so
the guard compares the selected snapshot with the *unadapted* model on criteria measured on
the robot's own unlabelled audio (:mod:`sst_ros.adapt.target_criteria`) and on held-out
synthetic crops, and ships the adapted snapshot only when

1. no collapse check fails (:func:`collapse_reasons`), and
2. on the guard's half of the target crops (not the half the selection used), its
   equivariance error is at least ``min_gain`` (relative) below the unadapted model's, and the
   paired bootstrap 95 % interval of the per-crop difference lies below 0 (a gain larger than
   the crops' noise).

Otherwise the unadapted model is written, and the decision with every criterion goes into
the checkpoint's provenance and the closing summary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["GuardDecision", "collapse_reasons", "guard_decision"]

# Collapse bounds relative to the unadapted model (wide: they catch failures, not fine changes).
ACTIVITY_RATIO_MAX = 2.0  # activity rate may change by at most this factor either way
ACTIVITY_FLOOR = 0.02  # below this unadapted activity rate the ratio test is skipped
AZIMUTH_ENTROPY_MIN_RATIO = 0.8  # predicted-direction histogram may lose at most 20 % of its entropy
SOURCE_LOSS_MAX_RATIO = 1.5  # the synthetic validation loss may grow by at most 50 %
N_BOOTSTRAP = 2000  # resamples of the guard's crops


def collapse_reasons(rec: dict[str, Any], unadapted: dict[str, Any]) -> list[str]:
    """Reasons (plain sentences) why the snapshot ``rec`` looks collapsed against ``unadapted``;
    empty when it passes. Both records carry ``activity_rate``, ``azimuth_entropy`` and
    ``source_val_loss`` (the trainer passes step 0's loss as the reference, see
    :meth:`~sst_ros.adapt.trainer.IwanTrainer.reference`)."""
    out = []
    a, a0 = float(rec["activity_rate"]), float(unadapted["activity_rate"])
    if a0 >= ACTIVITY_FLOOR and not a0 / ACTIVITY_RATIO_MAX <= a <= a0 * ACTIVITY_RATIO_MAX:
        out.append(f"target activity rate {a:.2f} against {a0:.2f} unadapted (more than {ACTIVITY_RATIO_MAX:g}x apart)")
    e, e0 = float(rec["azimuth_entropy"]), float(unadapted["azimuth_entropy"])
    if e < AZIMUTH_ENTROPY_MIN_RATIO * e0:
        out.append(f"predicted directions collapsed: histogram entropy {e:.2f} against {e0:.2f} unadapted")
    s, s0 = float(rec["source_val_loss"]), float(unadapted["source_val_loss"])
    if s > SOURCE_LOSS_MAX_RATIO * s0:
        out.append(f"synthetic validation loss {s:.4f} against {s0:.4f} at step 0 (task forgotten)")
    return out


@dataclass
class GuardDecision:
    """What the guard decided.

    Attributes:
        ship_adapted: True when the selected snapshot is written, False for the unadapted model.
        selected_step: the snapshot the selection chose.
        reasons: why (plain sentences).
        gain: relative reduction of the target equivariance error (positive = better).
        criteria_unadapted, criteria_selected: the criteria of both models.
    """

    ship_adapted: bool
    selected_step: int
    reasons: list[str] = field(default_factory=list)
    gain: float = float("nan")
    criteria_unadapted: dict[str, Any] = field(default_factory=dict)
    criteria_selected: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (provenance)."""
        return asdict(self)


_CRITERIA = ("equivariance_deg", "equivariance_check_deg", "equivariance_per_crop", "activity_rate",
             "azimuth_entropy", "target_entropy", "source_val_loss", "iwcv")  # fmt: skip


def _criteria(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: rec[k] for k in _CRITERIA if k in rec}


def _crop_interval(selected: dict[str, Any], unadapted: dict[str, Any], seed: int = 0) -> tuple[float, float]:
    """Paired bootstrap 95 % interval (degrees) of the mean per-crop equivariance difference
    (selected - unadapted) over the guard's half of the crops (odd indices); NaNs when unknown."""
    a = np.asarray(selected.get("equivariance_per_crop", []), dtype=float)[1::2]
    b = np.asarray(unadapted.get("equivariance_per_crop", []), dtype=float)[1::2]
    if a.shape != b.shape:
        return math.nan, math.nan
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    if d.size < 2:
        return math.nan, math.nan
    means = d[np.random.default_rng(seed).integers(0, d.size, size=(N_BOOTSTRAP, d.size))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def guard_decision(selected: dict[str, Any], unadapted: dict[str, Any], min_gain: float) -> GuardDecision:
    """The guard's decision for the ``selected`` snapshot's record against the ``unadapted`` model's."""
    key = "equivariance_check_deg"
    e, e0 = float(selected.get(key, math.nan)), float(unadapted.get(key, math.nan))
    gain = (e0 - e) / e0 if math.isfinite(e) and math.isfinite(e0) and e0 > 0 else math.nan
    lo, hi = _crop_interval(selected, unadapted)
    reasons = collapse_reasons(selected, unadapted)
    measured = f"target equivariance error {e:.2f} deg against {e0:.2f} deg unadapted on the guard's crops"
    if not math.isfinite(gain) or not math.isfinite(hi):
        reasons.append("too few active target frames to measure the equivariance error; record more speech")
    elif gain < min_gain:
        reasons.append(f"{measured}: a gain of {gain:.1%}, below the required {min_gain:.0%}")
    elif hi >= 0:
        reasons.append(
            f"{measured} ({gain:.1%} lower), but within the crops' noise "
            f"(per-crop difference 95 % interval [{lo:+.2f}, {hi:+.2f}] deg includes 0)"
        )
    ship = not reasons
    if ship:
        reasons.append(f"{measured}: {gain:.1%} lower, per-crop difference 95 % interval [{lo:+.2f}, {hi:+.2f}] deg")
    return GuardDecision(ship, int(selected["step"]), reasons, gain, _criteria(unadapted), _criteria(selected))

"""Label-free criteria measured on unlabelled target crops, for choosing and guarding snapshots.

IWCV and the source validation loss are measured on synthetic crops only, so they barely see
what adaptation changes. These criteria look at the model's predictions on the robot's own
audio:

- ``equivariance_deg``: the array's exact symmetries (:mod:`sst_ros.train.augment`) say
  that a talker heard on channel-permuted audio is at the rotated or mirrored direction. On
  target crops, the mean wrapped difference (degrees) between the prediction on permuted audio
  and the mapped prediction on the original audio, over the probe's fixed frames (those the
  unadapted model calls active, the same for every snapshot); per crop and pooled over two
  disjoint halves of the crops (selection and guard). A
  model that localises the robot's audio well is consistent under these maps; one that has
  learnt shortcuts (or collapsed) is not. Lower is better.
- ``activity_rate``: share of target frames with activity above 0.5 (collapse detector: an
  adversary can silence or saturate the activity output).
- ``azimuth_entropy``: normalised entropy (0..1) of the histogram of predicted azimuths over
  the grid's bins, on the model's active target frames (collapse detector: every prediction
  pulled to one direction gives 0).
- ``target_entropy``: mean normalised entropy of the spatial spectrum on target frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sst_ros.adapt.batches import PaddedBatch, make_batch
from sst_ros.adapt.evaluation import masked_entropy
from sst_ros.geometry import wrap_deg
from sst_ros.model.azimuth import AzimuthGrid
from sst_ros.model.crnn import CRNN
from sst_ros.model.features import FeatureConfig
from sst_ros.train.augment import Symmetry, apply_symmetry

__all__ = [
    "TargetProbe",
    "active_frames",
    "make_probe",
    "moving_symmetries",
    "srp_azimuth_map",
    "symmetric_batch",
    "target_criteria",
]

_ACTIVE = 0.5  # activity threshold, as the tracker's default


@dataclass
class TargetProbe:
    """Fixed target crops and their channel-permuted copies.

    Attributes:
        batches: one padded batch per symmetry, identity first (same crops, permuted channels).
        symmetries: the symmetries, identity first.
        mask: (B, T) bool frames on which the equivariance error is measured for every model
            (the unadapted model's active frames, :func:`active_frames`), or None (each model's
            own active frames). One mask for all: a model must not look more consistent by
            falling silent on hard frames.
    """

    batches: list[PaddedBatch]
    symmetries: list[Symmetry]
    mask: np.ndarray | None = None


def srp_azimuth_map(feature_cfg: FeatureConfig, sym: Symmetry) -> np.ndarray | None:
    """Row permutation that turns ``srp`` features of audio into those of the symmetric audio.

    A symmetry ``R`` maps each microphone pair onto another with the same geometry relative to
    ``R u``, so the steered response of the permuted audio at azimuth ``R u`` equals the
    original one at ``u``, and the frame magnitude (mean over microphones) is unchanged. When
    ``R`` maps the srp azimuth grid onto itself, the maps' rows are simply permuted. Returns
    ``src`` (A,) with ``new[:, k] = old[:, src[k]]``, or None (not srp, or the grid not mapped).
    """
    if feature_cfg.kind != "srp":
        return None
    n = feature_cfg.srp_azimuths
    step = 360.0 / n
    return sym.grid_permutation(-180.0 + np.arange(n) * step, 1e-6 * step)  # within 1e-6 of a grid step


def _symmetric_features(x: torch.Tensor, feature_cfg: FeatureConfig, src: np.ndarray) -> torch.Tensor:
    """srp features (B, P, A, T) of the symmetric audio: the band maps' rows permuted by ``src``;
    the magnitude and coordinate planes are unchanged."""
    out = x.clone()
    nb = feature_cfg.srp_bands
    out[:, :nb] = x[:, :nb][:, :, torch.from_numpy(src).to(x.device)]
    return out


def make_probe(
    crops: Sequence[np.ndarray], symmetries: Sequence[Symmetry], feature_cfg: FeatureConfig, frames_per_output: int
) -> TargetProbe:
    """The probe of ``crops`` (float32 (n_i, M) microphone audio) under ``symmetries`` (identity
    first; with the identity alone only the collapse detectors are measured).

    Features of permuted audio are computed from the audio, except for ``srp`` features on a
    grid the symmetry maps onto itself (:func:`srp_azimuth_map`: a row permutation, the same
    up to float rounding and about 100x cheaper).
    """
    base = make_batch(list(crops), feature_cfg, frames_per_output)
    batches = [base]
    symmetries = [symmetries[0], *moving_symmetries(symmetries[1:])]
    for sym in symmetries[1:]:
        batches.append(symmetric_batch(base, crops, sym, feature_cfg, frames_per_output))
    return TargetProbe(batches, list(symmetries))


def moving_symmetries(symmetries: Sequence[Symmetry]) -> list[Symmetry]:
    """The symmetries that move a channel (a linear array's mirror across its axis moves none
    and so measures nothing)."""
    return [s for s in symmetries if list(s.perm) != sorted(s.perm)]


def symmetric_batch(
    base: PaddedBatch, crops: Sequence[np.ndarray], sym: Symmetry, feature_cfg: FeatureConfig, frames_per_output: int
) -> PaddedBatch:
    """The batch of ``crops`` (whose batch is ``base``) with their channels permuted by ``sym``:
    a row permutation of ``base``'s features where :func:`srp_azimuth_map` allows, otherwise
    features of the permuted audio."""
    src = srp_azimuth_map(feature_cfg, sym)
    if src is not None:
        return PaddedBatch(_symmetric_features(base.x, feature_cfg, src), base.lengths)
    permuted = [apply_symmetry(c, np.zeros(0), sym)[0] for c in crops]
    return make_batch(permuted, feature_cfg, frames_per_output)


def _valid(batch: PaddedBatch, t: int) -> np.ndarray:
    return np.arange(t)[None, :] < batch.lengths.numpy()[:, None]


@torch.no_grad()
def active_frames(model: CRNN, probe: TargetProbe) -> np.ndarray:
    """(B, T) bool: unpadded probe frames (identity batch) where ``model``'s activity exceeds 0.5."""
    model.eval()
    b0 = probe.batches[0]
    _, act = model.head(model.extract(b0.x))
    return (act.cpu().numpy() > _ACTIVE) & _valid(b0, act.shape[1])


def _direction_entropy(grid: AzimuthGrid, azimuth_deg: np.ndarray) -> float:
    """Normalised entropy (0..1) of the histogram of azimuths over the grid's bins (nearest bin)."""
    if azimuth_deg.size == 0:
        return 0.0
    centers = grid.bin_centers_deg()
    rel = grid.fold(azimuth_deg) - centers[0]
    idx = np.round(rel / grid.step_deg).astype(int)
    idx = idx % grid.n_bins if grid.circular else np.clip(idx, 0, grid.n_bins - 1)
    p = np.bincount(idx, minlength=grid.n_bins) / idx.size
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / math.log(grid.n_bins))


@torch.no_grad()
def target_criteria(model: CRNN, probe: TargetProbe) -> dict[str, Any]:
    """The criteria of the module docstring for ``model`` (put in eval mode) on ``probe``.

    The equivariance error is reported per crop (``equivariance_per_crop``) and pooled over two
    disjoint halves of the crops: ``equivariance_deg`` (even crops) chooses the snapshot,
    ``equivariance_check_deg`` (odd crops) is what the guard tests, so the guard does not test
    on the very crops whose noise made a snapshot look best (the winner's curse).
    """
    model.eval()
    grid = model.cfg.grid
    outputs = [model.head(model.extract(b.x)) for b in probe.batches]
    spec0, act0 = outputs[0]
    b0 = probe.batches[0]
    valid = _valid(b0, spec0.shape[1])
    active = (act0.cpu().numpy() > _ACTIVE) & valid
    az0 = model.decode(spec0)  # (B, T) degrees
    crit: dict[str, Any] = {
        "target_entropy": masked_entropy(spec0, b0.lengths),
        "activity_rate": float(active.sum() / max(valid.sum(), 1)),
        "azimuth_entropy": _direction_entropy(grid, az0[active]),
    }
    if probe.mask is not None:
        active = probe.mask
    # (B, T) summed error over the symmetries on the measured frames, and how many terms
    err_sum, err_n = np.zeros(active.shape), np.zeros(active.shape)
    for sym, (spec_g, _) in zip(probe.symmetries[1:], outputs[1:], strict=True):
        diff = np.abs(wrap_deg(grid.fold(model.decode(spec_g)) - grid.fold(sym.map_azimuth(az0))))
        err_sum += np.where(active, diff, 0.0)
        err_n += active
    per_sum, per_n = err_sum.sum(1), err_n.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        crit["equivariance_per_crop"] = [float(v) for v in per_sum / per_n]  # NaN: no measured frame
    for key, half in (("equivariance_deg", slice(0, None, 2)), ("equivariance_check_deg", slice(1, None, 2))):
        n = per_n[half].sum()
        crit[key] = float(per_sum[half].sum() / n) if n > 0 else float("nan")
    return crit

"""Label-free consistency terms on target clips (off by default; ``AdaptConfig.entropy_weight``,
``AdaptConfig.equivariance_weight``).

- **Entropy** (IWAN's entropy term): the mean normalised entropy of the spatial spectrum, as a
  distribution over the azimuth bins, on the target frames the model calls active. Lower means
  sharper peaks on the robot's audio.
- **Symmetry equivariance**: the square and circular arrays have exact symmetries
  (:mod:`sst_ros.train.augment`): the spectrum of channel-permuted target audio must equal the
  original spectrum with its bins rotated or mirrored. The squared difference on active frames
  is a free training signal from unlabelled audio.

The equivariance error on target crops is also what the label-free selection and the guard
measure (:mod:`sst_ros.adapt.target_criteria`); training on it makes that criterion partly a
training loss, so with ``equivariance_weight > 0`` it is no longer an independent check (the
run's summary says so).
"""

from __future__ import annotations

import numpy as np
import torch

from sst_ros.adapt.evaluation import spectrum_entropy
from sst_ros.model.azimuth import AzimuthGrid
from sst_ros.train.augment import Symmetry

__all__ = ["active_entropy", "equivariance_loss", "spectrum_bin_map"]


def spectrum_bin_map(grid: AzimuthGrid, sym: Symmetry) -> np.ndarray | None:
    """Bin permutation that turns the spectrum of audio into that of the symmetric audio.

    Returns ``src`` (K,) with ``new[..., k] = old[..., src[k]]`` (bin ``k`` of the symmetric
    audio's spectrum looks at the direction that ``sym`` maps onto bin ``k``'s centre), or None
    when ``sym`` does not map the grid's bin centres onto bin centres (within 1e-6 degrees).
    """
    return sym.grid_permutation(grid.bin_centers_deg(), 1e-6)


def active_entropy(spectrum: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """Mean normalised entropy (0..1) of ``spectrum`` (B, T, K) as a distribution over bins, on
    the ``active`` (B, T) bool frames; 0 (with a gradient path) when no frame is active."""
    ent = spectrum_entropy(spectrum)
    return ent[active].mean() if bool(active.any()) else spectrum.sum() * 0.0


def equivariance_loss(
    spectrum: torch.Tensor, spectrum_sym: torch.Tensor, src: np.ndarray, active: torch.Tensor
) -> torch.Tensor:
    """Mean squared difference (per bin) between the spectrum of symmetric audio and the
    bin-mapped spectrum of the original, on the ``active`` (B, T) frames.

    Args:
        spectrum: (B, T, K) spectrum of the original audio.
        spectrum_sym: (B, T, K) spectrum of the channel-permuted audio.
        src: (K,) bin map of the symmetry (:func:`spectrum_bin_map`).
        active: (B, T) bool frames to compare.
    """
    mapped = spectrum[..., torch.from_numpy(src).to(spectrum.device)]
    sq = (spectrum_sym - mapped).pow(2).mean(-1)  # (B, T)
    return sq[active].mean() if bool(active.any()) else sq.sum() * 0.0

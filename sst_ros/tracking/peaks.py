"""Multi-source peak extraction from a spatial spectrum over azimuth (the package's one multi-peak finder)."""

from __future__ import annotations

import functools

import numpy as np

from sst_ros.geometry import angular_distance_deg
from sst_ros.model.azimuth import AzimuthGrid
from sst_ros.tracking.types import Peak, PeakConfig

__all__ = ["extract_peaks"]


@functools.lru_cache(maxsize=8)
def _circular_neighbours(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n,) indices of each bin's left and right neighbours on a circular grid (``np.roll`` as an index)."""
    return np.roll(np.arange(n), 1), np.roll(np.arange(n), -1)


def extract_peaks(spectrum: np.ndarray, grid: AzimuthGrid, config: PeakConfig) -> list[Peak]:
    """Up to ``config.max_peaks`` local maxima of a spatial spectrum, highest first.

    A bin is a peak when it is at least as high as its left neighbour, higher than its right
    one (neighbours wrap around on a circular grid; a flat top yields its first bin) and at
    least ``config.threshold``. The direction is refined by the grid's sub-bin refiner
    (:meth:`AzimuthGrid.refine`, log-parabolic, as the model's decoding). Peaks closer than
    ``config.min_separation_deg`` (wrap-aware) to a higher kept peak are dropped. Non-finite
    spectrum values are treated as 0.

    Args:
        spectrum: (K,) spectrum values (the CRNN's are in [0, 1]).
        grid: the azimuth grid of the spectrum (the model's ``model_cfg.grid``).
        config: peak-picking parameters.
    Returns:
        list of :class:`Peak`, highest first, azimuths wrapped into (-180, 180].
    Raises:
        ConfigError: the spectrum does not have the grid's K bins.
    """
    s = np.asarray(spectrum, dtype=np.float64).ravel()
    s = np.where(np.isfinite(s), s, 0.0)
    if grid.circular and s.size == grid.n_bins:
        left_idx, right_idx = _circular_neighbours(s.size)
        left, right = s[left_idx], s[right_idx]
    else:
        left = np.concatenate(([-np.inf], s[:-1]))
        right = np.concatenate((s[1:], [-np.inf]))
    # >= on the left, > on the right: a flat top yields one peak (its first bin).
    idx = np.flatnonzero((s >= left) & (s > right) & (s >= config.threshold))
    idx = idx[np.argsort(-s[idx], kind="stable")]
    azimuths = grid.refine(s, idx)  # ConfigError when s does not have K bins
    peaks: list[Peak] = []
    for i, az in zip(idx, azimuths, strict=True):
        if any(angular_distance_deg(float(az), p.azimuth_deg) < config.min_separation_deg for p in peaks):
            continue
        peaks.append(Peak(azimuth_deg=float(az), height=float(s[i])))
        if len(peaks) >= config.max_peaks:
            break
    return peaks

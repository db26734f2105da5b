"""Multi-source peak extraction from a spatial spectrum over azimuth (the package's one multi-peak finder)."""

from __future__ import annotations

import math

import numpy as np

from sst_ros.geometry import angular_distance_deg
from sst_ros.model.azimuth import AzimuthGrid
from sst_ros.tracking.types import Peak, PeakConfig

__all__ = ["extract_peaks"]


def extract_peaks(spectrum: np.ndarray, grid: AzimuthGrid, config: PeakConfig) -> list[Peak]:
    """Up to ``config.max_peaks`` local maxima of a spatial spectrum, highest first.

    A bin is a peak when it is at least as high as its left neighbour, higher than its right
    one (neighbours wrap around on a circular grid; a flat top yields its first bin) and at
    least ``config.threshold``. The direction is refined by the grid's sub-bin refiner
    (:meth:`AzimuthGrid.refine_one`, log-parabolic, the model's decoding for one bin). Peaks closer than
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
    s = grid.checked(np.asarray(spectrum, dtype=np.float64).ravel())  # ConfigError when not K bins
    # plain Python over the K values: numpy's per-call overhead on 72 values was most of the cost
    v = s.tolist()
    if not all(map(math.isfinite, v)):
        v = [x if math.isfinite(x) else 0.0 for x in v]
    n, thr = len(v), config.threshold
    # >= on the left, > on the right: a flat top yields one peak (its first bin); a linear grid's
    # ends compare with -inf outside it
    if grid.circular:
        idx = [i for i in range(n) if v[i] >= thr and v[i] >= v[i - 1] and v[i] > v[(i + 1) % n]]
    else:
        idx = [i for i in range(n) if v[i] >= thr and (i == 0 or v[i] >= v[i - 1]) and (i == n - 1 or v[i] > v[i + 1])]
    idx.sort(key=lambda i: -v[i])  # stable: equal heights keep bin order
    peaks: list[Peak] = []
    for i in idx:
        az = grid.refine_one(v, i)
        if any(angular_distance_deg(az, p.azimuth_deg) < config.min_separation_deg for p in peaks):
            continue
        peaks.append(Peak(azimuth_deg=az, height=v[i]))
        if len(peaks) >= config.max_peaks:
            break
    return peaks

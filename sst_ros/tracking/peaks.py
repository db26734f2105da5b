"""Multi-source peak extraction from a spatial spectrum over azimuth."""

from __future__ import annotations

import numpy as np

from sst_ros.errors import ConfigError
from sst_ros.geometry import angular_distance_deg, wrap_deg
from sst_ros.tracking.types import Peak, PeakConfig

__all__ = ["extract_peaks", "is_circular_grid"]

_LOG_FLOOR = 1e-6


def is_circular_grid(bin_centers_deg: np.ndarray) -> bool:
    """True when an azimuth grid covers the whole circle (its last and first bins are neighbours).

    Args:
        bin_centers_deg: (K,) increasing bin centres in degrees.
    """
    b = np.asarray(bin_centers_deg, dtype=np.float64)
    if b.size < 3:
        return False
    step = float(np.median(np.diff(b)))
    return abs((b[0] + 360.0 - b[-1]) - step) < 0.5 * step


def extract_peaks(spectrum: np.ndarray, bin_centers_deg: np.ndarray, config: PeakConfig) -> list[Peak]:
    """Up to ``config.max_peaks`` local maxima of a spatial spectrum, highest first.

    A bin is a peak when it is at least as high as both neighbours (neighbours wrap around on
    a full-circle grid) and at least ``config.threshold``. The direction is refined by a
    parabola through the peak and its two neighbours (sub-bin interpolation). Peaks closer
    than ``config.min_separation_deg`` (wrap-aware) to a higher kept peak are dropped.
    Non-finite spectrum values are treated as 0.

    Args:
        spectrum: (K,) spectrum values (the CRNN's are in [0, 1]).
        bin_centers_deg: (K,) increasing azimuth of each bin, degrees.
        config: peak-picking parameters.
    Returns:
        list of :class:`Peak`, highest first, azimuths wrapped into (-180, 180].
    """
    s = np.asarray(spectrum, dtype=np.float64).ravel()
    b = np.asarray(bin_centers_deg, dtype=np.float64).ravel()
    if s.shape != b.shape:
        raise ConfigError(
            f"spectrum has {s.size} bins but the azimuth grid has {b.size}; pass the model's bin_centers_deg()"
        )
    if s.size == 0:
        return []
    s = np.where(np.isfinite(s), s, 0.0)
    circular = is_circular_grid(b)
    step = float(np.median(np.diff(b))) if b.size > 1 else 1.0
    if circular:
        left, right = np.roll(s, 1), np.roll(s, -1)
    else:
        left = np.concatenate(([-np.inf], s[:-1]))
        right = np.concatenate((s[1:], [-np.inf]))
    # >= on the left, > on the right: a flat top yields one peak (its first bin).
    is_peak = (s >= left) & (s > right) & (s >= config.threshold)
    idx = np.flatnonzero(is_peak)
    idx = idx[np.argsort(-s[idx], kind="stable")]
    peaks: list[Peak] = []
    for i in idx:
        az = float(b[i]) + _log_parabolic_offset(left[i], s[i], right[i]) * step
        az = float(wrap_deg(az))
        if any(angular_distance_deg(az, p.azimuth_deg) < config.min_separation_deg for p in peaks):
            continue
        peaks.append(Peak(azimuth_deg=az, height=float(s[i])))
        if len(peaks) >= config.max_peaks:
            break
    return peaks


def _log_parabolic_offset(y_left: float, y_mid: float, y_right: float) -> float:
    """Vertex offset in bins, in [-0.5, 0.5], of the parabola through the logs of three samples."""
    if not (np.isfinite(y_left) and np.isfinite(y_right)):
        return 0.0
    y_left, y_mid, y_right = (float(np.log(max(v, _LOG_FLOOR))) for v in (y_left, y_mid, y_right))
    denom = y_left - 2.0 * y_mid + y_right
    if denom >= -1e-12:  # not a strict maximum (flat or convex): no refinement
        return 0.0
    return float(np.clip(0.5 * (y_left - y_right) / denom, -0.5, 0.5))

"""The azimuth grid of spatial spectra: bins, training targets, sub-bin decoding.

The one azimuth-bin convention and the one sub-bin refiner of the package: the model's
decoding, the tracker's peak picking (:func:`sst_ros.tracking.peaks.extract_peaks`) and the
classical baselines (:mod:`sst_ros.train.baselines`) all use :class:`AzimuthGrid`. This module
does not import torch.

Planar (and 3-D) arrays get a **circular grid** over the full circle: ``K`` bins centred at
``-180 + k * 360 / K`` degrees, the last bin a neighbour of the first. Targets are Gaussian
bumps over the *wrapped* angular distance, so a source at 179 degrees lights up bins on
both sides of +-180 (the reference code's half-plane grid made 0 and 179 neighbours: not
copied here).

Linear arrays (two microphones included) cannot tell a direction from its mirror image
across the array axis (front-back ambiguity). Their grid is the **identifiable range**: the
half plane on the side of the *broadside* direction ``center_deg`` (perpendicular to the axis,
chosen in the robot's front half, ``(-90, 90]``), i.e. ``center_deg - 90 .. center_deg + 90``
degrees, with ``K`` bins including both endfire directions. Labels and estimates are
*folded* into that range (mirrored across the axis) before targets and metrics are computed
(:meth:`AzimuthGrid.fold`).

Resolution: 5-degree bins (72 around the circle) with Gaussian targets of sigma 10 degrees
(two bins per sigma). The estimate is refined by a parabola through the logarithm of the
peak bin and its two neighbours (:meth:`AzimuthGrid.refine`), which recovers the exact centre
of a sampled Gaussian, so accuracy is not limited by the bin width while the head stays small
(72 outputs, not 360).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sst_ros.errors import ConfigError
from sst_ros.geometry import MicArray, angular_distance_deg, wrap_deg

__all__ = ["AzimuthGrid", "broadside_deg", "grid_for_array"]

_LOG_FLOOR = 1e-6
_LOG_CURVATURE_TOL = 1e-12


@dataclass(frozen=True)
class AzimuthGrid:
    """Azimuth bins of the model's spatial spectrum (degrees, REP-103 azimuth).

    Attributes:
        n_bins: number of bins K.
        circular: True for the full circle (planar arrays), False for a linear array's half plane.
        center_deg: broadside azimuth of a linear array (centre of the half plane); 0 when circular.
        sigma_deg: standard deviation of the Gaussian training target, degrees.
    """

    n_bins: int = 72
    circular: bool = True
    center_deg: float = 0.0
    sigma_deg: float = 10.0

    def __post_init__(self) -> None:
        if self.n_bins < 3:
            raise ConfigError(f"azimuth grid: n_bins must be >= 3, got {self.n_bins}")
        if self.sigma_deg <= 0:
            raise ConfigError(f"azimuth grid: sigma_deg must be > 0, got {self.sigma_deg}")

    @property
    def step_deg(self) -> float:
        """Bin spacing, degrees."""
        return 360.0 / self.n_bins if self.circular else 180.0 / (self.n_bins - 1)

    def relative_centers_deg(self) -> np.ndarray:
        """(K,) bin centres relative to ``center_deg`` (linear: -90..90; circular: absolute)."""
        if self.circular:
            return -180.0 + np.arange(self.n_bins) * self.step_deg
        return np.linspace(-90.0, 90.0, self.n_bins)

    def bin_centers_deg(self) -> np.ndarray:
        """(K,) increasing bin centres, degrees (circular: -180 .. 180 - step)."""
        if self.circular:
            return self.relative_centers_deg()
        return self.center_deg + self.relative_centers_deg()

    def fold(self, azimuth_deg: np.ndarray | float) -> np.ndarray:
        """Map azimuths into the identifiable range (identity up to wrapping when circular).

        Linear grids mirror a direction across the array axis when it lies behind the
        broadside half plane. Result in degrees, wrapped to (-180, 180]; NaN stays NaN.
        """
        az = np.asarray(azimuth_deg, dtype=np.float64)
        if self.circular:
            return np.asarray(wrap_deg(az))
        return np.asarray(wrap_deg(self.center_deg + self._relative(az)))

    def _relative(self, azimuth_deg: np.ndarray) -> np.ndarray:
        """Folded angle relative to the broadside, in [-90, 90] (linear grids)."""
        r = np.asarray(wrap_deg(np.asarray(azimuth_deg, dtype=np.float64) - self.center_deg))
        return np.where(np.abs(r) > 90.0, np.sign(r) * 180.0 - r, r)

    def targets(self, azimuth_deg: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Gaussian-bump training targets: one bump per active source, the highest where bumps meet.

        Args:
            azimuth_deg: (T,) true azimuth per output frame, or (T, S) one column per source, degrees.
            active: (T,) or (T, S) bool, source active in the frame (same shape as ``azimuth_deg``).
        Returns:
            (T, K) float32 in [0, 1]; rows of frames without an active source are 0.
        """
        az = np.asarray(azimuth_deg, dtype=np.float64)
        act = np.asarray(active, dtype=bool)
        if az.ndim == 1:
            az, act = az[:, None], act[:, None]
        act = act & np.isfinite(az)
        az = np.where(np.isfinite(az), az, 0.0)
        if self.circular:
            d = angular_distance_deg(az[..., None], self.relative_centers_deg())
        else:
            d = self._relative(az)[..., None] - self.relative_centers_deg()
        t = np.exp(-0.5 * (np.asarray(d) / self.sigma_deg) ** 2)  # (T, S, K)
        t[~act] = 0.0
        return t.max(axis=1).astype(np.float32)

    def decode(self, spectrum: np.ndarray, *, log_domain: bool = True) -> np.ndarray:
        """Azimuth of the highest bin of each spectrum row, refined by :meth:`refine`.

        Args:
            spectrum: (..., K) spectrum values (non-negative).
            log_domain: parabola through the logarithms (the model's Gaussian-shaped spectra)
                or through the values themselves (the classical baselines); see :meth:`refine`.
        Returns:
            (...) float64 azimuth in degrees, wrapped to (-180, 180].
        Raises:
            ConfigError: the spectrum does not have K bins.
        """
        s = self.checked(spectrum)
        if s.size == 0:
            return np.zeros(s.shape[:-1])
        k = np.argmax(s, axis=-1)[..., None]
        return self.refine(s, k, log_domain=log_domain)[..., 0]

    def refine(self, spectrum: np.ndarray, peak_bins: np.ndarray, *, log_domain: bool = True) -> np.ndarray:
        """Sub-bin azimuth of given (peak) bins: the vertex of a parabola through each bin and its neighbours.

        The parabola goes through the values at bins ``k - 1, k, k + 1`` (neighbours wrap on a
        circular grid). ``log_domain=True`` fits the logarithms (values floored at 1e-6), which
        recovers the exact centre of a sampled Gaussian (the model's targets);
        ``log_domain=False`` fits the values (the classical baselines' spectra). The offset is
        clipped to half a bin, and is 0 where the three values are not a strict maximum
        (curvature >= 0, or > -1e-12 in the log domain) and, on a linear grid, beyond the
        range ends.

        Args:
            spectrum: (..., K) spectrum values.
            peak_bins: (..., P) integer bin indices in [0, K) to refine (e.g. argmax or local maxima).
        Returns:
            (..., P) float64 azimuth in degrees, wrapped to (-180, 180] (linear grids: within
            the identifiable range).
        """
        s = self.checked(spectrum)
        k = np.asarray(peak_bins, dtype=np.intp)
        n = self.n_bins
        if self.circular:
            kl, kr = (k - 1) % n, (k + 1) % n
        else:
            kl, kr = np.clip(k - 1, 0, n - 1), np.clip(k + 1, 0, n - 1)
        y = np.log(np.maximum(s, _LOG_FLOOR)) if log_domain else s
        if y.ndim == 1:  # one spectrum (the tracker's per-frame call): plain indexing is the same, cheaper
            centre, left, right = y[k], y[kl], y[kr]
        else:
            centre = np.take_along_axis(y, k, -1)
            left = np.take_along_axis(y, kl, -1)
            right = np.take_along_axis(y, kr, -1)
        curvature = left - 2.0 * centre + right
        tol = _LOG_CURVATURE_TOL if log_domain else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = np.where(curvature < -tol, 0.5 * (left - right) / curvature, 0.0)
        np.clip(delta, -0.5, 0.5, out=delta)  # +-inf to +-0.5 (np.nan_to_num costs more than the whole fit)
        delta[np.isnan(delta)] = 0.0
        if not self.circular:  # no interpolation beyond the range ends
            delta = np.where((k == 0) & (delta < 0), 0.0, delta)
            delta = np.where((k == n - 1) & (delta > 0), 0.0, delta)
        rel = self.relative_centers_deg()[k] + delta * self.step_deg
        if self.circular:
            return np.asarray(wrap_deg(rel))
        return np.asarray(wrap_deg(self.center_deg + rel))

    def refine_one(self, values: list[float], k: int, *, log_domain: bool = True) -> float:
        """:meth:`refine` for one bin of one finite spectrum given as a Python list: the same
        parabola, in plain Python (the tracker's per-frame path, where numpy's per-call
        overhead on a few values cost more than the fit). Equal to :meth:`refine` up to the
        rounding of the logarithm (a few 1e-15 degrees).

        Args:
            values: the K finite spectrum values.
            k: bin index in [0, K).
        Returns:
            azimuth in degrees, wrapped to (-180, 180] (linear grids: within the identifiable range).
        """
        n = self.n_bins
        if self.circular:
            kl, kr = (k - 1) % n, (k + 1) % n
        else:
            kl, kr = max(k - 1, 0), min(k + 1, n - 1)
        left, centre, right = values[kl], values[k], values[kr]
        tol = 0.0
        if log_domain:
            left, centre, right = (math.log(max(v, _LOG_FLOOR)) for v in (left, centre, right))
            tol = _LOG_CURVATURE_TOL
        curvature = left - 2.0 * centre + right
        delta = min(max(0.5 * (left - right) / curvature, -0.5), 0.5) if curvature < -tol else 0.0
        if not self.circular and ((k == 0 and delta < 0) or (k == n - 1 and delta > 0)):
            delta = 0.0  # no interpolation beyond the range ends
        if self.circular:
            return float(wrap_deg(-180.0 + k * self.step_deg + delta * self.step_deg))
        return float(wrap_deg(self.center_deg + (float(self.relative_centers_deg()[k]) + delta * self.step_deg)))

    def checked(self, spectrum: np.ndarray) -> np.ndarray:
        """``spectrum`` as float64 (..., K); ConfigError when the last axis is not K bins."""
        s = np.asarray(spectrum, dtype=np.float64)
        if s.ndim == 0 or s.shape[-1] != self.n_bins:
            raise ConfigError(
                f"spectrum has {s.shape[-1] if s.ndim else 0} bins, the azimuth grid {self.n_bins}; "
                "pass the spectrum over this grid's bin_centers_deg()"
            )
        return s

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for checkpoints."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AzimuthGrid:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)

    @classmethod
    def circular_from_centers(cls, centers_deg: np.ndarray) -> AzimuthGrid:
        """The circular grid whose bin centres are ``centers_deg`` (K,) degrees.

        Raises:
            ConfigError: the centres are not ``-180 + k * 360 / K`` (within 1e-6 degrees), e.g. a
                linear array's half-plane grid or a rotated grid.
        """
        c = np.asarray(centers_deg, dtype=np.float64)
        if c.ndim != 1 or c.size < 3:
            raise ConfigError(
                f"a circular azimuth grid needs a 1-D array of at least 3 bin centres, got shape {c.shape}"
            )
        grid = cls(n_bins=int(c.size), circular=True)
        if not np.allclose(c, grid.bin_centers_deg(), rtol=0.0, atol=1e-6):
            raise ConfigError(
                "azimuth grid must be uniform over the full circle with bins centred at -180 + k * 360 / K "
                f"degrees (the model's convention), got {c.size} bins from {c[0]:.6g} to {c[-1]:.6g}"
            )
        return grid


def broadside_deg(array: MicArray) -> float | None:
    """Broadside azimuth (degrees, in (-90, 90]) of a linear array; None for other arrays.

    The broadside is the direction perpendicular to the array axis on the robot's front
    side (+x); for an array along x it is +90 degrees (left).
    """
    axis = array.axis_deg
    if axis is None:
        return None
    axis = float(wrap_deg(axis))
    if axis <= -90.0:
        axis += 180.0
    elif axis > 90.0:
        axis -= 180.0
    b = axis - 90.0 if axis > 0.0 else axis + 90.0
    return float(b)


def grid_for_array(array: MicArray, resolution_deg: float = 5.0, sigma_deg: float = 10.0) -> AzimuthGrid:
    """The azimuth grid a model for ``array`` uses: full circle, or a linear array's half plane.

    Args:
        array: microphone geometry.
        resolution_deg: bin spacing, degrees (360 must be a multiple for circular grids).
        sigma_deg: Gaussian target width, degrees.
    """
    if resolution_deg <= 0:
        raise ConfigError(f"resolution_deg must be > 0, got {resolution_deg}")
    b = broadside_deg(array)
    if b is None:
        n = int(round(360.0 / resolution_deg))
        if not math.isclose(n * resolution_deg, 360.0, rel_tol=1e-6):
            raise ConfigError(f"resolution_deg must divide 360, got {resolution_deg}")
        return AzimuthGrid(n_bins=n, circular=True, center_deg=0.0, sigma_deg=sigma_deg)
    n = int(round(180.0 / resolution_deg)) + 1
    return AzimuthGrid(n_bins=n, circular=False, center_deg=b, sigma_deg=sigma_deg)

"""The azimuth grid of the spatial spectrum: bins, training targets, decoding, peaks.

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
peak bin and its two neighbours, which recovers the exact centre of a sampled Gaussian, so
accuracy is not limited by the bin width while the head stays small (72 outputs, not 360).
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
        """Gaussian-bump training targets.

        Args:
            azimuth_deg: (T,) true azimuth per output frame, degrees.
            active: (T,) bool, source active in the frame.
        Returns:
            (T, K) float32 in [0, 1]; rows of inactive frames are 0.
        """
        az = np.asarray(azimuth_deg, dtype=np.float64)
        act = np.asarray(active, dtype=bool) & np.isfinite(az)
        az = np.where(np.isfinite(az), az, 0.0)
        if self.circular:
            d = angular_distance_deg(az[:, None], self.relative_centers_deg()[None, :])
        else:
            d = self._relative(az)[:, None] - self.relative_centers_deg()[None, :]
        t = np.exp(-0.5 * (np.asarray(d) / self.sigma_deg) ** 2)
        t[~act] = 0.0
        return t.astype(np.float32)

    def decode(self, spectrum: np.ndarray) -> np.ndarray:
        """Azimuth of the highest peak with sub-bin (log-parabolic) interpolation.

        Args:
            spectrum: (..., K) spectrum values (non-negative).
        Returns:
            (...) float64 azimuth in degrees, wrapped to (-180, 180].
        """
        s = np.asarray(spectrum, dtype=np.float64)
        if s.shape[-1] != self.n_bins:
            raise ConfigError(f"spectrum has {s.shape[-1]} bins, the azimuth grid {self.n_bins}")
        if s.shape[-1] == 0 or s.size == 0:
            return np.zeros(s.shape[:-1])
        k = np.argmax(s, axis=-1)
        return self._refine(s, k)

    def _refine(self, s: np.ndarray, k: np.ndarray) -> np.ndarray:
        K = self.n_bins
        if self.circular:
            kl, kr = (k - 1) % K, (k + 1) % K
        else:
            kl, kr = np.clip(k - 1, 0, K - 1), np.clip(k + 1, 0, K - 1)
        logs = np.log(np.maximum(s, _LOG_FLOOR))
        c = np.take_along_axis(logs, k[..., None], -1)[..., 0]
        left = np.take_along_axis(logs, kl[..., None], -1)[..., 0]
        right = np.take_along_axis(logs, kr[..., None], -1)[..., 0]
        denom = left - 2.0 * c + right
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = np.where(denom < -1e-12, 0.5 * (left - right) / denom, 0.0)
        delta = np.clip(delta, -0.5, 0.5)
        if not self.circular:  # no interpolation beyond the range ends
            delta = np.where((k == 0) & (delta < 0), 0.0, delta)
            delta = np.where((k == K - 1) & (delta > 0), 0.0, delta)
        centers = self.relative_centers_deg()
        rel = centers[k] + delta * self.step_deg
        if self.circular:
            return np.asarray(wrap_deg(rel))
        return np.asarray(wrap_deg(self.center_deg + rel))

    def find_peaks(
        self, spectrum_row: np.ndarray, max_peaks: int = 3, threshold: float = 0.3, min_separation_deg: float = 20.0
    ) -> list[tuple[float, float]]:
        """Local maxima of one spectrum row, highest first.

        Args:
            spectrum_row: (K,) spectrum values.
            max_peaks: most peaks returned.
            threshold: minimum peak height.
            min_separation_deg: peaks closer than this to a higher kept peak are dropped.
        Returns:
            list of ``(azimuth_deg, height)``, azimuth refined as in :meth:`decode`.
        """
        s = np.asarray(spectrum_row, dtype=np.float64).ravel()
        if s.size != self.n_bins:
            raise ConfigError(f"spectrum row has {s.size} bins, the azimuth grid {self.n_bins}")
        s = np.where(np.isfinite(s), s, 0.0)
        if self.circular:
            left, right = np.roll(s, 1), np.roll(s, -1)
        else:
            left = np.concatenate(([-np.inf], s[:-1]))
            right = np.concatenate((s[1:], [-np.inf]))
        cand = np.flatnonzero((s >= left) & (s > right) & (s >= threshold))
        cand = cand[np.argsort(-s[cand], kind="stable")]
        out: list[tuple[float, float]] = []
        for k in cand:
            az = float(self._refine(s[None, :], np.array([k]))[0])
            if all(angular_distance_deg(az, a) >= min_separation_deg for a, _ in out):
                out.append((az, float(s[k])))
            if len(out) >= max_peaks:
                break
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for checkpoints."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AzimuthGrid:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


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

"""Peak extraction from spatial spectra (pure Python)."""

from __future__ import annotations

import numpy as np
import pytest

from sst_ros.errors import ConfigError
from sst_ros.geometry import angular_distance_deg
from sst_ros.model.azimuth import AzimuthGrid
from sst_ros.tracking import PeakConfig, extract_peaks

GRID = AzimuthGrid(n_bins=72)  # full circle, 5-degree bins centred at -180 + 5 k


def bump(centres_deg: list[float], heights: list[float], sigma: float = 12.0, grid: AzimuthGrid = GRID) -> np.ndarray:
    centres = grid.bin_centers_deg()
    s = np.zeros_like(centres)
    for c, h in zip(centres_deg, heights, strict=True):
        d = angular_distance_deg(centres, c)
        s = np.maximum(s, h * np.exp(-0.5 * (d / sigma) ** 2))
    return s


def test_two_sources_across_wrap() -> None:
    """Two Gaussian bumps, one straddling +-180: both found, highest first, sub-bin exact."""
    g = AzimuthGrid(n_bins=72, sigma_deg=8.0)
    spec = np.maximum(g.targets(np.array([178.0]), np.array([True]))[0],
                      0.6 * g.targets(np.array([-60.0]), np.array([True]))[0])  # fmt: skip
    peaks = extract_peaks(spec, g, PeakConfig(max_peaks=3, threshold=0.3, min_separation_deg=20))
    assert len(peaks) == 2
    assert angular_distance_deg(peaks[0].azimuth_deg, 178.0) < 0.5 and peaks[0].height > 0.9
    assert angular_distance_deg(peaks[1].azimuth_deg, -60.0) < 0.5


def test_highest_peak_is_the_models_decoded_azimuth() -> None:
    """One refiner: the tracker's highest peak equals the model's decoding (the tracker's
    plain-Python form of it to the rounding of a logarithm)."""
    rng = np.random.default_rng(3)
    for grid in (GRID, AzimuthGrid(n_bins=37, circular=False, center_deg=90.0)):
        for _ in range(50):
            s = rng.uniform(0.0, 1.0, grid.n_bins)
            peaks = extract_peaks(s, grid, PeakConfig(max_peaks=1, threshold=0.0, min_separation_deg=0.0))
            assert abs(peaks[0].azimuth_deg - grid.decode(s)) <= 1e-9


def test_linear_grid_ends_are_peaks_without_extrapolation() -> None:
    g = AzimuthGrid(n_bins=37, circular=False, center_deg=0.0)  # -90 .. 90
    s = bump([-90.0, 90.0], [0.9, 0.7], grid=g)
    peaks = extract_peaks(s, g, PeakConfig(max_peaks=3, threshold=0.3))
    assert [(p.azimuth_deg, p.height) for p in peaks] == [(-90.0, 0.9), (90.0, 0.7)]


@pytest.mark.parametrize("az", [-170.0, -93.0, 0.0, 41.0, 133.0, 179.0])
def test_single_peak_sub_bin(az: float) -> None:
    peaks = extract_peaks(bump([az], [0.9]), GRID, PeakConfig(max_peaks=3, threshold=0.3))
    assert len(peaks) == 1
    assert angular_distance_deg(peaks[0].azimuth_deg, az) < 0.1  # exact for a Gaussian
    assert 0.8 < peaks[0].height <= 0.9 + 1e-9


def test_peak_across_wrap_is_one_peak() -> None:
    peaks = extract_peaks(bump([180.0], [0.8]), GRID, PeakConfig(max_peaks=3, threshold=0.3))
    assert len(peaks) == 1
    assert angular_distance_deg(peaks[0].azimuth_deg, 180.0) < 1.5
    assert -180.0 < peaks[0].azimuth_deg <= 180.0


def test_two_sources_threshold_and_order() -> None:
    s = bump([-60.0, 90.0], [0.6, 0.95])
    peaks = extract_peaks(s, GRID, PeakConfig(max_peaks=2, threshold=0.3))
    assert [round(p.azimuth_deg / 5) * 5 for p in peaks] == [90, -60]
    only_high = extract_peaks(s, GRID, PeakConfig(max_peaks=2, threshold=0.7))
    assert len(only_high) == 1
    one = extract_peaks(s, GRID, PeakConfig(max_peaks=1, threshold=0.3))
    assert len(one) == 1 and angular_distance_deg(one[0].azimuth_deg, 90.0) < 1.5


def test_min_separation_drops_close_peak() -> None:
    s = bump([10.0, 40.0], [0.9, 0.8], sigma=6.0)
    assert len(extract_peaks(s, GRID, PeakConfig(max_peaks=3, threshold=0.3, min_separation_deg=20.0))) == 2
    close = extract_peaks(s, GRID, PeakConfig(max_peaks=3, threshold=0.3, min_separation_deg=45.0))
    assert len(close) == 1 and angular_distance_deg(close[0].azimuth_deg, 10.0) < 1.5


def test_nan_spectrum_gives_no_nan_peaks() -> None:
    s = bump([30.0], [0.9])
    s[5] = np.nan
    s[6] = np.inf
    peaks = extract_peaks(s, GRID, PeakConfig(threshold=0.3))
    assert peaks and all(np.isfinite(p.azimuth_deg) and np.isfinite(p.height) for p in peaks)
    assert extract_peaks(np.full(72, np.nan), GRID, PeakConfig()) == []


def test_bad_inputs_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="bins"):
        extract_peaks(np.zeros(10), GRID, PeakConfig())
    with pytest.raises(ConfigError, match="threshold"):
        PeakConfig(threshold=1.5)

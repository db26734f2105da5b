"""Peak extraction from spatial spectra (pure Python)."""

from __future__ import annotations

import numpy as np
import pytest

from sst_ros.errors import ConfigError
from sst_ros.geometry import angular_distance_deg
from sst_ros.tracking import PeakConfig, extract_peaks, is_circular_grid

GRID = np.arange(-180.0, 180.0, 5.0) + 2.5  # 72 bins, full circle


def bump(centres_deg: list[float], heights: list[float], sigma: float = 12.0) -> np.ndarray:
    s = np.zeros_like(GRID)
    for c, h in zip(centres_deg, heights, strict=True):
        d = angular_distance_deg(GRID, c)
        s = np.maximum(s, h * np.exp(-0.5 * (d / sigma) ** 2))
    return s


def test_circular_grid_detected() -> None:
    assert is_circular_grid(GRID)
    assert not is_circular_grid(np.arange(0.0, 180.0, 1.0) + 0.5)


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
    assert extract_peaks(np.full_like(GRID, np.nan), GRID, PeakConfig()) == []


def test_bad_inputs_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="bins"):
        extract_peaks(np.zeros(10), GRID, PeakConfig())
    with pytest.raises(ConfigError, match="threshold"):
        PeakConfig(threshold=1.5)

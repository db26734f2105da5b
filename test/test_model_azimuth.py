"""Azimuth grid: circular targets without the 180-degree wrap defect, decoding, sub-bin refinement, linear arrays."""

from __future__ import annotations

import numpy as np
import pytest

from sst_ros.errors import ConfigError
from sst_ros.geometry import MicArray, angular_distance_deg, load_array
from sst_ros.model.azimuth import AzimuthGrid, broadside_deg, grid_for_array


def test_planar_array_gets_full_circle() -> None:
    g = grid_for_array(load_array("respeaker_usb_v2"))
    assert g.circular and g.n_bins == 72
    c = g.bin_centers_deg()
    assert c[0] == -180.0 and c[-1] == 175.0 and np.all(np.diff(c) == 5.0)


def test_target_wraps_around_180_not_0() -> None:
    """Regression for the reference code's wrap defect (0 and 179 degrees were neighbours)."""
    g = AzimuthGrid(n_bins=72, sigma_deg=10.0)
    t = g.targets(np.array([179.0]), np.array([True]))[0]
    c = g.bin_centers_deg()
    assert t[c == -180.0][0] > 0.95  # -180 is 1 degree away from 179
    assert t[c == 175.0][0] > 0.9
    assert t[c == -175.0][0] > 0.8  # across the wrap
    assert t[c == 0.0][0] < 1e-6


def test_inactive_frames_have_zero_target() -> None:
    g = AzimuthGrid()
    t = g.targets(np.array([10.0, 10.0, np.nan]), np.array([True, False, True]))
    assert t[0].max() > 0.9 and t[1].max() == 0.0 and t[2].max() == 0.0


@pytest.mark.parametrize("az", [-180.0, -179.2, -91.3, 0.0, 2.5, 33.3, 177.7, 180.0])
def test_decode_recovers_gaussian_peak_between_bins(az: float) -> None:
    g = AzimuthGrid(n_bins=72, sigma_deg=10.0)
    spec = g.targets(np.array([az]), np.array([True]))
    est = g.decode(spec)[0]
    assert angular_distance_deg(est, az) < 0.05


def test_refine_several_bins_per_row_and_linear_domain() -> None:
    g = AzimuthGrid(n_bins=72, sigma_deg=10.0)
    spec = g.targets(np.array([31.0, -122.4]), np.array([True, True]))  # (2, 72)
    k = np.stack([np.argmax(spec, axis=-1), (np.argmax(spec, axis=-1) + 36) % 72], axis=-1)  # (2, 2)
    az = g.refine(spec, k)
    assert az.shape == (2, 2)
    np.testing.assert_allclose(az[:, 0], g.decode(spec))
    # a fitted parabola through a Gaussian's values is close to, not exactly at, its centre
    lin = g.decode(spec, log_domain=False)
    assert np.all(angular_distance_deg(lin, np.array([31.0, -122.4])) < 1.0)
    # flat spectrum: no refinement, the first bin's centre (-180, wrapped into (-180, 180])
    assert g.decode(np.full(72, 0.5)) == 180.0
    with pytest.raises(ConfigError, match="bins"):
        g.decode(np.zeros(10))


_GRIDS = [AzimuthGrid(72), AzimuthGrid(37, circular=False), AzimuthGrid(19, circular=False, center_deg=30.0)]


@pytest.mark.parametrize("grid", _GRIDS)
@pytest.mark.parametrize("log_domain", [True, False])
def test_refine_one_is_refine_for_every_bin(grid: AzimuthGrid, log_domain: bool) -> None:
    """The tracker's plain-Python refinement of one bin equals the vectorised one: sharp and flat
    peaks, zeros (the log floor), both ends of a linear grid."""
    rng = np.random.default_rng(7)
    for _ in range(40):
        s = rng.random(grid.n_bins) ** 4
        s[rng.integers(0, grid.n_bins, 3)] = 0.0
        s[rng.integers(0, grid.n_bins - 1) :][:2] = 0.5  # a flat pair
        bins = np.arange(grid.n_bins)
        want = grid.refine(s, bins, log_domain=log_domain)
        got = [grid.refine_one(s.tolist(), int(k), log_domain=log_domain) for k in bins]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
        assert np.any(np.abs(want - grid.bin_centers_deg()) > 0.1)  # some bins are refined off their centre


def test_circular_from_centers_is_the_one_convention() -> None:
    g = AzimuthGrid(n_bins=360)
    assert AzimuthGrid.circular_from_centers(g.bin_centers_deg()) == g
    with pytest.raises(ConfigError, match="-180"):
        AzimuthGrid.circular_from_centers(-180.0 + (np.arange(360) + 0.5))  # half-bin rotated
    with pytest.raises(ConfigError, match="full circle"):
        AzimuthGrid.circular_from_centers(np.linspace(-90, 90, 37))


def _linear(axis_deg: float) -> MicArray:
    u = np.array([np.cos(np.radians(axis_deg)), np.sin(np.radians(axis_deg)), 0.0])
    return MicArray("pair", np.stack([-0.05 * u, 0.05 * u]), (0, 1), 2)


@pytest.mark.parametrize(("axis", "broadside"), [(90.0, 0.0), (0.0, 90.0), (45.0, -45.0), (-45.0, 45.0)])
def test_linear_array_broadside_is_in_front_half(axis: float, broadside: float) -> None:
    assert broadside_deg(_linear(axis)) == pytest.approx(broadside, abs=1e-6)
    assert broadside_deg(load_array("respeaker_usb_v2")) is None


def test_linear_array_folds_mirror_directions() -> None:
    g = grid_for_array(_linear(90.0))  # mics along y: front (0) and back (180) are indistinguishable
    assert not g.circular and g.n_bins == 37
    assert g.bin_centers_deg()[0] == -90.0 and g.bin_centers_deg()[-1] == 90.0
    np.testing.assert_allclose(g.fold(np.array([180.0, 150.0, -150.0, 30.0, 90.0])), [0.0, 30.0, -30.0, 30.0, 90.0])
    # mirror images get identical targets
    t = g.targets(np.array([150.0, 30.0]), np.array([True, True]))
    np.testing.assert_allclose(t[0], t[1])
    assert angular_distance_deg(g.decode(t[:1])[0], 30.0) < 0.05

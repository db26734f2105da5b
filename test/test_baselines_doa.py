"""Classical DOA baselines: physics-grounded localisation, shared post-processing, errors."""

from __future__ import annotations

import numpy as np
import pytest

from sst_ros.errors import AudioFormatError, ConfigError
from sst_ros.geometry import angular_distance_deg, load_array
from sst_ros.model.azimuth import AzimuthGrid
from sst_ros.sim.plane_wave import plane_wave, with_sensor_noise
from sst_ros.train.baselines import (
    BASELINES,
    BaselineConfig,
    DoaBaseline,
    get_baseline,
    parse_baseline_names,
    smooth_spectra,
)

FS = 16000



def delayed_noise(array, azimuth_deg, rng, seconds=1.0, snr_db=20.0, fs=FS):
    """Far-field full-band white noise from ``azimuth_deg`` (exact delays, anechoic) over sensor noise."""
    wave = plane_wave(array, azimuth_deg, int(seconds * fs), rng, fs_hz=fs, band_hz=None)
    return with_sensor_noise(wave, rng, snr_db)


def test_registry_names_and_classes():
    assert set(BASELINES) == {"srp_phat", "music", "normmusic"}
    for name, cls in BASELINES.items():
        assert issubclass(cls, DoaBaseline)
        assert cls.name == name
        assert get_baseline(name.upper().replace("_", "-")).name == name


@pytest.mark.parametrize("name", sorted(BASELINES))
@pytest.mark.parametrize("azimuth_deg", [37.0, 128.0, -152.0, -61.0, 179.0])
def test_localises_known_angle_all_quadrants(name, azimuth_deg, rng):
    array = load_array("respeaker_usb_v2")
    audio = delayed_noise(array, azimuth_deg, rng)
    pred = get_baseline(name).run(audio, FS, array)
    assert pred.azimuth_deg.shape == (10,)
    assert pred.spectrum.shape == (10, 360)
    np.testing.assert_array_equal(pred.bin_centers_deg, AzimuthGrid(n_bins=360).bin_centers_deg())
    err = angular_distance_deg(pred.azimuth_deg, azimuth_deg)
    assert np.median(err) < 3.0, (name, azimuth_deg, pred.azimuth_deg)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_model_grid_and_other_rate(name, rng):
    """The model's 72-bin grid starting at -180 deg, at 48 kHz: still within a few degrees."""
    array = load_array("respeaker_usb_v2")
    audio = delayed_noise(array, -100.0, rng, seconds=0.5, fs=48000)
    grid = -180.0 + 5.0 * np.arange(72)
    pred = get_baseline(name, BaselineConfig(azimuth_grid_deg=grid)).run(audio, 48000, array)
    assert pred.azimuth_deg.shape == (5,)
    assert np.median(angular_distance_deg(pred.azimuth_deg, -100.0)) < 5.0


def test_frame_grid_matches_labels():
    array = load_array("respeaker_usb_v2")
    audio = np.zeros((int(2.35 * FS), 4), dtype=np.float32)
    pred = get_baseline("srp_phat").run(audio, FS, array)
    # floor(2.35 s / 100 ms) frames, stamped with their start times.
    np.testing.assert_allclose(pred.time_s, 0.1 * np.arange(23))
    assert np.all(np.isfinite(pred.azimuth_deg))
    assert np.all((pred.activity >= 0) & (pred.activity <= 1))


def test_energy_activity_separates_speechlike_bursts(rng):
    array = load_array("respeaker_usb_v2")
    audio = delayed_noise(array, 45.0, rng, seconds=3.0)
    quiet = np.ones(audio.shape[0], dtype=bool)
    quiet[FS : 2 * FS] = False  # loud in [1 s, 2 s), 30 dB quieter elsewhere
    audio[quiet] *= 10 ** (-30 / 20)
    pred = get_baseline("music").run(audio, FS, array)
    loud = (pred.time_s >= 1.05) & (pred.time_s < 1.85)
    silent = (pred.time_s < 0.85) | (pred.time_s >= 2.15)
    assert np.all(pred.activity[loud] > 0.9)
    assert np.all(pred.activity[silent] < 0.5)  # detected inactive at the 0.5 threshold


def test_linear_domain_decode_wraps_at_180():
    """The baselines' decoding: the grid's refiner in the linear domain, wrap-aware."""
    grid = AzimuthGrid(n_bins=72)
    centres = grid.bin_centers_deg()
    for az in (178.0, -179.0, 180.0):
        spec = np.exp(-0.5 * (angular_distance_deg(centres[None, :], az) / 10.0) ** 2)
        assert angular_distance_deg(grid.decode(spec, log_domain=False)[0], az) < 1.0


def test_grid_is_the_models_convention():
    """Bins centred at -180 + k * 360 / K (the model's AzimuthGrid); rotated or half-plane grids are refused."""
    model_grid = AzimuthGrid(n_bins=72).bin_centers_deg()
    cfg = BaselineConfig().with_grid(model_grid)
    np.testing.assert_array_equal(cfg.azimuth_grid_deg, model_grid)
    assert cfg.grid == AzimuthGrid(n_bins=72)
    assert BaselineConfig().azimuth_grid_deg[0] == -180.0
    with pytest.raises(ConfigError, match="-180 \\+ k"):
        BaselineConfig(azimuth_grid_deg=model_grid + 2.5)


def test_smoothing_is_causal_and_peak_normalised():
    raw = np.array([[0.0, 10.0, 0.0], [5.0, 0.0, 1.0], [2.0, 2.0, 2.0]])
    out = smooth_spectra(raw, 0.5)
    np.testing.assert_allclose(out[0], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(out[1], [0.5, 0.5, 0.1])
    np.testing.assert_allclose(out[2], [0.75, 0.75, 0.55])  # a flat frame stays flat: argmax unchanged
    # Causal: changing a later frame does not change earlier outputs.
    raw2 = raw.copy()
    raw2[2] = [9.0, 0.0, 0.0]
    np.testing.assert_allclose(smooth_spectra(raw2, 0.5)[:2], out[:2])
    np.testing.assert_allclose(smooth_spectra(raw, 0.0), [[0, 1, 0], [1, 0, 0.2], [1, 1, 1]])
    silent = smooth_spectra(np.zeros((2, 4)), 0.5)
    np.testing.assert_array_equal(silent, 0.0)


def test_errors_are_clear():
    array = load_array("respeaker_usb_v2")
    with pytest.raises(AudioFormatError, match="4 microphones"):
        get_baseline("srp_phat").run(np.zeros((1600, 6), np.float32), FS, array)
    with pytest.raises(ConfigError, match="unknown baseline 'beamformer'"):
        get_baseline("beamformer")
    with pytest.raises(ConfigError, match="available"):
        parse_baseline_names("srp_phat,foo")
    assert parse_baseline_names("all") == list(BASELINES)
    assert parse_baseline_names("none") == []
    with pytest.raises(ConfigError, match="smoothing"):
        BaselineConfig(smoothing=1.0)
    with pytest.raises(ConfigError, match="uniform over the full circle"):
        BaselineConfig(azimuth_grid_deg=np.linspace(-90, 90, 37))

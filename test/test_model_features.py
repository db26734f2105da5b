"""Causal STFT features (numpy, for every backend): chunk invariance, causality, shapes, silence."""

from __future__ import annotations

import numpy as np
import pytest

from sst_ros.errors import AudioFormatError, ConfigError
from sst_ros.model.features import FeatureConfig, StreamingFeatures, compute_features


def _random_chunks(audio: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    cuts = np.sort(rng.choice(np.arange(1, audio.shape[0]), size=12, replace=False))
    cuts = np.concatenate([cuts, [cuts[3]]])  # an empty chunk too
    return np.split(audio, np.sort(cuts))


@pytest.mark.parametrize("phase_reference", [False, True])
def test_chunked_features_equal_whole_clip(rng: np.random.Generator, phase_reference: bool) -> None:
    cfg = FeatureConfig(phase_reference=phase_reference)
    audio = (0.1 * rng.standard_normal((16000 * 2 + 123, 4))).astype(np.float32)
    whole = compute_features(audio, cfg)
    sf = StreamingFeatures(cfg, 4)
    parts = [sf.process(c) for c in _random_chunks(audio, rng)]
    chunked = np.concatenate(parts, axis=-1)
    assert isinstance(whole, np.ndarray) and whole.dtype == np.float32
    assert whole.shape == (8, 256, audio.shape[0] // 320)
    assert chunked.shape == whole.shape
    assert np.array_equal(chunked, whole)
    # 20 ms messages: one frame per call (numpy lays out a one-frame product differently)
    sf.reset()
    hop = np.concatenate([sf.process(audio[k : k + 320]) for k in range(0, audio.shape[0], 320)], axis=-1)
    assert np.array_equal(hop, whole)


def test_reset_starts_a_new_stream(rng: np.random.Generator) -> None:
    cfg = FeatureConfig()
    a = (0.1 * rng.standard_normal((8000, 2))).astype(np.float32)
    sf = StreamingFeatures(cfg, 2)
    sf.process(rng.standard_normal((5000, 2)).astype(np.float32))
    sf.reset()
    assert np.array_equal(sf.process(a), compute_features(a, cfg))


def test_features_are_causal(rng: np.random.Generator) -> None:
    cfg = FeatureConfig()
    a = (0.1 * rng.standard_normal((16000, 4))).astype(np.float32)
    b = a.copy()
    b[9600:] = rng.standard_normal((6400, 4))  # change the future from sample 9600 (frame 30) on
    fa, fb = compute_features(a, cfg), compute_features(b, cfg)
    assert np.array_equal(fa[..., :30], fb[..., :30])
    assert not np.array_equal(fa[..., 30:], fb[..., 30:])


def test_running_normalisation_makes_level_irrelevant(rng: np.random.Generator) -> None:
    cfg = FeatureConfig()
    a = (0.1 * rng.standard_normal((16000, 4))).astype(np.float64)
    f1 = compute_features(a, cfg)
    f2 = compute_features(a * 20.0, cfg)
    np.testing.assert_allclose(f1, f2, rtol=1e-4, atol=1e-5)
    assert 0.3 < float(np.abs(f1).mean()) < 3.0


def test_silence_gives_finite_zero_features() -> None:
    f = compute_features(np.zeros((3200, 4), np.float32), FeatureConfig(phase_reference=True))
    assert np.isfinite(f).all() and float(np.abs(f).max()) == 0.0


def test_phase_reference_removes_source_phase(rng: np.random.Generator) -> None:
    # mic 0's plane becomes real (its imaginary plane is zero)
    f = compute_features(rng.standard_normal((4800, 3)).astype(np.float32), FeatureConfig(phase_reference=True))
    assert float(np.abs(f[1]).max()) < 1e-5
    assert float(np.abs(f[3]).max()) > 0.1


def test_bad_inputs_are_refused() -> None:
    sf = StreamingFeatures(FeatureConfig(), 4)
    with pytest.raises(AudioFormatError, match="select the microphone channels"):
        sf.process(np.zeros((100, 6), np.float32))
    with pytest.raises(ConfigError, match="hop"):
        FeatureConfig(hop=1024)
    with pytest.raises(ConfigError, match="unknown fields"):
        FeatureConfig.from_dict({"hop": 320, "window": "hann"})


# ---- srp features (per-band steered response maps) ------------------------------------------
def _srp_cfg(array_name: str = "respeaker_usb_v2", **kw: object) -> FeatureConfig:
    from sst_ros.geometry import load_array
    from sst_ros.model.features import feature_config_for

    return feature_config_for(load_array(array_name).positions_m, kind="srp", **kw)


def test_srp_chunked_features_equal_whole_clip(rng: np.random.Generator) -> None:
    cfg = _srp_cfg()
    audio = (0.1 * rng.standard_normal((16000 * 2 + 123, 4))).astype(np.float32)
    whole = compute_features(audio, cfg)
    assert whole.shape == (cfg.n_planes(4), 128, audio.shape[0] // 320) == (19, 128, 100)
    for _ in range(3):
        sf = StreamingFeatures(cfg, 4)
        chunked = np.concatenate([sf.process(c) for c in _random_chunks(audio, rng)], axis=-1)
        assert chunked.shape == whole.shape
        # single-precision product: equal to rounding, nowhere near a real difference
        np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize("array_name", ["respeaker_usb_v2", "minidsp_uma8", "respeaker_6mic_circular"])
@pytest.mark.parametrize("azimuth_deg", [-170.0, -95.0, 0.0, 42.0, 135.0, 179.0])
def test_srp_maps_peak_at_the_plane_wave_direction(array_name: str, azimuth_deg: float) -> None:
    from sst_ros.geometry import angular_distance_deg, load_array
    from sst_ros.sim.plane_wave import plane_wave

    array = load_array(array_name)
    cfg = _srp_cfg(array_name)
    audio = plane_wave(array, azimuth_deg, 16000, np.random.default_rng(int(azimuth_deg) + 500))
    f = compute_features(audio, cfg)
    grid = -180.0 + np.arange(cfg.srp_azimuths) * 360.0 / cfg.srp_azimuths
    srp = f[: cfg.srp_bands, :, 5:].mean(axis=(0, 2))  # SRP-PHAT over all bands
    assert float(angular_distance_deg(grid[int(np.argmax(srp))], azimuth_deg)) <= 360.0 / cfg.srp_azimuths
    assert float(srp.max()) > 0.8  # one coherent plane wave: nearly 1
    # the coordinate planes hold cos/sin of each row's azimuth, the magnitude plane is finite
    np.testing.assert_allclose(f[cfg.srp_bands + 1, :, 0], np.cos(np.radians(grid)), atol=1e-6)
    np.testing.assert_allclose(f[cfg.srp_bands + 2, :, 0], np.sin(np.radians(grid)), atol=1e-6)
    assert np.isfinite(f[cfg.srp_bands]).all()


def test_srp_silence_and_level_invariance(rng: np.random.Generator) -> None:
    cfg = _srp_cfg()
    silent = compute_features(np.zeros((3200, 4), np.float32), cfg)
    assert np.isfinite(silent).all() and float(np.abs(silent[: cfg.srp_bands]).max()) == 0.0
    a = (0.1 * rng.standard_normal((16000, 4))).astype(np.float32)
    np.testing.assert_allclose(compute_features(a, cfg), compute_features(a * 30.0, cfg), rtol=1e-4, atol=1e-4)


def test_srp_config_errors_are_named() -> None:
    with pytest.raises(ConfigError, match="needs mic_positions_m"):
        FeatureConfig(kind="srp")
    with pytest.raises(ConfigError, match="srp_bands"):
        _srp_cfg(srp_bands=15)
    with pytest.raises(ConfigError, match="kind must be one of"):
        FeatureConfig(kind="gammatone")
    with pytest.raises(ConfigError, match="configured for 4 microphones but the audio has 6"):
        StreamingFeatures(_srp_cfg(), 6)
    # checkpoints carry the config as plain data and get the same object back
    cfg = _srp_cfg(srp_bands=8, srp_azimuths=64)
    assert FeatureConfig.from_dict(cfg.to_dict()) == cfg

"""Causal STFT features: chunk invariance, causality, shapes, silence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sst_ros.errors import AudioFormatError, ConfigError
from sst_ros.model.features import FeatureConfig, StreamingFeatures, compute_features


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


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
    chunked = torch.cat(parts, dim=-1)
    assert whole.shape == (8, 256, audio.shape[0] // 320)
    assert chunked.shape == whole.shape
    assert torch.equal(chunked, whole)


def test_reset_starts_a_new_stream(rng: np.random.Generator) -> None:
    cfg = FeatureConfig()
    a = (0.1 * rng.standard_normal((8000, 2))).astype(np.float32)
    sf = StreamingFeatures(cfg, 2)
    sf.process(rng.standard_normal((5000, 2)).astype(np.float32))
    sf.reset()
    assert torch.equal(sf.process(a), compute_features(a, cfg))


def test_features_are_causal(rng: np.random.Generator) -> None:
    cfg = FeatureConfig()
    a = (0.1 * rng.standard_normal((16000, 4))).astype(np.float32)
    b = a.copy()
    b[9600:] = rng.standard_normal((6400, 4))  # change the future from sample 9600 (frame 30) on
    fa, fb = compute_features(a, cfg), compute_features(b, cfg)
    assert torch.equal(fa[..., :30], fb[..., :30])
    assert not torch.equal(fa[..., 30:], fb[..., 30:])


def test_running_normalisation_makes_level_irrelevant(rng: np.random.Generator) -> None:
    cfg = FeatureConfig()
    a = (0.1 * rng.standard_normal((16000, 4))).astype(np.float64)
    f1 = compute_features(a, cfg)
    f2 = compute_features(a * 20.0, cfg)
    torch.testing.assert_close(f1, f2, rtol=1e-4, atol=1e-5)
    assert 0.3 < float(f1.abs().mean()) < 3.0


def test_silence_gives_finite_zero_features() -> None:
    f = compute_features(np.zeros((3200, 4), np.float32), FeatureConfig(phase_reference=True))
    assert torch.isfinite(f).all() and float(f.abs().max()) == 0.0


def test_phase_reference_removes_source_phase(rng: np.random.Generator) -> None:
    # mic 0's plane becomes real (its imaginary plane is zero)
    f = compute_features(rng.standard_normal((4800, 3)).astype(np.float32), FeatureConfig(phase_reference=True))
    assert float(f[1].abs().max()) < 1e-5
    assert float(f[3].abs().max()) > 0.1


def test_bad_inputs_are_refused() -> None:
    sf = StreamingFeatures(FeatureConfig(), 4)
    with pytest.raises(AudioFormatError, match="select the microphone channels"):
        sf.process(np.zeros((100, 6), np.float32))
    with pytest.raises(ConfigError, match="hop"):
        FeatureConfig(hop=1024)
    with pytest.raises(ConfigError, match="unknown fields"):
        FeatureConfig.from_dict({"hop": 320, "window": "hann"})

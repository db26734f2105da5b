"""Importance-weight sign: synthetic clips from the target's angular sector must weigh more.

The reference implementation weighted synthetic clips by ``1 - D`` (D = P(target)), which
favours the clips that look least like the target. This pins the corrected sign with a real
discriminator trained on feature sequences whose frames encode a direction.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sst_ros.adapt.batches import pad_batch
from sst_ros.adapt.discriminator import SequenceDiscriminator, discriminator_loss
from sst_ros.adapt.weights import importance_weights
from sst_ros.geometry import angular_distance_deg

SECTOR_DEG = 30.0  # target talkers within +-30 degrees of the front
H = 8


def _clips(rng: np.random.Generator, az_deg: np.ndarray, target: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame features of clips from directions az_deg: direction code + noise + a domain offset."""
    seqs = []
    for az in az_deg:
        n = int(rng.integers(4, 15))
        a = np.deg2rad(az)
        f = rng.normal(0.0, 0.3, size=(n, H)).astype(np.float32)
        f[:, 0] += np.cos(a)
        f[:, 1] += np.sin(a)
        if target:
            f[:, 2] += 0.4  # a modest domain shift shared by all target clips
        seqs.append(torch.from_numpy(f))
    return pad_batch(seqs)


@pytest.fixture(scope="module")
def trained_disc() -> SequenceDiscriminator:
    """A weighting discriminator after a short training: synthetic from all around vs target from the sector."""
    rng = np.random.default_rng(7)
    torch.manual_seed(7)
    disc = SequenceDiscriminator(H, gru_hidden=16, mlp_hidden=16)
    opt = torch.optim.Adam(disc.parameters(), lr=1e-2)
    for _ in range(120):
        hs, ls = _clips(rng, rng.uniform(-180, 180, 32), target=False)
        ht, lt = _clips(rng, rng.uniform(-SECTOR_DEG, SECTOR_DEG, 32), target=True)
        loss, _ = discriminator_loss(disc, hs, ls, ht, lt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return disc.eval()


@pytest.mark.parametrize("mode", ["ratio", "prob"])
def test_weights_favour_synthetic_clips_from_target_sector(trained_disc: SequenceDiscriminator, mode: str) -> None:
    rng = np.random.default_rng(11)
    az = rng.uniform(-180, 180, 400)
    hs, ls = _clips(rng, az, target=False)
    with torch.no_grad():
        w = importance_weights(trained_disc.probability(hs, ls), mode).numpy()
    inside = angular_distance_deg(az, 0.0) <= SECTOR_DEG
    far = angular_distance_deg(az, 0.0) >= 90.0
    assert w.mean() == pytest.approx(1.0, abs=1e-5)
    assert w[inside].mean() > 2.0 * w[~inside].mean()
    assert w[inside].mean() > 1.0 > w[far].mean()


def test_reference_sign_would_fail(trained_disc: SequenceDiscriminator) -> None:
    """Regression for the reference code's ``1 - D`` weights: they favour the clips outside the sector."""
    rng = np.random.default_rng(12)
    az = rng.uniform(-180, 180, 400)
    hs, ls = _clips(rng, az, target=False)
    with torch.no_grad():
        d = trained_disc.probability(hs, ls)
    inverted = ((1 - d) / (1 - d).mean()).numpy()
    inside = angular_distance_deg(az, 0.0) <= SECTOR_DEG
    assert inverted[inside].mean() < inverted[~inside].mean()


def _mismatched(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A cheap MEMS unit: per-channel gains (std 2 dB) and first-order colouring."""
    from scipy.signal import lfilter

    gains = 10 ** (np.array([1.5, -2.0, 0.5, -1.0]) / 20)
    poles = np.array([0.3, -0.2, 0.1, 0.4])
    y = np.stack([lfilter([1 - abs(p)], [1, -p], x[:, m]) for m, p in enumerate(poles)], axis=1) * gains
    return (y + 0.004 * rng.standard_normal(y.shape)).astype(np.float32)


@pytest.mark.parametrize("weight_input", ["embedding", "direction"])
def test_device_mismatched_sector_target_still_favours_in_sector_clips(weight_input: str) -> None:
    """The shipped model's FE_s output, a target from the front sector heard through a
    mismatched device: D learns both differences, and the in-sector synthetic clips still get
    the larger weights (prob = IWAN's bounded form), whether D reads the embeddings or the
    decoded direction and activity (``AdaptConfig.weight_input``)."""
    from sst_ros.adapt.batches import make_batch
    from sst_ros.adapt.discriminator import direction_features
    from sst_ros.model.checkpoint import load_checkpoint
    from sst_ros.sim.plane_wave import plane_wave

    loaded = load_checkpoint(None)
    rng = np.random.default_rng(3)
    torch.manual_seed(3)
    fpo = loaded.model_cfg.frames_per_output
    centers = torch.from_numpy(np.radians(loaded.model.bin_centers_deg()).astype(np.float32))

    def feats(az: np.ndarray, target: bool) -> tuple[torch.Tensor, torch.Tensor]:
        clips = [plane_wave(loaded.array, a, 16000, rng) for a in az]
        if target:
            clips = [_mismatched(c, rng) for c in clips]
        b = make_batch(clips, loaded.feature_cfg, fpo)
        with torch.no_grad():
            h = loaded.model.extract(b.x)
            if weight_input == "direction":
                h = direction_features(*loaded.model.head(h), centers)
            return h, b.lengths

    az_s = rng.uniform(-180, 180, 64)
    hs, ls = feats(az_s, False)
    ht, lt = feats(rng.uniform(-SECTOR_DEG, SECTOR_DEG, 32), True)
    disc = SequenceDiscriminator(hs.shape[-1], gru_hidden=32, mlp_hidden=32)
    opt = torch.optim.Adam(disc.parameters(), lr=3e-3)
    for _ in range(150):
        loss, _ = discriminator_loss(disc, hs, ls, ht, lt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    az_v = rng.uniform(-180, 180, 64)
    hv, lv = feats(az_v, False)
    with torch.no_grad():
        w = importance_weights(disc.eval().probability(hv, lv), "prob").numpy()
    inside = angular_distance_deg(az_v, 0.0) <= SECTOR_DEG
    assert inside.sum() >= 5
    print(f"{weight_input}: in-sector mean weight {w[inside].mean():.2f} vs {w[~inside].mean():.2f} outside")
    assert w[inside].mean() > 1.5 * w[~inside].mean()

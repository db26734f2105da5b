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

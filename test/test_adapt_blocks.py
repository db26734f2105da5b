"""Generic adaptation blocks: gradient reversal, sequence discriminator, importance weights, losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sst_ros.adapt.discriminator import SequenceDiscriminator
from sst_ros.adapt.grl import GradientReverseLayer, dann_coefficient
from sst_ros.adapt.losses import domain_adversarial_loss, weighted_bce_with_logits
from sst_ros.adapt.weights import importance_weights
from sst_ros.errors import ConfigError, DataError


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.mark.parametrize("coeff", [0.0, 0.001, 0.5, 1.0, 3.0])
def test_grl_flips_gradient_with_configured_coefficient(coeff: float, gen: torch.Generator) -> None:
    x = torch.randn(4, 7, 3, generator=gen, requires_grad=True)
    upstream = torch.randn(4, 7, 3, generator=gen)
    y = GradientReverseLayer(coeff)(x)
    assert torch.equal(y, x)  # identity forward
    (y * upstream).sum().backward()
    assert torch.allclose(x.grad, -coeff * upstream)


def test_grl_schedule(gen: torch.Generator) -> None:
    # formula 2(hi-lo)/(1+exp(-a i/N)) - (hi-lo) + lo
    hi, lo, a, n = 0.7, 0.1, 10.0, 200
    for i in (0, 13, 100, 200, 1000):
        expected = 2 * (hi - lo) / (1 + math.exp(-a * i / n)) - (hi - lo) + lo
        assert dann_coefficient(i, n, hi, lo, a) == pytest.approx(expected)
    assert dann_coefficient(0, n, hi, lo) == pytest.approx(lo)
    assert dann_coefficient(10 * n, n, hi, lo) == pytest.approx(hi, abs=1e-9)
    # the scheduled coefficient is what the layer applies (as the trainer passes it per step)
    c = dann_coefficient(50, n, hi, lo, a)
    x = torch.randn(5, generator=gen, requires_grad=True)
    GradientReverseLayer()(x, c).sum().backward()
    assert torch.allclose(x.grad, torch.full((5,), -c))
    with pytest.raises(ConfigError):
        dann_coefficient(0, 0)


def test_discriminator_output_invariant_to_batch_padding(gen: torch.Generator) -> None:
    torch.manual_seed(0)
    disc = SequenceDiscriminator(in_dim=6, gru_hidden=16, mlp_hidden=8).eval()
    lengths = torch.tensor([5, 9, 3])
    clips = [torch.randn(int(n), 6, generator=gen) for n in lengths]

    def batch(pad_to: int, order: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.full((len(order), pad_to, 6), 7.5)  # padding that is far from zero on purpose
        for row, i in enumerate(order):
            x[row, : lengths[i]] = clips[i]
        return x, lengths[order]

    with torch.no_grad():
        ref = disc(*batch(9, [0, 1, 2]))
        longer = disc(*batch(40, [0, 1, 2]))
        shuffled = disc(*batch(23, [2, 0, 1]))
        alone = torch.stack([disc(clips[i][None], lengths[i : i + 1])[0] for i in range(3)])
    assert torch.allclose(ref, longer, atol=1e-6)
    assert torch.allclose(ref[[2, 0, 1]], shuffled, atol=1e-6)
    assert torch.allclose(ref, alone, atol=1e-6)
    # Without packing the padding would matter: the padded frames change a plain GRU pass.
    with torch.no_grad():
        x, _ = batch(40, [0, 1, 2])
        _, h_unpacked = disc.gru(x)
        assert not torch.allclose(disc.mlp(h_unpacked[-1]).squeeze(-1), ref, atol=1e-3)


def test_discriminator_rejects_bad_lengths() -> None:
    disc = SequenceDiscriminator(in_dim=4, gru_hidden=8, mlp_hidden=4)
    with pytest.raises(DataError, match="lengths"):
        disc(torch.zeros(2, 5, 4), torch.tensor([3, 6]))
    with pytest.raises(DataError, match="lengths"):
        disc(torch.zeros(2, 5, 4), torch.tensor([3]))
    with pytest.raises(DataError, match="features"):
        disc(torch.zeros(2, 5, 3), torch.tensor([3, 2]))


def test_importance_weights_grow_with_target_probability() -> None:
    d = torch.tensor([0.1, 0.3, 0.5, 0.8, 0.95], requires_grad=True)
    for mode in ("ratio", "prob"):
        w = importance_weights(d, mode)
        assert not w.requires_grad
        assert float(w.mean()) == pytest.approx(1.0, abs=1e-6)
        assert torch.all(w[1:] > w[:-1]), f"{mode} weights must increase with P(target)"
    ratio = importance_weights(d, "ratio")
    dd = d.detach()
    assert torch.allclose(ratio, (dd / (1 - dd)) / (dd / (1 - dd)).mean())
    assert torch.equal(importance_weights(d, "uniform"), torch.ones(5))
    capped = importance_weights(d, "ratio", max_weight=2.0)
    assert float(capped.mean()) == pytest.approx(1.0, abs=1e-6)
    assert float(capped.max()) < float(ratio.max())
    with pytest.raises(ConfigError):
        importance_weights(d, "inverse")


def test_weighted_adversarial_loss() -> None:
    logits_s = torch.tensor([2.0, -1.0, 0.5])
    logits_t = torch.tensor([1.0, -0.5])
    w = torch.tensor([0.0, 3.0, 0.0])
    # only the second source clip counts: BCE(sigmoid(-1), 0) * 3 / 3 clips
    ls = weighted_bce_with_logits(logits_s, torch.zeros(3), w)
    assert float(ls) == pytest.approx(3 * math.log1p(math.exp(-1.0)) / 3)
    full = domain_adversarial_loss(logits_s, logits_t, None)
    manual = 0.5 * (
        np.mean([math.log1p(math.exp(v)) for v in (2.0, -1.0, 0.5)])
        + np.mean([math.log1p(math.exp(-v)) for v in (1.0, -0.5)])
    )
    assert float(full) == pytest.approx(manual, rel=1e-6)

"""The adaptation method's parts on real torch steps: where gradients flow, the target
statistics stage, pool-normalised weights, the symmetric srp features and the guard's rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _model_synth import tiny_adaptation_inputs

from sst_ros.adapt.batches import SourcePool, make_batch
from sst_ros.adapt.config import AdaptConfig
from sst_ros.adapt.guard import collapse_reasons, guard_decision
from sst_ros.adapt.target_criteria import srp_azimuth_map
from sst_ros.adapt.target_stats import batchnorm_layers, reestimate_batchnorm, target_stat_crops
from sst_ros.adapt.trainer import IwanTrainer
from sst_ros.adapt.weights import RunningMean, normalise_weights
from sst_ros.data.clip_reader import ClipReader
from sst_ros.data.target_set import load_target_set
from sst_ros.model.checkpoint import load_checkpoint
from sst_ros.model.crnn import CRNN
from sst_ros.model.features import FeatureConfig, compute_features
from sst_ros.train.augment import apply_symmetry, array_symmetries

FS = 16000  # _model_synth's rate


@pytest.fixture
def trainer_parts(tmp_path: Path, rng: np.random.Generator) -> dict:
    parts = tiny_adaptation_inputs(tmp_path, rng)
    array = parts["array"]
    torch.manual_seed(0)  # the same weights as the saved source model
    clips = ClipReader([parts["src"]], array, FS, 0.1)
    target = load_target_set([parts["tgt"]], array, FS)
    return {"model": CRNN(parts["model_cfg"]), "array": array, "fc": FeatureConfig(), "clips": clips, "target": target}


def _trainer(parts: dict, **cfg) -> IwanTrainer:
    pool = SourcePool(parts["clips"])
    config = AdaptConfig(steps=4, eval_every=2, batch_size=2, n_val_clips=2, n_target_val_clips=2,
                         crop_min_s=1.0, crop_max_s=1.5, **cfg)  # fmt: skip
    return IwanTrainer(parts["model"], parts["fc"], pool, pool, parts["target"], config, array=parts["array"])


@pytest.mark.parametrize("form", ["paper", "current"])
def test_reversed_gradient_reaches_fe_t_through_target_clips_only(trainer_parts: dict, form: str) -> None:
    tr = _trainer(trainer_parts, variant="dann", form=form)
    src, tgt, _ = tr._batches(0)
    h_s, h_t = (h.detach().requires_grad_(True) for h in tr._joint_extract(tr.model_t, src, tgt))
    with torch.no_grad():
        g_s = tr.fe_s.extract(src.x)
    tr.step = tr.cfg.steps  # full reversal coefficient
    l_adv, _ = tr._adversarial(h_s, g_s, h_t, src, tgt, torch.ones(src.size))
    l_adv.backward()
    assert h_t.grad is not None and h_t.grad.abs().sum() > 0
    if form == "paper":
        assert h_s.grad is None  # the synthetic branch of FE_t gets nothing from D0
    else:
        assert h_s.grad is not None and h_s.grad.abs().sum() > 0
    # reversed: stepping FE_t's target features down its gradient raises D0's loss
    with torch.no_grad():
        moved, _ = tr._adversarial(h_s, g_s, h_t - 1e-2 * h_t.grad / h_t.grad.norm(), src, tgt, torch.ones(src.size))
    assert float(moved) > float(l_adv.detach())


@pytest.mark.parametrize("weight_input", ["embedding", "direction"])
def test_a_step_changes_fe_t_and_discriminators_never_fe_s(trainer_parts: dict, weight_input: str) -> None:
    tr = _trainer(trainer_parts, variant="iwan", form="paper", target_stats=False, weight_input=weight_input)
    assert tr.disc.in_dim == (3 if weight_input == "direction" else tr.fe_s.cfg.gru_hidden)
    before_s = {k: v.clone() for k, v in tr.fe_s.state_dict().items()}
    before_t = [p.detach().clone() for p in tr.model_t.parameters()]
    before_d = [p.detach().clone() for p in tr.disc.parameters()]
    before_d0 = [p.detach().clone() for p in tr.disc0.parameters()]
    rec = tr.train_step()
    assert all(torch.equal(before_s[k], v) for k, v in tr.fe_s.state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(before_t, tr.model_t.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(before_d, tr.disc.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(before_d0, tr.disc0.parameters(), strict=True))
    assert np.isfinite(rec["disc"]) and 0.0 < rec["d_prob_mean"] < 1.0
    w = tr.validation_weights()
    assert w.shape == (tr.val_batch.size,) and bool(torch.isfinite(w).all())


def test_target_statistics_equal_the_mean_and_variance_of_target_activations(trainer_parts: dict, rng) -> None:
    model, fc = trainer_parts["model"].eval(), trainer_parts["fc"]
    crops = target_stat_crops(trainer_parts["target"], fc, model.cfg.frames_per_output, rng, n_crops=6, crop_s=1.0)
    assert len({c.shape[0] for c in crops}) == 1
    old = [m.running_mean.clone() for m in batchnorm_layers(model)]
    reestimate_batchnorm(model, crops, fc)
    seen: dict[int, list[torch.Tensor]] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, i=i: seen.setdefault(i, []).append(inp[0]))
             for i, m in enumerate(batchnorm_layers(model))]  # fmt: skip
    with torch.no_grad():
        model.extract(make_batch(crops, fc, model.cfg.frames_per_output).x)  # eval mode: stats not updated
    for h in hooks:
        h.remove()
    for i, m in enumerate(batchnorm_layers(model)):
        x = seen[i][0].transpose(0, 1).reshape(m.num_features, -1)
        torch.testing.assert_close(m.running_mean, x.mean(1), atol=1e-4, rtol=1e-3)
        torch.testing.assert_close(m.running_var, x.var(1, unbiased=True), atol=1e-4, rtol=1e-3)
        assert not torch.allclose(m.running_mean, old[i])
    assert not model.training


def test_pool_normalised_weights_keep_an_unlike_batch_small() -> None:
    running = RunningMean(momentum=0.5)
    for _ in range(10):
        running.update(torch.tensor([0.1, 0.9, 0.5, 0.5]))  # pool mean 0.5
    unlike = torch.tensor([0.1, 0.1, 0.2, 0.1])  # a batch with no clip like the target
    pooled = normalise_weights(unlike, running.mean, max_weight=10.0)
    assert float(pooled.mean()) < 0.5
    assert float(normalise_weights(unlike, None, max_weight=10.0).mean()) == pytest.approx(1.0)


def test_srp_features_of_symmetric_audio_are_a_row_permutation(rng: np.random.Generator) -> None:
    loaded = load_checkpoint(None)
    audio = (0.1 * rng.standard_normal((16000, loaded.array.n_mics))).astype(np.float32)
    audio[:, 1] += 0.1 * np.roll(audio[:, 0], 3)  # some directional structure
    x = torch.from_numpy(compute_features(audio, loaded.feature_cfg))
    for sym in array_symmetries(loaded.array)[1:]:
        src = srp_azimuth_map(loaded.feature_cfg, sym)
        assert src is not None
        y = torch.from_numpy(compute_features(apply_symmetry(audio, np.zeros(0), sym)[0], loaded.feature_cfg))
        nb = loaded.feature_cfg.srp_bands
        torch.testing.assert_close(y[:nb], x[:nb][:, torch.from_numpy(src)], atol=1e-5, rtol=0)
        assert not torch.allclose(y[:nb], x[:nb], atol=1e-3)  # the permutation is not the identity


def _rec(step: int, eq: float, act: float = 0.5, ent: float = 0.8, loss: float = 0.4, noise: float = 0.0) -> dict:
    """A criteria record whose 20 crops have equivariance errors ``eq`` (+- ``noise``, alternating)."""
    per_crop = [eq + (noise if i % 4 < 2 else -noise) for i in range(20)]
    return {"step": step, "equivariance_deg": eq, "equivariance_check_deg": eq, "equivariance_per_crop": per_crop,
            "activity_rate": act, "azimuth_entropy": ent, "source_val_loss": loss}  # fmt: skip


def test_guard_rules() -> None:
    u = _rec(0, 10.0)
    assert guard_decision(_rec(40, 8.0), u, 0.05).ship_adapted
    small = guard_decision(_rec(40, 9.8), u, 0.05)
    assert not small.ship_adapted and "below the required" in small.reasons[0]
    # a 20 % lower mean that single crops contradict (+-5 deg around it) is within the noise
    noisy = guard_decision(_rec(40, 8.0, noise=5.0), u, 0.05)
    assert not noisy.ship_adapted and "within the crops' noise" in noisy.reasons[0]
    silenced = guard_decision(_rec(40, 2.0, act=0.05), u, 0.05)
    assert not silenced.ship_adapted and "activity rate" in silenced.reasons[0]
    assert collapse_reasons(_rec(40, 2.0, ent=0.3), u)[0].startswith("predicted directions collapsed")
    assert "task forgotten" in collapse_reasons(_rec(40, 2.0, loss=0.9), u)[0]
    assert not guard_decision(_rec(40, float("nan")), u, 0.05).ship_adapted


def test_spectrum_bin_map_matches_the_symmetric_audio_on_the_shipped_model() -> None:
    """The bin map of each symmetry of the shipped square array turns the spectrum of a talker
    into the spectrum of the same talker heard on channel-permuted audio: the equivariance loss
    with the right map is the lowest of the maps of all the array's symmetries (the ranking
    tests the map itself) and far below the loss with no map, and a rotation by a fraction of a
    bin is refused. The margin to "no map" is the shipped model's learned equivariance
    (symmetry augmentation), not exact: a smaller network trained on 2026-12-03 reached only
    0.72x for one reflection, so a new default model may need it revisited."""
    from sst_ros.adapt.consistency import equivariance_loss, spectrum_bin_map
    from sst_ros.sim.plane_wave import plane_wave, speech_signal
    from sst_ros.train.augment import Symmetry

    loaded = load_checkpoint(None)
    model, grid, fpo = loaded.model.eval(), loaded.model.cfg.grid, loaded.model_cfg.frames_per_output
    assert spectrum_bin_map(grid, Symmetry(tuple(range(loaded.array.n_mics)), 1, grid.step_deg / 3)) is None
    rng = np.random.default_rng(5)
    audio = plane_wave(loaded.array, -20.0, 3 * FS, rng, source=speech_signal(3 * FS + 256, rng))
    identity = np.arange(grid.n_bins)
    moving = [s for s in array_symmetries(loaded.array)[1:] if list(s.perm) != sorted(s.perm)]
    assert moving
    for sym in moving:
        src = spectrum_bin_map(grid, sym)
        assert src is not None and sorted(src.tolist()) == identity.tolist()
        with torch.no_grad():
            spec, act = model.head(model.extract(make_batch([audio], loaded.feature_cfg, fpo).x))
            sym_audio = apply_symmetry(audio, np.zeros(0), sym)[0]
            spec_sym, _ = model.head(model.extract(make_batch([sym_audio], loaded.feature_cfg, fpo).x))
        active = act > 0.5
        assert int(active.sum()) >= 10
        right = float(equivariance_loss(spec, spec_sym, src, active))
        none = float(equivariance_loss(spec, spec_sym, identity, active))
        wrong = [
            float(equivariance_loss(spec, spec_sym, other_map, active))
            for other in array_symmetries(loaded.array)
            if other != sym and (other_map := spectrum_bin_map(grid, other)) is not None
        ]
        print(f"{sym}: equivariance loss {right:.4f} with the bin map, {none:.4f} without, {min(wrong):.4f} best other")
        assert right < min(wrong) and right < 0.35 * none, (sym, right, none, wrong)


def test_consistency_terms_reach_fe_t_and_are_off_by_default(trainer_parts: dict) -> None:
    tr = _trainer(trainer_parts, variant="iwan", form="paper")
    assert float(tr._consistency(*_target_features(tr))) == 0.0
    tr = _trainer(trainer_parts, variant="iwan", form="paper", entropy_weight=0.5, equivariance_weight=1.0)
    assert tr._equivariant  # the tiny array's symmetries map the grid
    with torch.no_grad():
        tr.model_t.head_act.bias.fill_(10.0)  # the untrained model calls every frame active
    h_t, tgt, tcrops = _target_features(tr)
    tr.model_t.zero_grad()
    loss = tr._consistency(h_t, tgt, tcrops)
    loss.backward()
    assert float(loss) > 0
    # h_t padded to a longer synthetic batch (the joint extraction) gives the same loss
    padded = torch.cat([h_t, h_t[:, :3]], dim=1)
    assert float(tr._consistency(padded, tgt, tcrops)) == pytest.approx(float(loss), rel=1e-5)
    grads = [p.grad for p in tr.model_t.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    assert np.isfinite(tr.train_step()["consistency"])
    with pytest.raises(Exception, match="consistency weights"):
        AdaptConfig(entropy_weight=-1.0)


def _target_features(tr: IwanTrainer) -> tuple[torch.Tensor, object, list]:
    _, tgt, tcrops = tr._batches(0)
    tr.model_t.train()
    return tr.model_t.extract(tgt.x), tgt, tcrops

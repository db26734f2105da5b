"""Importance-weighted adversarial adaptation (IWAN structure) of a CRNN tracker.

Method: Zhong and Dietzen, "Importance-Weighted Domain Adaptation for Sound Source Tracking"
(DCASE 2025, arXiv 2509.13215), after IWAN (Zhang et al., CVPR 2018) and DANN (Ganin and
Lempitsky, ICML 2015). Networks:

- ``FE_s``: frozen copy of the source model's feature extractor (CNN + GRU).
- ``FE_t``: target feature extractor, initialised from ``FE_s``, trained; together with the
  task head it is the adapted model (``model_t``).
- head: trained on synthetic labels only (keeps the task).
- ``D``: weighting discriminator on *detached* features; its P(target | f) of a synthetic
  clip's ``FE_s`` features gives the clip's importance weight (grows with similarity to the
  target; :mod:`sst_ros.adapt.weights`).
- ``D0``: adversarial discriminator; synthetic clips enter its BCE with their importance
  weights, target clips with weight 1.

Where the discriminators look (``AdaptConfig.form``):

- ``"paper"`` (IWAN and the method's reference code): ``D`` on ``FE_s(x_s)`` against
  ``FE_t(x_t)``, so as ``FE_t`` aligns what can be aligned, ``D`` is left with the difference in
  directional coverage; ``D0`` on the weighted, frozen ``FE_s(x_s)`` against gradient-reversed
  ``FE_t(x_t)``: the reversed gradient reaches ``FE_t`` through the target clips only, and the
  weights decide where the target features are pulled.
- ``"current"`` (this package's earlier form, kept for comparison): ``D`` on ``FE_s`` of both
  domains; ``D0`` on gradient-reversed ``FE_t`` features of both domains.

Each step: ``L = L_task + adv_weight * L_adv + L_D + L_cons`` (``L_D`` reaches ``D`` only,
because its inputs are detached; gradient reversal makes ``FE_t`` maximise ``L_adv`` while
``D0`` minimises it; ``L_cons``, the optional entropy and symmetry-equivariance terms on target
clips, :mod:`sst_ros.adapt.consistency`, is 0 by default). ``D`` reads the embeddings or, with
``weight_input="direction"``, the per-frame decoded direction and activity.
Domain label convention: target = 1, synthetic = 0. Variants on one code path:

- ``target_stats``: the statistics stage alone (below), no step.
- ``source_only``: no adversarial term (``L_adv`` = 0), same steps and data (a control for the
  extra training on synthetic data); ``D`` is still trained for the weights.
- ``dann``: all synthetic weights 1.
- ``iwan``: importance weights from ``D``.

Before the first step, ``target_stats`` re-estimates ``FE_t``'s BatchNorm statistics on
unpadded target crops (:mod:`sst_ros.adapt.target_stats`); during the steps BatchNorm layers
use their running statistics (eval mode): padded batches must not leak padding into batch
statistics. Learning rates warm up and decay (:func:`sst_ros.train.config.warmup_cosine_lr`),
gradients are clipped, and synthetic crops get the array-symmetry and gain augmentation of
source training.

Before anything changes, the unadapted model's label-free criteria are recorded
(``unadapted``). Snapshots every ``eval_every`` steps (step 0 = after the statistics stage)
are chosen from without target labels (:mod:`sst_ros.adapt.selection`), and the do-no-harm
guard (:mod:`sst_ros.adapt.guard`) decides between the chosen snapshot and the unadapted
model. Optional oracle clips (labelled target data) are only evaluated and reported. The run
folder keeps a resumable state (:mod:`sst_ros.adapt.state`) and ``log.jsonl``.

A NaN or infinite loss or gradient norm stops the run with a
:class:`~sst_ros.train.nonfinite.NonFiniteLossError` before the optimiser step: no adapted
model is returned or written, and the run folder keeps its last saved state.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch import nn

from sst_ros.adapt.batches import PaddedBatch, SourcePool, labelled_batch, make_batch, pad_time, valid_frames
from sst_ros.adapt.config import AdaptConfig
from sst_ros.adapt.consistency import active_entropy, equivariance_loss, spectrum_bin_map
from sst_ros.adapt.discriminator import (
    DIRECTION_DIM,
    SequenceDiscriminator,
    direction_features,
    discriminator_loss,
)
from sst_ros.adapt.evaluation import evaluate_oracle, task_loss_per_clip
from sst_ros.adapt.grl import GradientReverseLayer, dann_coefficient
from sst_ros.adapt.guard import GuardDecision, guard_decision
from sst_ros.adapt.losses import domain_accuracy, domain_adversarial_loss
from sst_ros.adapt.selection import AdaptResult, score_dev, score_iwcv, select_step
from sst_ros.adapt.state import check_resumable, load_state, save_state
from sst_ros.adapt.target_criteria import (
    active_frames,
    make_probe,
    moving_symmetries,
    symmetric_batch,
    target_criteria,
)
from sst_ros.adapt.target_stats import batchnorm_layers, reestimate_batchnorm, target_stat_crops
from sst_ros.adapt.weights import RunningMean, importance_weights, normalise_weights, raw_weights, weight_stats
from sst_ros.data.clip_reader import ClipReader
from sst_ros.data.clipset import LabelledAudio
from sst_ros.data.target_set import TargetSet
from sst_ros.errors import DataError
from sst_ros.geometry import MicArray
from sst_ros.model.crnn import CRNN
from sst_ros.model.device import resolve_device
from sst_ros.model.features import FeatureConfig
from sst_ros.train.augment import Symmetry, array_symmetries, random_augment
from sst_ros.train.config import TrainConfig, warmup_cosine_lr
from sst_ros.train.nonfinite import check_finite

__all__ = ["IwanTrainer"]

_LOG = logging.getLogger(__name__)

# Seeds of the fixed held-out crops and of each step's torch state (offsets from cfg.seed).
_VAL_SEED_OFFSET = 10_000
_TARGET_VAL_SEED_OFFSET = 20_000
_STEP_SEED_STRIDE = 1_000_003
_STATS_SEED_OFFSET = 30_000
_EQUIVARIANCE_STREAM = 40_000  # random stream of the equivariance term's symmetry choice
_ACTIVE = 0.5  # activity threshold of the consistency terms' frames, as the tracker's default
_GAIN_DB_RANGE = TrainConfig.gain_db_range  # source training's default gain augmentation, dB


def _freeze_bn(model: nn.Module) -> None:
    for m in batchnorm_layers(model):
        m.eval()


class IwanTrainer:
    """Runs one adaptation (see the module docstring).

    Args:
        model: the source CRNN (not modified; copied into ``FE_s`` and ``model_t``).
        feature_cfg: the model's feature parameters.
        source: labelled synthetic clips for the task loss.
        source_val: held-out labelled synthetic clips for label-free selection.
        target: unlabelled target recordings.
        cfg: hyper-parameters.
        run_dir: folder for the resumable state and logs, or None (no state written).
        oracle: optional labelled target clips, evaluated at each snapshot for reporting only.
        array: the model's microphone geometry; its symmetries drive the source augmentation
            and the target equivariance criterion (None: neither; the guard then keeps the
            unadapted model, having nothing to measure).
        device: where the networks run (``auto``, ``cpu``, ``cuda``, ``cuda:N``:
            :func:`~sst_ros.model.device.resolve_device`); features are computed on the CPU and
            moved there, the adapted model comes back to the CPU in :meth:`run`.
    Raises:
        ConfigError: a device that is not there. DataError: target and model rates differ.
    """

    def __init__(
        self,
        model: CRNN,
        feature_cfg: FeatureConfig,
        source: SourcePool,
        source_val: SourcePool,
        target: TargetSet,
        cfg: AdaptConfig,
        run_dir: Path | None = None,
        oracle: ClipReader | None = None,
        array: MicArray | None = None,
        device: str = "cpu",
    ) -> None:
        if target.sample_rate_hz != feature_cfg.sample_rate_hz:
            raise DataError(
                f"target set at {target.sample_rate_hz} Hz, model features at {feature_cfg.sample_rate_hz} Hz"
            )
        self.cfg = cfg
        self.device = resolve_device(device)
        # Unset task-loss fields take source training's defaults; adapt_checkpoint sets them from
        # the checkpoint's training config first (AdaptConfig.with_training_loss).
        self.task_loss = cfg.task_loss()
        self.feature_cfg = feature_cfg
        self.source, self.source_val, self.target = source, source_val, target
        self.oracle = oracle if oracle is not None and len(oracle) > 0 else None
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.fpo = int(model.cfg.frames_per_output)
        self.frame_samples = int(feature_cfg.hop) * self.fpo
        self.frame_s = self.frame_samples / feature_cfg.sample_rate_hz
        self.min_frames = max(1, int(round(cfg.crop_min_s / self.frame_s)))
        self.max_frames = max(self.min_frames, int(round(cfg.crop_max_s / self.frame_s)))

        self.symmetries: list[Symmetry] = array_symmetries(array) if array is not None else []
        # symmetries usable by the equivariance term: they move a channel and map the grid's bins
        self._equivariant: list[tuple[Symmetry, np.ndarray]] = [
            (sym, src) for sym in moving_symmetries(self.symmetries[1:])
            if (src := spectrum_bin_map(model.cfg.grid, sym)) is not None
        ]  # fmt: skip
        torch.manual_seed(cfg.seed)
        self.fe_s = copy.deepcopy(model).to(self.device).eval()
        for p in self.fe_s.parameters():
            p.requires_grad_(False)
        self.model_t = copy.deepcopy(model).to(self.device)
        for p in self.model_t.parameters():
            p.requires_grad_(True)
        h_dim = int(model.cfg.gru_hidden)
        d_dim = h_dim if cfg.weight_input == "embedding" else DIRECTION_DIM
        self._bin_centers_rad = torch.from_numpy(np.radians(model.bin_centers_deg()).astype(np.float32))
        self.disc = SequenceDiscriminator(d_dim, cfg.disc_gru_hidden, cfg.disc_mlp_hidden).to(self.device)
        self.disc0 = SequenceDiscriminator(h_dim, cfg.disc_gru_hidden, cfg.disc_mlp_hidden).to(self.device)
        self.grl = GradientReverseLayer(0.0)
        self.disc_params = list(self.disc.parameters()) + list(self.disc0.parameters())
        self.opt = torch.optim.Adam(
            [{"params": self.model_t.parameters(), "lr": cfg.lr}, {"params": self.disc_params, "lr": cfg.lr_disc}]
        )
        self.weight_mean = RunningMean()
        self.unadapted: dict[str, Any] | None = None
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}
        # fixed held-out sets (deterministic per seed)
        val = source_val.fixed_crops(_VAL_SEED_OFFSET + cfg.seed, cfg.n_val_clips, self.min_frames, self.max_frames)
        self.val_batch = labelled_batch(val, feature_cfg, self.fpo).to(self.device)
        tcrops = target.sample_crops(
            np.random.default_rng(_TARGET_VAL_SEED_OFFSET + cfg.seed), cfg.n_target_val_clips, cfg.crop_min_s,
            cfg.crop_max_s,
        )  # fmt: skip
        identity_only = [Symmetry(tuple(range(model.cfg.n_mics)), 1, 0.0)]
        self.probe = make_probe(self._trim(tcrops), self.symmetries or identity_only, feature_cfg, self.fpo)
        self.probe.batches = [b.to(self.device) for b in self.probe.batches]
        self.probe.mask = active_frames(self.fe_s, self.probe)  # every snapshot is measured on these frames
        self.schedule_steps = cfg.steps  # schedules keep the length a run started with (resume may add steps)

    # ---- data ----------------------------------------------------------------------------
    def _trim(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        """Cut target crops to whole output frames (at least one)."""
        out = []
        for c in crops:
            n = (c.shape[0] // self.frame_samples) * self.frame_samples
            if n == 0:
                raise DataError(
                    f"a target recording is shorter than one output frame ({self.frame_s:.2f} s); record longer audio"
                )
            out.append(c[:n])
        return out

    def _batches(self, step: int) -> tuple[PaddedBatch, PaddedBatch, list[np.ndarray]]:
        """The step's synthetic and target batches, and the target crops (for the symmetric batch)."""
        rng = np.random.default_rng([self.cfg.seed, step])
        crops = self.source.sample(rng, self.cfg.batch_size, self.min_frames, self.max_frames)
        if self.cfg.augment:
            crops = [self._augment(c, rng) for c in crops]
        src = labelled_batch(crops, self.feature_cfg, self.fpo).to(self.device)
        cfg = self.cfg
        tcrops = self._trim(self.target.sample_crops(rng, cfg.batch_size, cfg.crop_min_s, cfg.crop_max_s))
        tgt = make_batch(tcrops, self.feature_cfg, self.fpo).to(self.device)
        return src, tgt, tcrops

    def _augment(self, crop: LabelledAudio, rng: np.random.Generator) -> LabelledAudio:
        """A random array symmetry and gain, as in source training (labels mapped with it)."""
        audio, labels = random_augment(crop.audio, crop.labels, self.symmetries, _GAIN_DB_RANGE, rng)
        return crop._replace(audio=audio, labels=labels)

    def _joint_extract(self, net: CRNN, a: PaddedBatch, b: PaddedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass over both batches (padded to a common length), split again."""
        t = max(a.x.shape[-1], b.x.shape[-1])
        h = net.extract(torch.cat([pad_time(a.x, t), pad_time(b.x, t)]))
        return h[: a.size], h[a.size :]

    # ---- training ------------------------------------------------------------------------
    def grl_coefficient(self, step: int) -> float:
        """Gradient-reversal coefficient at ``step`` (0 for source_only)."""
        if self.cfg.variant == "source_only":
            return 0.0
        n = self.cfg.grl_steps or max(self.schedule_steps, 1)
        return dann_coefficient(step, n, self.cfg.grl_hi, self.cfg.grl_lo, self.cfg.grl_alpha)

    def _set_learning_rates(self) -> None:
        cfg = self.cfg
        for group, base in zip(self.opt.param_groups, (cfg.lr, cfg.lr_disc), strict=True):
            group["lr"] = warmup_cosine_lr(
                self.step, self.schedule_steps, base, cfg.lr_final_fraction, cfg.warmup_steps
            )

    def _adversarial(
        self,
        h_s: torch.Tensor,
        g_s: torch.Tensor,
        h_t: torch.Tensor,
        src: PaddedBatch,
        tgt: PaddedBatch,
        w: torch.Tensor,
    ) -> tuple[torch.Tensor, float | None]:
        """``L_adv`` of ``D0`` and its domain accuracy (see the module docstring for the forms)."""
        if self.cfg.variant == "source_only":
            return torch.zeros((), device=self.device), None
        coeff = self.grl_coefficient(self.step)
        # paper: frozen FE_s(x_s) (no gradient to any extractor) against reversed FE_t(x_t)
        feat_s = g_s if self.cfg.form == "paper" else self.grl(h_s, coeff)
        logit0_s = self.disc0(feat_s, src.lengths)
        logit0_t = self.disc0(self.grl(h_t, coeff), tgt.lengths)
        return domain_adversarial_loss(logit0_s, logit0_t, w), domain_accuracy(logit0_s.detach(), logit0_t.detach())

    def _consistency(self, h_t: torch.Tensor, tgt: PaddedBatch, tcrops: list[np.ndarray]) -> torch.Tensor:
        """Weighted entropy and symmetry-equivariance terms of ``FE_t`` on the target batch
        (:mod:`sst_ros.adapt.consistency`); 0 when both weights are 0."""
        cfg = self.cfg
        if cfg.entropy_weight == 0 and cfg.equivariance_weight == 0:
            return torch.zeros((), device=self.device)
        spectrum, activity = self.model_t.head(h_t)
        valid = valid_frames(tgt.lengths, spectrum.shape[1], spectrum.device)
        active = (activity.detach() > _ACTIVE) & valid
        loss = cfg.entropy_weight * active_entropy(spectrum, active)
        if cfg.equivariance_weight > 0 and self._equivariant:
            rng = np.random.default_rng([cfg.seed, self.step, _EQUIVARIANCE_STREAM])
            sym, src = self._equivariant[int(rng.integers(len(self._equivariant)))]
            sym_batch = symmetric_batch(tgt, tcrops, sym, self.feature_cfg, self.fpo).to(self.device)
            spectrum_sym, _ = self.model_t.head(self.model_t.extract(sym_batch.x))
            t = spectrum_sym.shape[1]  # h_t may be padded further (to the synthetic batch): frames beyond are padding
            eq = equivariance_loss(spectrum[:, :t], spectrum_sym, src, active[:, :t])
            loss = loss + cfg.equivariance_weight * eq
        return loss

    def _d_input(self, net: CRNN, h: torch.Tensor) -> torch.Tensor:
        """What the weighting discriminator ``D`` reads of ``net``'s embeddings ``h`` (B, T, H):
        ``h`` itself, or the (B, T, 3) :func:`direction_features` of ``net``'s head (``weight_input``)."""
        if self.cfg.weight_input == "embedding":
            return h
        spectrum, activity = net.head(h)
        return direction_features(spectrum, activity, self._bin_centers_rad)

    @torch.no_grad()
    def source_target_probability(self, batch: PaddedBatch) -> torch.Tensor:
        """``D``'s P(target | clip) of synthetic clips, (B,), read through the frozen ``FE_s``."""
        self.disc.eval()
        return self.disc.probability(self._d_input(self.fe_s, self.fe_s.extract(batch.x)), batch.lengths)

    def _weights(self, d_prob: torch.Tensor) -> torch.Tensor:
        """Importance weights of the synthetic batch (all 1 unless ``iwan``)."""
        cfg = self.cfg
        raw = raw_weights(d_prob, cfg.weight_mode if cfg.variant == "iwan" else "uniform")
        mean = self.weight_mean.update(raw) if cfg.weight_norm == "pool" else None
        return normalise_weights(raw, mean, cfg.max_weight)

    def train_step(self) -> dict[str, Any]:
        """One optimisation step; returns its losses and weight statistics."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed * _STEP_SEED_STRIDE + self.step)
        src, tgt, tcrops = self._batches(self.step)
        self.model_t.train()
        _freeze_bn(self.model_t)
        self.disc.train()
        self.disc0.train()
        self._set_learning_rates()

        h_s, h_t = self._joint_extract(self.model_t, src, tgt)
        l_task = task_loss_per_clip(self.model_t, h_s, src, self.task_loss).mean()
        with torch.no_grad():
            if cfg.form == "paper":
                g_s = self.fe_s.extract(src.x)
                d_in_t = self._d_input(self.model_t, h_t.detach())
            else:
                g_s, g_t = self._joint_extract(self.fe_s, src, tgt)
                d_in_t = self._d_input(self.fe_s, g_t)
            d_in_s = self._d_input(self.fe_s, g_s)
        l_d, logit_ds = discriminator_loss(self.disc, d_in_s, src.lengths, d_in_t, tgt.lengths)
        d_prob = torch.sigmoid(logit_ds.detach())
        w = self._weights(d_prob)
        l_adv, d0_acc = self._adversarial(h_s, g_s, h_t, src, tgt, w)
        l_cons = self._consistency(h_t, tgt, tcrops)
        total = l_task + cfg.adv_weight * l_adv + l_d + l_cons
        where = f"adaptation step {self.step + 1}"
        parts = {"task": l_task, "adv": l_adv, "disc": l_d, "consistency": l_cons}
        check_finite(total, "loss", where, self._nonfinite_fix(), parts)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        if cfg.grad_clip_norm is not None:
            norm_t = torch.nn.utils.clip_grad_norm_(self.model_t.parameters(), cfg.grad_clip_norm)
            norm_d = torch.nn.utils.clip_grad_norm_(self.disc_params, cfg.grad_clip_norm)
            norms = {"model": norm_t, "discriminators": norm_d}
            check_finite(norm_t + norm_d, "gradient norm", where, self._nonfinite_fix(), norms)
        self.opt.step()
        self.step += 1
        ws = weight_stats(w)
        return {
            "step": self.step,
            "loss": float(total.detach()),
            "task": float(l_task.detach()),
            "adv": float(l_adv.detach()),
            "disc": float(l_d.detach()),
            "consistency": float(l_cons.detach()),
            "grl_coeff": self.grl_coefficient(self.step - 1),
            "d0_acc": d0_acc,
            "d_prob_mean": float(d_prob.mean()),
            "lr": self.opt.param_groups[0]["lr"],
            **{f"w_{k}": v for k, v in ws.items()},
        }

    def _nonfinite_fix(self) -> str:
        """What to do after a non-finite loss, and what the run folder still holds."""
        if self.run_dir is None:
            kept = "no run folder is kept"
        elif self.history:
            last = self.history[-1]["step"]
            kept = f"{self.run_dir} keeps the state of step {last} (resume with --resume once fixed)"
        else:
            kept = f"{self.run_dir} holds no state yet"
        return (
            "check the target recordings and the synthetic clips for NaN or infinite samples, or lower the learning "
            f"rates (--lr) if the run diverged; no adapted model was written, {kept}"
        )

    # ---- evaluation / selection ------------------------------------------------------------
    @torch.no_grad()
    def measure(self, model: CRNN) -> dict[str, Any]:
        """Label-free criteria of ``model``: its loss per synthetic validation crop and the target
        criteria (:mod:`sst_ros.adapt.target_criteria`); oracle metrics too when oracle clips exist."""
        model.eval()
        vb = self.val_batch
        val_losses = task_loss_per_clip(model, model.extract(vb.x), vb, self.task_loss)
        rec: dict[str, Any] = {
            "val_losses": [float(v) for v in val_losses],
            "source_val_loss": float(val_losses.mean()),
            **target_criteria(model, self.probe),
        }
        if self.oracle is not None:
            o = evaluate_oracle(model, self.oracle, self.feature_cfg, self.device)
            rec.update({f"oracle_{k}": v for k, v in o.items()})
        return rec

    def evaluate(self) -> dict[str, Any]:
        """Snapshot ``model_t`` and record its criteria."""
        rec = {"step": self.step, **self.measure(self.model_t)}
        self.snapshots[self.step] = {k: v.detach().clone() for k, v in self.model_t.state_dict().items()}
        self.history.append(rec)
        return rec

    def prepare(self) -> None:
        """Record the unadapted model's criteria, then run the statistics stage (once per run)."""
        self.unadapted = {"step": "unadapted", **self.measure(self.fe_s)}
        if self.cfg.target_stats or self.cfg.variant == "target_stats":
            rng = np.random.default_rng(_STATS_SEED_OFFSET + self.cfg.seed)
            crops = target_stat_crops(self.target, self.feature_cfg, self.fpo, rng, crop_s=self.cfg.crop_max_s)
            reestimate_batchnorm(self.model_t, crops, self.feature_cfg, self.device)
            _LOG.info("target statistics: BatchNorm re-estimated on %d target crops", len(crops))

    @torch.no_grad()
    def validation_weights(self) -> torch.Tensor:
        """Importance weights of the validation crops from the current ``D`` (mean 1)."""
        d = self.source_target_probability(self.val_batch)
        return importance_weights(d, self.cfg.weight_mode, max_weight=self.cfg.max_weight)

    def select(self) -> int:
        """Fill the criteria into the history and return the selected step (label-free)."""
        w = self.validation_weights().cpu().numpy()
        score_iwcv(self.history, w)
        score_dev(self.history, w)
        return select_step(self.history, self.cfg.selection, self.reference())

    def reference(self) -> dict[str, Any]:
        """What snapshots are compared with: the unadapted model's target criteria, and the
        synthetic validation loss of step 0 (after the statistics stage, whose target BatchNorm
        statistics already change that loss; the steps must not raise it further)."""
        if self.unadapted is None:
            raise DataError("no unadapted record: run prepare() first")
        return {**self.unadapted, "source_val_loss": self.history[0]["source_val_loss"]}

    def decide(self, selected: int) -> GuardDecision:
        """The guard's decision for the ``selected`` step (ships it unconditionally when the guard is off)."""
        rec = next(h for h in self.history if h["step"] == selected)
        decision = guard_decision(rec, self.reference(), self.cfg.guard_min_gain)
        if not self.cfg.guard and not decision.ship_adapted:
            decision.reasons.insert(0, "guard off: shipped regardless of")
            decision.ship_adapted = True
        return decision

    # ---- state -----------------------------------------------------------------------------
    def _target_hashes(self) -> list[str]:
        return sorted(r.sha256 for r in self.target.recordings)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume."""
        return {
            "cfg": self.cfg.to_dict(),
            "step": self.step,
            "model_t": self.model_t.state_dict(),
            "disc": self.disc.state_dict(),
            "disc0": self.disc0.state_dict(),
            "opt": self.opt.state_dict(),
            "history": self.history,
            "log": self.log,
            "snapshots": self.snapshots,
            "unadapted": self.unadapted,
            "weight_mean": self.weight_mean.state_dict(),
            "schedule_steps": self.schedule_steps,
            "target_sha256": self._target_hashes(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`; the configuration must be the same except ``steps``."""
        check_resumable(state, self.cfg.to_dict(), self._target_hashes())
        self.step = int(state["step"])
        self.model_t.load_state_dict(state["model_t"])
        self.disc.load_state_dict(state["disc"])
        self.disc0.load_state_dict(state["disc0"])
        self.opt.load_state_dict(state["opt"])
        self.history = list(state["history"])
        self.log = list(state["log"])
        self.snapshots = dict(state["snapshots"])
        self.unadapted = state.get("unadapted")
        if "weight_mean" in state:
            self.weight_mean.load_state_dict(state["weight_mean"])
        self.schedule_steps = int(state.get("schedule_steps", self.schedule_steps))

    def _save_state(self) -> None:
        if self.run_dir is not None:
            save_state(self.run_dir, self.state_dict())

    def try_resume(self) -> bool:
        """Load ``run_dir/state.pt`` if present; True when resumed."""
        state = load_state(self.run_dir) if self.run_dir is not None else None
        if state is None:
            return False
        self.load_state_dict(state)
        _LOG.info("resumed adaptation at step %d from %s", self.step, self.run_dir)
        return True

    # ---- driver ----------------------------------------------------------------------------
    def _log_step(
        self, rec: dict[str, Any], t0: float, log_file: IO[str] | None, on_log: Callable[[dict[str, Any]], None] | None
    ) -> None:
        rec["elapsed_s"] = round(time.monotonic() - t0, 2)
        self.log.append(rec)
        _LOG.info(
            "step %d task %.4f adv %.4f disc %.4f grl %.3f w mean %.2f std %.2f max %.2f ess %.2f",
            rec["step"], rec["task"], rec["adv"], rec["disc"], rec["grl_coeff"],
            rec["w_mean"], rec["w_std"], rec["w_max"], rec["w_ess_frac"],
        )  # fmt: skip
        if log_file is not None:
            log_file.write(json.dumps(rec) + "\n")
            log_file.flush()
        if on_log is not None:
            on_log(rec)

    def _train(self, bar: Any, log_every: int, on_log: Callable[[dict[str, Any]], None] | None) -> None:
        """Steps up to ``cfg.steps``: logging every ``log_every``, evaluating and saving every ``eval_every``."""
        cfg = self.cfg
        t0 = time.monotonic()
        log_file = open(self.run_dir / "log.jsonl", "a") if self.run_dir is not None else None  # noqa: SIM115
        try:
            while cfg.trains and self.step < cfg.steps:
                rec = self.train_step()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(task=f"{rec['task']:.4f}", adv=f"{rec['adv']:.3f}", w_max=f"{rec['w_max']:.2f}")
                if self.step % log_every == 0 or self.step == cfg.steps:
                    self._log_step(rec, t0, log_file, on_log)
                if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                    self.evaluate()
                    self._save_state()
        finally:
            if log_file is not None:
                log_file.close()

    def run(
        self, progress: bool = False, log_every: int = 10, on_log: Callable[[dict[str, Any]], None] | None = None
    ) -> AdaptResult:
        """Train to ``cfg.steps`` (continuing after a resume), select, and return the result."""
        if not self.history:
            self.prepare()
            self.evaluate()
            self._save_state()
        bar = None
        if progress and self.cfg.trains:
            from tqdm import tqdm

            bar = tqdm(total=self.cfg.steps, initial=self.step, desc=f"adapt[{self.cfg.variant}]", unit="step")
        try:
            self._train(bar, log_every, on_log)
        finally:
            if bar is not None:
                bar.close()
        if self.history[-1]["step"] != self.step:
            self.evaluate()
        chosen = self.select()
        decision = self.decide(chosen)
        model = copy.deepcopy(self.model_t).cpu()
        model.load_state_dict(self.snapshots[chosen] if decision.ship_adapted else self.fe_s.state_dict())
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.disc.eval()
        return AdaptResult(model, chosen, self.history, self.disc, self.fe_s, self.log, decision, self.unadapted)

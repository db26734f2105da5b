"""Importance-weighted adversarial adaptation (IWAN structure) of a CRNN tracker.

Method: Zhong and Dietzen, "Importance-Weighted Domain Adaptation for Sound Source Tracking"
(DCASE 2025, arXiv 2509.13215), after IWAN (Zhang et al., CVPR 2018) and DANN (Ganin and
Lempitsky, ICML 2015). Networks:

- ``FE_s``: frozen copy of the source model's feature extractor (CNN + GRU).
- ``FE_t``: target feature extractor, initialised from ``FE_s``, trained; together with the
  task head it is the adapted model (``model_t``).
- head: trained on synthetic labels only (keeps the task).
- ``D``: weighting discriminator on *detached* ``FE_s`` features of both domains; its
  P(target | f) of a synthetic clip gives the clip's importance weight (grows with similarity
  to the target, mean 1 over the batch; :mod:`sst_ros.adapt.weights`).
- ``D0``: adversarial discriminator on gradient-reversed ``FE_t`` features; synthetic clips
  enter its BCE with their importance weights, target clips with weight 1.

Each step: ``L = L_task + adv_weight * L_adv + L_D`` (``L_D`` reaches ``D`` only, because
its features are detached; gradient reversal makes ``FE_t`` maximise ``L_adv`` while ``D0``
minimises it). Domain label convention: target = 1, synthetic = 0. Variants on one code path:

- ``source_only``: no adversarial term (``L_adv`` = 0), same steps and data (a control for the
  extra training on synthetic data); ``D`` is still trained for the selection criterion.
- ``dann``: all synthetic weights 1.
- ``iwan``: importance weights from ``D``.

BatchNorm layers of ``FE_t`` use their running statistics (eval mode) during adaptation:
padded batches must not leak padding into batch statistics, and the synthetic and target
batches then see the same normalisation.

Label-free model selection: every ``eval_every`` steps (and at step 0, the unadapted model)
``FE_t`` + head are snapshotted and their task loss per clip on held-out synthetic validation
crops is recorded. At the end the final ``D`` gives importance weights for those validation
crops and each snapshot's importance-weighted validation loss (IWCV: Sugiyama et al., JMLR
2007) estimates its target risk; the snapshot with the lowest value is chosen (criterion
``"iwcv"``; ``"source_val"`` = unweighted, ``"last"`` = final step). No target label is used.
Optional oracle clips (labelled target data) are only evaluated and reported.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sst_ros.adapt.batches import Batch, LabelledClip, SourcePool, make_batch, pad_time
from sst_ros.adapt.discriminator import SequenceDiscriminator, discriminator_loss
from sst_ros.adapt.grl import GradientReverseLayer, dann_coefficient
from sst_ros.adapt.losses import domain_accuracy, domain_adversarial_loss
from sst_ros.adapt.target_data import TargetSet
from sst_ros.adapt.weights import importance_weights, weight_stats
from sst_ros.errors import ConfigError, DataError
from sst_ros.train.losses import task_loss_per_frame

__all__ = [
    "SELECTION_CRITERIA",
    "VARIANTS",
    "AdaptConfig",
    "AdaptResult",
    "IwanTrainer",
    "evaluate_oracle",
    "task_loss_per_clip",
]

_LOG = logging.getLogger(__name__)

VARIANTS = ("source_only", "dann", "iwan")
SELECTION_CRITERIA = ("iwcv", "source_val", "last")
STATE_FILE = "state.pt"


@dataclass
class AdaptConfig:
    """Adaptation hyper-parameters (durations in seconds, rates per step).

    Attributes:
        variant: "source_only", "dann" or "iwan".
        steps: optimisation steps.
        batch_size: clips per domain per step.
        crop_min_s, crop_max_s: random crop length range, seconds (variable-length crops).
        lr: learning rate of ``FE_t`` and the head (Adam).
        lr_disc: learning rate of ``D`` and ``D0``.
        grl_hi, grl_lo, grl_alpha: DANN schedule of the gradient-reversal coefficient
            (``hi`` is the ceiling; the reference code's 0.001 is negligible).
        grl_steps: N of the schedule (0 = ``steps``).
        adv_weight: factor of ``L_adv`` in the total loss.
        weight_mode: "ratio" (d/(1-d)) or "prob" (d) for ``iwan``.
        max_weight: cap of the normalised weights (then renormalised), or None.
        disc_gru_hidden, disc_mlp_hidden: discriminator sizes.
        eval_every: steps between snapshots / selection evaluations.
        n_val_clips: held-out synthetic validation crops.
        n_target_val_clips: fixed target crops for the label-free diagnostics.
        selection: "iwcv", "source_val" or "last".
        spectrum_loss: "bce" or "mse" of the spatial spectrum against the Gaussian targets (use the
            source training's loss; the default training uses "bce").
        activity_weight: factor of the activity BCE in the task loss.
        seed: random seed (data order, crops, initialisation of the discriminators).
    """

    variant: str = "iwan"
    steps: int = 200
    batch_size: int = 8
    crop_min_s: float = 1.5
    crop_max_s: float = 3.0
    lr: float = 1e-4
    lr_disc: float = 1e-3
    grl_hi: float = 1.0
    grl_lo: float = 0.0
    grl_alpha: float = 10.0
    grl_steps: int = 0
    adv_weight: float = 1.0
    weight_mode: str = "ratio"
    max_weight: float | None = 10.0
    disc_gru_hidden: int = 256
    disc_mlp_hidden: int = 128
    eval_every: int = 40
    n_val_clips: int = 32
    n_target_val_clips: int = 16
    selection: str = "iwcv"
    spectrum_loss: str = "bce"
    activity_weight: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"unknown adaptation variant '{self.variant}'; choose one of {', '.join(VARIANTS)}")
        if self.selection not in SELECTION_CRITERIA:
            raise ConfigError(f"unknown selection '{self.selection}'; choose one of {', '.join(SELECTION_CRITERIA)}")
        if self.spectrum_loss not in ("bce", "mse"):
            raise ConfigError(f"adapt config: spectrum_loss must be 'bce' or 'mse', got '{self.spectrum_loss}'")
        if self.steps < 0 or self.batch_size < 1 or self.eval_every < 1:
            raise ConfigError("adapt config: steps >= 0, batch_size >= 1 and eval_every >= 1 are required")
        if not 0 < self.crop_min_s <= self.crop_max_s:
            raise ConfigError(
                f"adapt config: need 0 < crop_min_s <= crop_max_s, got {self.crop_min_s}, {self.crop_max_s}"
            )
        if self.grl_hi < self.grl_lo or self.grl_lo < 0:
            raise ConfigError(f"adapt config: need 0 <= grl_lo <= grl_hi, got {self.grl_lo}, {self.grl_hi}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (checkpoint provenance, run folder)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdaptConfig:
        """Inverse of :meth:`to_dict`; unknown keys are a :class:`ConfigError`."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"adapt config: unknown fields {sorted(unknown)}")
        return cls(**data)


@dataclass
class AdaptResult:
    """Outcome of an adaptation run.

    Attributes:
        model: the chosen adapted model (eval mode).
        selected_step: step of the chosen snapshot (0 = the unadapted source model).
        history: one dict per evaluation (step, losses, criteria, oracle metrics if any).
        weight_disc: the trained weighting discriminator ``D`` (eval mode).
        source_extractor: the frozen ``FE_s`` model (eval mode).
        log: one dict per logged training step.
    """

    model: nn.Module
    selected_step: int
    history: list[dict[str, Any]]
    weight_disc: SequenceDiscriminator
    source_extractor: nn.Module
    log: list[dict[str, Any]] = field(default_factory=list)

    def selection_summary(self, criterion: str) -> dict[str, Any]:
        """Selected step and criterion values, plus the oracle's choice when oracle metrics exist."""
        out: dict[str, Any] = {"criterion": criterion, "selected_step": self.selected_step}
        if self.history and "oracle_mae_deg" in self.history[0]:
            best = min(self.history, key=lambda h: h["oracle_mae_deg"])
            out["oracle_would_choose_step"] = best["step"]
        return out


def _freeze_bn(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def task_loss_per_clip(
    model: nn.Module, h: torch.Tensor, batch: Batch, activity_weight: float = 0.2, spectrum_loss: str = "bce"
) -> torch.Tensor:
    """Task loss of each clip: :func:`sst_ros.train.losses.task_loss_per_frame` (spectrum weight 1)
    against Gaussian-bump targets (``AzimuthGrid.targets``, zero on inactive frames), averaged over
    each clip's valid (unpadded) output frames.

    Args:
        model: the CRNN (its ``head_logits`` and ``cfg.grid`` are used).
        h: (B, T, H) embeddings from ``model.extract`` (T may exceed the batch's label length).
        batch: labelled batch with true lengths.
    Returns:
        (B,) loss per clip.
    """
    if batch.azimuth_deg is None or batch.active is None:
        raise DataError("task loss needs a labelled batch")
    grid = model.cfg.grid
    B = batch.size
    T = min(h.shape[1], batch.azimuth_deg.shape[1])
    h = h[:, :T]
    az = np.nan_to_num(batch.azimuth_deg[:, :T], nan=0.0)
    act = batch.active[:, :T]
    tgt = torch.from_numpy(grid.targets(az.reshape(-1), act.reshape(-1)).reshape(B, T, -1)).to(h.dtype)
    spec_logit, act_logit = model.head_logits(h)
    per_frame = task_loss_per_frame(  # (B, T)
        spec_logit, act_logit, tgt, torch.from_numpy(act).to(h.dtype),
        spectrum_loss=spectrum_loss, activity_weight=activity_weight,
    )
    mask = (torch.arange(T)[None, :] < batch.lengths[:, None]).to(h.dtype)
    return (per_frame * mask).sum(1) / mask.sum(1).clamp_min(1.0)


def _masked_entropy(spec: torch.Tensor, lengths: torch.Tensor) -> float:
    """Mean normalised entropy of the spectrum (as a distribution over bins) over valid frames."""
    p = spec.clamp_min(1e-8)
    p = p / p.sum(-1, keepdim=True)
    ent = -(p * p.log()).sum(-1) / math.log(spec.shape[-1])
    mask = torch.arange(spec.shape[1])[None, :] < lengths[:, None]
    return float(ent[mask].mean()) if mask.any() else float("nan")


def evaluate_oracle(model: nn.Module, clips: Sequence[LabelledClip], feature_cfg: Any) -> dict[str, float]:
    """DOA metrics of ``model`` on labelled clips (MAE, ACC within 10 degrees; reporting only).

    Azimuths are folded into the model grid's identifiable range before comparison.
    """
    from sst_ros.train.metrics import doa_metrics  # model layer; imported lazily

    grid = model.cfg.grid
    fpo = model.cfg.frames_per_output
    preds, trues, acts = [], [], []
    model.eval()
    with torch.no_grad():
        for c in clips:
            x = make_batch([c.audio], feature_cfg, fpo).x
            spec, _ = model.head(model.extract(x))
            n = min(spec.shape[1], len(c.azimuth_deg))
            preds.append(model.decode(spec[0, :n]))
            trues.append(c.azimuth_deg[:n])
            acts.append(c.active[:n])
    m = doa_metrics(np.concatenate(preds), np.concatenate(trues), np.concatenate(acts), identifiable=grid)
    return {"mae_deg": float(m["mae_deg"]), "acc10": float(m["acc10"]), "acc5": float(m["acc5"])}


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
    """

    def __init__(
        self,
        model: nn.Module,
        feature_cfg: Any,
        source: SourcePool,
        source_val: SourcePool,
        target: TargetSet,
        cfg: AdaptConfig,
        run_dir: Path | None = None,
        oracle: Sequence[LabelledClip] | None = None,
    ) -> None:
        if target.sample_rate_hz != feature_cfg.sample_rate_hz:
            raise DataError(
                f"target set at {target.sample_rate_hz} Hz, model features at {feature_cfg.sample_rate_hz} Hz"
            )
        self.cfg = cfg
        self.feature_cfg = feature_cfg
        self.source, self.source_val, self.target = source, source_val, target
        self.oracle = list(oracle) if oracle else []
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.fpo = int(model.cfg.frames_per_output)
        self.frame_samples = int(feature_cfg.hop) * self.fpo
        self.frame_s = self.frame_samples / feature_cfg.sample_rate_hz
        self.min_frames = max(1, int(round(cfg.crop_min_s / self.frame_s)))
        self.max_frames = max(self.min_frames, int(round(cfg.crop_max_s / self.frame_s)))

        torch.manual_seed(cfg.seed)
        self.fe_s = copy.deepcopy(model).eval()
        for p in self.fe_s.parameters():
            p.requires_grad_(False)
        self.model_t = copy.deepcopy(model)
        for p in self.model_t.parameters():
            p.requires_grad_(True)
        h_dim = int(model.cfg.gru_hidden)
        self.disc = SequenceDiscriminator(h_dim, cfg.disc_gru_hidden, cfg.disc_mlp_hidden)
        self.disc0 = SequenceDiscriminator(h_dim, cfg.disc_gru_hidden, cfg.disc_mlp_hidden)
        self.grl = GradientReverseLayer(0.0)
        self.opt = torch.optim.Adam(
            [
                {"params": self.model_t.parameters(), "lr": cfg.lr},
                {"params": list(self.disc.parameters()) + list(self.disc0.parameters()), "lr": cfg.lr_disc},
            ]
        )
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}
        # fixed held-out sets (deterministic per seed)
        crops, labels = source_val.fixed_crops(10_000 + cfg.seed, cfg.n_val_clips, self.min_frames, self.max_frames)
        self.val_batch = make_batch(crops, feature_cfg, self.fpo, labels)
        tcrops = target.sample_crops(
            np.random.default_rng(20_000 + cfg.seed), cfg.n_target_val_clips, cfg.crop_min_s, cfg.crop_max_s
        )
        self.target_val_batch = make_batch(self._trim(tcrops), feature_cfg, self.fpo)

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

    def _batches(self, step: int) -> tuple[Batch, Batch]:
        rng = np.random.default_rng([self.cfg.seed, step])
        crops, labels = self.source.sample(rng, self.cfg.batch_size, self.min_frames, self.max_frames)
        src = make_batch(crops, self.feature_cfg, self.fpo, labels)
        tcrops = self.target.sample_crops(rng, self.cfg.batch_size, self.cfg.crop_min_s, self.cfg.crop_max_s)
        tgt = make_batch(self._trim(tcrops), self.feature_cfg, self.fpo)
        return src, tgt

    def _joint_extract(self, net: nn.Module, a: Batch, b: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass over both batches (padded to a common length), split again."""
        t = max(a.x.shape[-1], b.x.shape[-1])
        h = net.extract(torch.cat([pad_time(a.x, t), pad_time(b.x, t)]))
        return h[: a.size], h[a.size :]

    # ---- training ------------------------------------------------------------------------
    def grl_coefficient(self, step: int) -> float:
        """Gradient-reversal coefficient at ``step`` (0 for source_only)."""
        if self.cfg.variant == "source_only":
            return 0.0
        n = self.cfg.grl_steps or max(self.cfg.steps, 1)
        return dann_coefficient(step, n, self.cfg.grl_hi, self.cfg.grl_lo, self.cfg.grl_alpha)

    def train_step(self) -> dict[str, Any]:
        """One optimisation step; returns its losses and weight statistics."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed * 1_000_003 + self.step)
        src, tgt = self._batches(self.step)
        self.model_t.train()
        _freeze_bn(self.model_t)
        self.disc.train()
        self.disc0.train()

        h_s, h_t = self._joint_extract(self.model_t, src, tgt)
        l_task = task_loss_per_clip(self.model_t, h_s, src, cfg.activity_weight, cfg.spectrum_loss).mean()
        with torch.no_grad():
            g_s, g_t = self._joint_extract(self.fe_s, src, tgt)
        l_d, logit_ds = discriminator_loss(self.disc, g_s, src.lengths, g_t, tgt.lengths)
        d_prob = torch.sigmoid(logit_ds.detach())
        mode = "uniform" if cfg.variant != "iwan" else cfg.weight_mode
        w = importance_weights(d_prob, mode, max_weight=cfg.max_weight)
        coeff = self.grl_coefficient(self.step)
        if cfg.variant == "source_only":
            l_adv = torch.zeros(())
            d0_acc = None
        else:
            logit0_s = self.disc0(self.grl(h_s, coeff), src.lengths)
            logit0_t = self.disc0(self.grl(h_t, coeff), tgt.lengths)
            l_adv = domain_adversarial_loss(logit0_s, logit0_t, w)
            d0_acc = domain_accuracy(logit0_s.detach(), logit0_t.detach())
        total = l_task + cfg.adv_weight * l_adv + l_d
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        self.step += 1
        ws = weight_stats(w)
        rec = {
            "step": self.step,
            "loss": float(total.detach()),
            "task": float(l_task.detach()),
            "adv": float(l_adv.detach()),
            "disc": float(l_d.detach()),
            "grl_coeff": coeff,
            "d0_acc": d0_acc,
            "d_prob_mean": float(d_prob.mean()),
            **{f"w_{k}": v for k, v in ws.items()},
        }
        return rec

    # ---- evaluation / selection ------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, Any]:
        """Snapshot ``model_t`` and record label-free diagnostics (and oracle metrics if any)."""
        self.model_t.eval()
        vb = self.val_batch
        h = self.model_t.extract(vb.x)
        val_losses = task_loss_per_clip(self.model_t, h, vb, self.cfg.activity_weight, self.cfg.spectrum_loss)
        ht = self.model_t.extract(self.target_val_batch.x)
        spec_t, act_t = self.model_t.head(ht)
        rec: dict[str, Any] = {
            "step": self.step,
            "val_losses": [float(v) for v in val_losses],
            "source_val_loss": float(val_losses.mean()),
            "target_entropy": _masked_entropy(spec_t, self.target_val_batch.lengths),
            "target_activity_mean": float(act_t.mean()),
        }
        if self.oracle:
            o = evaluate_oracle(self.model_t, self.oracle, self.feature_cfg)
            rec.update({f"oracle_{k}": v for k, v in o.items()})
        self.snapshots[self.step] = {k: v.detach().clone() for k, v in self.model_t.state_dict().items()}
        self.history.append(rec)
        return rec

    @torch.no_grad()
    def validation_weights(self) -> torch.Tensor:
        """Importance weights of the validation crops from the current ``D`` (mean 1)."""
        self.disc.eval()
        g = self.fe_s.extract(self.val_batch.x)
        d = self.disc.probability(g, self.val_batch.lengths)
        return importance_weights(d, self.cfg.weight_mode, max_weight=self.cfg.max_weight)

    def select(self) -> int:
        """Fill the criteria into the history and return the selected step (label-free)."""
        w = self.validation_weights().numpy()
        for rec in self.history:
            losses = np.asarray(rec["val_losses"])
            rec["iwcv"] = float((w * losses).sum() / w.sum())
        if self.cfg.selection == "last":
            return int(self.history[-1]["step"])
        key = "iwcv" if self.cfg.selection == "iwcv" else "source_val_loss"
        return int(min(self.history, key=lambda r: (r[key], -r["step"]))["step"])

    # ---- state -----------------------------------------------------------------------------
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
            "target_sha256": sorted(r.sha256 for r in self.target.recordings),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`; the configuration must be the same except ``steps``."""
        saved = {k: v for k, v in state["cfg"].items() if k != "steps"}
        mine = {k: v for k, v in self.cfg.to_dict().items() if k != "steps"}
        if saved != mine:
            diff = sorted(k for k in mine if saved.get(k) != mine[k])
            raise ConfigError(
                f"cannot resume: the run folder was started with a different adaptation config ({', '.join(diff)}); "
                "use the same options (only --steps may change) or another --run-dir"
            )
        if state.get("target_sha256") != sorted(r.sha256 for r in self.target.recordings):
            raise ConfigError(
                "cannot resume: the target recordings differ from those of the interrupted run; "
                "give the same --target files or another --run-dir"
            )
        self.step = int(state["step"])
        self.model_t.load_state_dict(state["model_t"])
        self.disc.load_state_dict(state["disc"])
        self.disc0.load_state_dict(state["disc0"])
        self.opt.load_state_dict(state["opt"])
        self.history = list(state["history"])
        self.log = list(state["log"])
        self.snapshots = dict(state["snapshots"])

    def _save_state(self) -> None:
        if self.run_dir is None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.run_dir / (STATE_FILE + ".tmp")
        torch.save(self.state_dict(), tmp)
        tmp.replace(self.run_dir / STATE_FILE)

    def try_resume(self) -> bool:
        """Load ``run_dir/state.pt`` if present; True when resumed."""
        if self.run_dir is None or not (self.run_dir / STATE_FILE).is_file():
            return False
        try:
            state = torch.load(self.run_dir / STATE_FILE, map_location="cpu", weights_only=False)
        except Exception as err:  # a truncated state file
            raise DataError(f"cannot resume from {self.run_dir / STATE_FILE}: {err}; delete the run folder") from err
        self.load_state_dict(state)
        _LOG.info("resumed adaptation at step %d from %s", self.step, self.run_dir)
        return True

    # ---- driver ----------------------------------------------------------------------------
    def run(
        self, progress: bool = False, log_every: int = 10, on_log: Callable[[dict[str, Any]], None] | None = None
    ) -> AdaptResult:
        """Train to ``cfg.steps`` (continuing after a resume), select, and return the result."""
        cfg = self.cfg
        if not self.history:
            self.evaluate()
            self._save_state()
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=cfg.steps, initial=self.step, desc=f"adapt[{cfg.variant}]", unit="step")
        t0 = time.monotonic()
        log_file = open(self.run_dir / "log.jsonl", "a") if self.run_dir is not None else None  # noqa: SIM115
        try:
            while self.step < cfg.steps:
                rec = self.train_step()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(task=f"{rec['task']:.4f}", adv=f"{rec['adv']:.3f}", w_max=f"{rec['w_max']:.2f}")
                if self.step % log_every == 0 or self.step == cfg.steps:
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
                if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                    self.evaluate()
                    self._save_state()
        finally:
            if bar is not None:
                bar.close()
            if log_file is not None:
                log_file.close()
        if self.history[-1]["step"] != self.step:
            self.evaluate()
        chosen = self.select()
        model = copy.deepcopy(self.model_t)
        model.load_state_dict(self.snapshots[chosen])
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.disc.eval()
        return AdaptResult(model, chosen, self.history, self.disc, self.fe_s, self.log)

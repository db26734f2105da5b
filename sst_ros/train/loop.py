"""Source training of the CRNN tracker on labelled clip sets (or on-the-fly simulation).

Per step (:meth:`Trainer.step`): ``batch_size`` random crops of ``crop_s`` seconds (aligned to
the 100 ms label grid, :mod:`sst_ros.train.examples`), optionally transformed by a random
array symmetry and gain (:mod:`sst_ros.train.augment`), turned into causal features, passed
through the CRNN from a zero state. Loss = ``spectrum_weight * L_spec + activity_weight *
L_act``, where ``L_spec`` is the binary cross-entropy (or MSE) of the spatial spectrum against
a Gaussian bump around the true azimuth, zeroed on inactive frames
(:meth:`AzimuthGrid.targets`), and ``L_act`` the binary cross-entropy of the activity output
against the label. Adam with a linear warm-up and a cosine learning-rate decay
(:meth:`TrainConfig.learning_rate`), gradients clipped to ``grad_clip_norm``.

Every ``val_every`` steps (:meth:`Trainer.validate`) the model runs over the whole validation
clips (offline, causal) and MAE, ACC5/ACC10 (active frames) and activity F1 are logged to
``metrics.jsonl``. The run folder keeps ``config.yaml`` (the typed config), ``latest.pt``
(with optimiser state, to resume) and ``best.pt`` (lowest validation MAE, no optimiser
state); both checkpoints carry geometry, configs, label resolution and provenance (data and
its scene configuration, seed, steps, metrics). ``latest.pt`` holds tensors and plain data
only and is read back with ``weights_only=True`` (:mod:`sst_ros.model.checkpoint`).

A NaN or infinite loss or gradient norm stops the run with a
:class:`~sst_ros.train.nonfinite.NonFiniteLossError` before the optimiser step, so no
checkpoint is written from a broken model and ``latest.pt`` stays resumable.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from sst_ros.data.clip_reader import ClipReader
from sst_ros.errors import ConfigError, ModelError
from sst_ros.geometry import MicArray, load_array
from sst_ros.model.azimuth import grid_for_array
from sst_ros.model.checkpoint import load_checkpoint, save_checkpoint
from sst_ros.model.crnn import CRNN, ModelConfig
from sst_ros.model.features import FeatureConfig, compute_features, feature_config_for
from sst_ros.train.augment import Symmetry, array_symmetries, random_augment
from sst_ros.train.config import TrainConfig
from sst_ros.train.examples import ClipExamples, SimulatedExamples, TrainingExamples, training_data
from sst_ros.train.losses import task_loss_per_frame
from sst_ros.train.metrics import doa_metrics
from sst_ros.train.nonfinite import check_finite
from sst_ros.train.scene_provenance import scene_provenance

__all__ = ["TrainConfig", "Trainer", "evaluate_clips", "train"]

log = logging.getLogger(__name__)

_LOSS_EMA_NEW = 0.05  # weight of the newest step in the smoothed training loss (progress bar, logs)
_SIM_SEED_STRIDE = 1_000_003  # scene seeds of run seed s start at s * stride (+ scenes already used)


def evaluate_clips(model: CRNN, clips: ClipReader, feature_cfg: FeatureConfig) -> dict[str, float]:
    """Offline causal inference over whole clips; metrics pooled over all their frames.

    Returns:
        :func:`~sst_ros.train.metrics.doa_metrics` of the pooled frames (degrees, fractions).
    """
    model.eval()
    preds, trues, acts, pacts = [], [], [], []
    with torch.inference_mode():
        for i in range(len(clips)):
            audio, _, labels = clips.load(i)
            out = model(torch.from_numpy(compute_features(audio, feature_cfg))[None])
            T = min(out.spectrum.shape[1], len(labels))
            pred = model.decode(out.spectrum[0, :T])
            true_az, active = labels.nearest_talker(pred)  # several talkers: the one nearest the estimate
            preds.append(pred)
            pacts.append(out.activity[0, :T].numpy())
            trues.append(true_az)
            acts.append(active)
    if not preds:
        return doa_metrics(np.zeros(0), np.zeros(0), np.zeros(0, bool), np.zeros(0))
    return doa_metrics(
        np.concatenate(preds),
        np.concatenate(trues),
        np.concatenate(acts),
        np.concatenate(pacts),
        identifiable=model.cfg.grid,
    )


def _git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _model_configs(cfg: TrainConfig, array: MicArray) -> tuple[FeatureConfig, ModelConfig]:
    fcfg = feature_config_for(array.positions_m, **cfg.features)  # srp steers with the training geometry
    grid = grid_for_array(array, cfg.resolution_deg, cfg.sigma_deg)
    overrides = dict(cfg.model)
    for k in ("conv_channels", "freq_pool", "time_pool", "head_hidden"):
        if k in overrides:
            overrides[k] = tuple(overrides[k])
    overrides.setdefault("in_planes", fcfg.n_planes(array.n_mics))
    mcfg = ModelConfig.preset(cfg.preset, array.n_mics, grid=grid, n_freq=fcfg.n_rows, **overrides)
    return fcfg, mcfg


@dataclass
class _Progress:
    """What a run has reached (saved in ``latest.pt`` to resume)."""

    step: int = 0
    best_mae: float = math.inf
    best_metrics: dict[str, float] = field(default_factory=dict)
    last_metrics: dict[str, float] = field(default_factory=dict)
    elapsed_before_s: float = 0.0
    ema_loss: float | None = None


class Trainer:
    """One training run in its run folder (see the module docstring).

    Args:
        cfg: the run's configuration.
        out_dir: run folder (``config.yaml``, ``latest.pt``, ``best.pt``, ``metrics.jsonl``).
        resume: continue from ``out_dir/latest.pt``.
        on_validation: called with (step, metrics) after each validation.
    Raises:
        ConfigError: a run folder that already holds a run (without ``resume``), no data.
        DataError: unreadable or mismatching clip sets.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        out_dir: str | os.PathLike[str],
        resume: bool = False,
        on_validation: Callable[[int, dict[str, float]], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.out = Path(out_dir)
        self.latest_path, self.best_path = self.out / "latest.pt", self.out / "best.pt"
        self.on_validation = on_validation
        self.progress = _Progress()
        self.saved_step: int | None = None  # step of the latest.pt on disk (None: none written yet)
        self._t_start = time.monotonic()
        self.setup(resume)

    # ---- setup ---------------------------------------------------------------------------
    def setup(self, resume: bool) -> None:
        """Geometry, model, data, optimiser and random state; restores ``latest.pt`` when resuming."""
        cfg = self.cfg
        if self.latest_path.exists() and not resume:
            raise ConfigError(
                f"run folder {self.out} already holds a run (latest.pt); pass --resume or choose a new --out"
            )
        if resume and not self.latest_path.exists():
            raise ConfigError(f"--resume: {self.latest_path} does not exist")
        torch.set_num_threads(max(1, cfg.num_threads))
        self.array = load_array(cfg.array)
        self.feature_cfg, self.model_cfg = _model_configs(cfg, self.array)
        self.symmetries: list[Symmetry] = array_symmetries(self.array) if cfg.augment_symmetry else []
        fs = self.feature_cfg.sample_rate_hz
        self.frame_samples = self.feature_cfg.hop * self.model_cfg.frames_per_output
        self.crop_frames = max(1, int(round(cfg.crop_s / (self.frame_samples / fs))))
        self.data = training_data(cfg, self.array, fs, self.frame_samples / fs)
        self.scene_record = scene_provenance(cfg)  # scene_config + clip_duration_s for `sst adapt`
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.model = CRNN(self.model_cfg)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        if resume:
            self._restore()
        elif cfg.init_from:
            self._initialise(cfg.init_from)
        self.examples: TrainingExamples
        if self.data.train is not None:
            self.examples = ClipExamples(self.data.train)
        else:  # fresh scenes; a resumed run continues with new seeds
            first = cfg.seed * _SIM_SEED_STRIDE + self.progress.step * cfg.batch_size
            self.examples = SimulatedExamples(str(cfg.simulate_config), self.array, cfg.sim_duration_s, first, fs,
                                              self.frame_samples)  # fmt: skip
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    def _initialise(self, path: str) -> None:
        """Weights of checkpoint ``path`` (fine-tuning); its features and network must be this run's.

        Raises:
            ModelError: unreadable checkpoint, or one built with other features or another network.
        """
        ck = load_checkpoint(path)
        for what, theirs, ours in (
            ("features", ck.feature_cfg, self.feature_cfg),
            ("network", ck.model_cfg, self.model_cfg),
        ):
            if theirs != ours:
                raise ModelError(
                    f"init_from {path}: its {what} ({theirs}) differ from this run's ({ours}); train with the "
                    "checkpoint's own training config (preset, features, resolution_deg, sigma_deg) and array"
                )
        self.model.load_state_dict(ck.model.state_dict())
        log.info("initialised from %s", path)

    def _restore(self) -> None:
        """Weights, optimiser state and progress from ``latest.pt`` (read with ``weights_only=True``).

        Raises:
            ModelError: an unreadable, refused (not tensors and plain data) or incomplete file.
        """
        try:
            ck = load_checkpoint(self.latest_path, with_train_state=True)
        except ModelError as err:
            raise ModelError(
                f"--resume: {err}. A run folder whose latest.pt cannot be read safely cannot be resumed: start a "
                "new run with another --out"
            ) from err
        found = ck.extra.get("train_state")
        ts: dict[str, Any] = found if isinstance(found, dict) else {}
        missing = [k for k in ("optimizer", "step", "best_mae") if k not in ts]
        if missing:
            raise ModelError(
                f"--resume: {self.latest_path} holds no complete training state (no {', '.join(missing)}); it is not "
                "a latest.pt written by `sst train`: start a new run with another --out"
            )
        self.model.load_state_dict(ck.model.state_dict())
        self.opt.load_state_dict(ts["optimizer"])
        p = self.progress
        p.step, p.best_mae = int(ts["step"]), float(ts["best_mae"])
        p.best_metrics = dict(ts.get("best_metrics", {}))
        p.elapsed_before_s = float(ts.get("elapsed_s", 0.0))
        self.rng = np.random.default_rng([self.cfg.seed, p.step])
        torch.manual_seed(self.cfg.seed + p.step)
        self.saved_step = p.step
        log.info("resumed %s at step %d", self.latest_path, p.step)

    @property
    def elapsed_s(self) -> float:
        """Training wall time so far, seconds (including the runs this one resumes)."""
        return self.progress.elapsed_before_s + time.monotonic() - self._t_start

    # ---- one step ------------------------------------------------------------------------
    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The next training batch.

        Returns:
            features (B, C, F, T), spectrum targets (B, T_out, n_bins) and activity labels
            (B, T_out) float 0/1.
        """
        feats, targets, acts = [], [], []
        for item in self.examples.pick(self.cfg.batch_size, self.rng):
            audio, _, labels = self.examples.crop(item, self.crop_frames, self.rng)
            audio, labels = random_augment(audio, labels, self.symmetries, self.cfg.gain_db_range, self.rng)
            feats.append(torch.from_numpy(compute_features(audio, self.feature_cfg)))
            az, active = labels.talker_tracks()  # (T, S): one bump per active talker
            targets.append(torch.from_numpy(self.model_cfg.grid.targets(az, active)))
            acts.append(torch.from_numpy(active.any(axis=1).astype(np.float32)))
        return torch.stack(feats), torch.stack(targets), torch.stack(acts)

    def loss(self, x: torch.Tensor, target: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """Mean task loss of a batch (frames beyond the shorter of output and labels dropped)."""
        cfg = self.cfg
        spec_logit, act_logit = self.model.head_logits(self.model.extract(x))
        T = min(spec_logit.shape[1], target.shape[1])
        return task_loss_per_frame(
            spec_logit[:, :T], act_logit[:, :T], target[:, :T], active[:, :T],
            spectrum_loss=cfg.loss, spectrum_weight=cfg.spectrum_weight, activity_weight=cfg.activity_weight,
        ).mean()  # fmt: skip

    def step(self) -> float:
        """One optimisation step; returns its loss.

        Raises:
            NonFiniteLossError: a NaN / infinite loss or gradient norm (checked before the
                optimiser step: the model keeps its last finite weights).
        """
        x, target, active = self.batch()
        for g in self.opt.param_groups:
            g["lr"] = self.cfg.learning_rate(self.progress.step)
        loss = self.loss(x, target, active)
        where = f"training step {self.progress.step + 1} ({self.out})"
        check_finite(loss, "loss", where, self._nonfinite_fix())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip_norm)
        check_finite(norm, "gradient norm", where, self._nonfinite_fix())
        self.opt.step()
        self.progress.step += 1
        value = float(loss.detach())
        ema = self.progress.ema_loss
        self.progress.ema_loss = value if ema is None else (1 - _LOSS_EMA_NEW) * ema + _LOSS_EMA_NEW * value
        return value

    def _nonfinite_fix(self) -> str:
        saved = (
            f"{self.latest_path} keeps step {self.saved_step} (resume with --resume once fixed)"
            if self.saved_step is not None
            else "no checkpoint was written yet"
        )
        return (
            "check the training clips for NaN or infinite samples, or lower the learning rate (lr) if training "
            f"diverged; nothing was written from this step, {saved}"
        )

    # ---- validation and checkpoints ------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """Metrics on the validation clips (logged, ``best.pt`` saved when the MAE improves); {} without."""
        p = self.progress
        if self.data.val is None or len(self.data.val) == 0:
            return {}
        m = evaluate_clips(self.model, self.data.val, self.feature_cfg)
        m = {k: (round(float(v), 5) if isinstance(v, float) else v) for k, v in m.items()}
        rec = {"step": p.step, "elapsed_s": round(self.elapsed_s, 1), **m}
        with (self.out / "metrics.jsonl").open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        log.info(
            "step %d: val MAE %.2f deg, ACC5 %.3f, ACC10 %.3f, activity F1 %.3f (%d active frames)",
            p.step, m["mae_deg"], m["acc5"], m["acc10"], m["activity_f1"], m["n_active"],
        )  # fmt: skip
        if math.isfinite(m["mae_deg"]) and m["mae_deg"] < p.best_mae:
            p.best_mae, p.best_metrics = m["mae_deg"], m
            self.save(best=True, metrics=m)
        if self.on_validation is not None:
            self.on_validation(p.step, m)
        self.model.train()
        return m

    def validate_and_save(self) -> None:
        """:meth:`validate`, then save ``latest.pt`` (with the last metrics known)."""
        self.progress.last_metrics = self.validate() or self.progress.last_metrics
        self.save()

    def save(self, best: bool = False, metrics: dict[str, float] | None = None) -> None:
        """Write ``latest.pt`` (with optimiser and progress, to resume) or ``best.pt`` (weights only)."""
        p = self.progress
        prov = self._provenance(p.last_metrics if metrics is None else metrics)
        if best:
            save_checkpoint(self.best_path, self.model, self.array, self.feature_cfg, self.model_cfg, prov)
            return
        ts = {
            "optimizer": self.opt.state_dict(),
            "step": p.step,
            "best_mae": p.best_mae,
            "best_metrics": p.best_metrics,
            "elapsed_s": self.elapsed_s,
        }
        save_checkpoint(
            self.latest_path, self.model, self.array, self.feature_cfg, self.model_cfg, prov, train_state=ts
        )
        self.saved_step = p.step

    def _provenance(self, metrics: dict[str, float]) -> dict[str, Any]:
        cfg = self.cfg
        return {
            "data": [str(Path(d).resolve()) for d in cfg.data],
            "val_data": [str(Path(d).resolve()) for d in cfg.val_data],
            "simulate_config": cfg.simulate_config,
            **self.scene_record,
            "n_train_clips": self.data.n_train_clips,
            "n_val_clips": self.data.n_val_clips,
            "seed": cfg.seed,
            "step": self.progress.step,
            "batch_size": cfg.batch_size,
            "train_config": cfg.to_dict(),
            "val_metrics": metrics,
            "git_revision": _git_revision(),
            "torch": str(torch.__version__),
            "python": sys.version.split()[0],
            "host": platform.node(),
            "elapsed_s": round(self.elapsed_s, 1),
            "saved_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    # ---- the run -------------------------------------------------------------------------
    def run(self, progress: bool = True) -> dict[str, Any]:
        """Train to ``cfg.steps`` (validating and checkpointing every ``val_every`` steps).

        Args:
            progress: show a tqdm progress bar.
        Returns:
            summary dict: steps, wall time, best and last validation metrics, checkpoint paths.
        """
        cfg, p = self.cfg, self.progress
        self._t_start = time.monotonic()
        log.info(
            "training %s (%d parameters) on %d clips (%d validation), %d steps of %d x %.1f s, %d symmetries",
            cfg.preset, self.model.n_parameters(), self.data.n_train_clips if self.data.train else -1,
            self.data.n_val_clips, cfg.steps, cfg.batch_size, cfg.crop_s, len(self.symmetries),
        )  # fmt: skip
        self.model.train()
        bar = _progress_bar(cfg.steps, p.step) if progress else None
        stopped_early = False
        while p.step < cfg.steps:
            self.step()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{p.ema_loss:.4f}", lr=f"{cfg.learning_rate(p.step):.1e}", refresh=False)
            if p.step % cfg.val_every == 0 or p.step == cfg.steps:
                self.validate_and_save()
                log.info("step %d: train loss %.4f", p.step, p.ema_loss)
            if cfg.max_time_min > 0 and self.elapsed_s > 60 * cfg.max_time_min:
                log.warning("time limit of %.1f min reached at step %d; stopping", cfg.max_time_min, p.step)
                if p.step % cfg.val_every != 0:
                    self.validate_and_save()
                stopped_early = True
                break
        if bar is not None:
            bar.close()
        return self._finish(stopped_early)

    def _finish(self, stopped_early: bool) -> dict[str, Any]:
        p = self.progress
        if not self.best_path.exists():  # no validation data: the last model is the best we know
            self.save(best=True)
        if not self.latest_path.exists():
            self.save()
        summary = {
            "steps": p.step,
            "stopped_early": stopped_early,
            "wall_s": round(self.elapsed_s, 1),
            "best_val": p.best_metrics,
            "last_val": p.last_metrics,
            "final_train_loss": p.ema_loss,
            "latest": str(self.latest_path),
            "best": str(self.best_path),
        }
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary


def _progress_bar(total: int, initial: int) -> Any:
    from tqdm import tqdm

    interval = 1.0 if sys.stderr.isatty() else 30.0
    return tqdm(total=total, initial=initial, desc="train", unit="step", mininterval=interval)


def train(
    cfg: TrainConfig,
    out_dir: str | os.PathLike[str],
    resume: bool = False,
    progress: bool = True,
    on_validation: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) a training run: ``Trainer(cfg, out_dir, resume, on_validation).run(progress)``.

    Args:
        cfg: the run's configuration.
        out_dir: run folder (``config.yaml``, ``latest.pt``, ``best.pt``, ``metrics.jsonl``).
        resume: continue from ``out_dir/latest.pt``.
        progress: show a tqdm progress bar.
        on_validation: called with (step, metrics) after each validation.
    Returns:
        summary dict: steps, wall time, best and last validation metrics, checkpoint paths.
    """
    return Trainer(cfg, out_dir, resume=resume, on_validation=on_validation).run(progress)

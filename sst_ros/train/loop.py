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

Batches are a function of the seed and the step alone (:mod:`sst_ros.train.batches`), built
in the training process or in ``workers`` data-loading processes. The step runs on ``device``
(``auto``: CUDA when present, :mod:`sst_ros.model.device`), in mixed precision on CUDA
(:mod:`sst_ros.train.precision`). Under ``torchrun`` the processes share the global batch
``batch_size`` without overlap and DistributedDataParallel averages their gradients
(:mod:`sst_ros.train.distributed`); only rank 0 validates and writes, so a run of N processes
takes the steps a single process would take on the same global batch, up to BatchNorm's
per-process batch statistics and float rounding.

Every ``val_every`` steps (:meth:`Trainer.validate`) the model runs over the whole validation
clips (offline, causal) and the task loss, MAE, ACC5/ACC10 (active frames) and activity F1
are logged to ``metrics.jsonl``. The run folder keeps ``config.yaml`` (the typed config), ``latest.pt``
(with optimiser state, to resume) and ``best.pt`` (lowest validation MAE, no optimiser
state); both checkpoints carry geometry, configs, label resolution and provenance (data and
its scene configuration, seed, steps, metrics). ``latest.pt`` holds tensors and plain data
only and is read back with ``weights_only=True`` (:mod:`sst_ros.model.checkpoint`).

A NaN or infinite loss or gradient norm stops the run with a
:class:`~sst_ros.train.nonfinite.NonFiniteLossError` before the optimiser step, so no
checkpoint is written from a broken model and ``latest.pt`` stays resumable. (Under float16
mixed precision a non-finite gradient norm first skips the step and lowers the loss scale, up
to :data:`~sst_ros.train.precision.MAX_SKIPPED_STEPS` times in a row.)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sst_ros.data.clip_reader import ClipReader
from sst_ros.errors import ConfigError, ModelError
from sst_ros.geometry import MicArray, load_array
from sst_ros.model.azimuth import grid_for_array
from sst_ros.model.checkpoint import load_checkpoint, save_checkpoint
from sst_ros.model.crnn import CRNN, INTERFERER_MAP_PREFIX, HeadLogits, ModelConfig
from sst_ros.model.device import resolve_device
from sst_ros.model.features import FeatureConfig, compute_features, feature_config_for
from sst_ros.train.augment import Symmetry, array_symmetries
from sst_ros.train.batches import Batch, StepBatches, batch_loader, interferer_targets
from sst_ros.train.config import TrainConfig
from sst_ros.train.distributed import (
    all_ranks_mean,
    any_rank,
    global_batchnorm,
    join,
    leave,
    rank0_flag,
    restarted,
    same_on_all_ranks,
    torchrun_job_id,
)
from sst_ros.train.examples import ClipExamples, SimulatedExamples, TrainingExamples, training_data
from sst_ros.train.losses import TaskLoss
from sst_ros.train.metrics import doa_metrics
from sst_ros.train.nonfinite import check_finite
from sst_ros.train.precision import MixedPrecision
from sst_ros.train.scene_provenance import scene_provenance

__all__ = ["TrainConfig", "Trainer", "evaluate_clips", "train"]

log = logging.getLogger(__name__)

_LOSS_EMA_NEW = 0.05  # weight of the newest step in the smoothed training loss (progress bar, logs)
_SIM_SEED_STRIDE = 1_000_003  # scene seeds of run seed s start at s * stride (example k: + k)
_CUDA_WORKERS = 4  # data-loading processes by default on CUDA (the CPU default builds batches in-process)


def evaluate_clips(
    model: CRNN,
    clips: ClipReader,
    feature_cfg: FeatureConfig,
    task_loss: TaskLoss | None = None,
    device: torch.device | None = None,
) -> dict[str, float]:
    """Offline causal inference over whole clips; metrics pooled over all their frames.

    Args:
        model: the network (on ``device``).
        clips: labelled clips.
        feature_cfg: the model's features.
        task_loss: also report ``loss``, this task loss per output frame averaged over all frames.
        device: where ``model`` is (default: the CPU).
    Returns:
        :func:`~sst_ros.train.metrics.doa_metrics` of the pooled frames (degrees, fractions),
        and ``loss`` with ``task_loss``.
    """
    model.eval()
    dev = device or torch.device("cpu")
    preds, trues, acts, pacts = [], [], [], []
    loss_sum, n_frames = 0.0, 0
    with torch.inference_mode():
        for i in range(len(clips)):
            audio, _, labels = clips.load(i)
            x = torch.from_numpy(compute_features(audio, feature_cfg))[None].to(dev)
            logits = model.head_logits(model.extract(x))
            spectrum, activity = model.outputs(logits)  # with an interferer map: the damped talker map
            T = min(spectrum.shape[1], len(labels))
            pred = model.decode(spectrum[0, :T])
            true_az, active = labels.nearest_talker(pred)  # several talkers: the one nearest the estimate
            preds.append(pred)
            pacts.append(activity[0, :T].cpu().numpy())
            trues.append(true_az)
            acts.append(active)
            if task_loss is not None:
                az, on = labels.talker_tracks()
                target = model.cfg.grid.targets(az[:T], on[:T])
                act = torch.from_numpy(on[:T].any(axis=1).astype(np.float32))[None].to(dev)
                interferer_logit = interferer_target = None
                if logits.interferer is not None:
                    i_target, _ = interferer_targets(labels, model.cfg.grid, target)
                    interferer_logit = logits.interferer[:, :T]
                    interferer_target = torch.from_numpy(i_target)[None].to(dev)
                per_frame = task_loss.per_frame(
                    logits.spectrum[:, :T], logits.activity[:, :T], torch.from_numpy(target)[None].to(dev), act,
                    interferer_logit=interferer_logit, interferer_target=interferer_target,
                )  # fmt: skip
                loss_sum, n_frames = loss_sum + float(per_frame.sum()), n_frames + T
    if not preds:
        return doa_metrics(np.zeros(0), np.zeros(0), np.zeros(0, bool), np.zeros(0))
    metrics = doa_metrics(
        np.concatenate(preds),
        np.concatenate(trues),
        np.concatenate(acts),
        np.concatenate(pacts),
        identifiable=model.cfg.grid,
    )
    if task_loss is not None:
        metrics["loss"] = loss_sum / max(1, n_frames)
    return metrics


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


class _TaskLogits(nn.Module):
    """The network's forward pass as training calls it (the head's logits), so that
    DistributedDataParallel, which hooks ``forward``, sees it."""

    def __init__(self, model: CRNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> HeadLogits:
        return self.model.head_logits(self.model.extract(x))


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
        on_validation: called with (step, metrics) after each validation (rank 0 only).
    Raises:
        ConfigError: a run folder that already holds a run (without ``resume``), no data, a
            device that is not there, a global batch the processes cannot share.
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
        self._batches: Iterator[Batch] | None = None  # started at the first batch (from the step reached)
        self.setup(resume)

    # ---- setup ---------------------------------------------------------------------------
    def setup(self, resume: bool) -> None:
        """Device and ranks, geometry, model, data, optimiser and random state; restores ``latest.pt``
        when resuming (or when torchrun restarted the group after a failure)."""
        cfg = self.cfg
        self.ranks, self.device = join(resolve_device(cfg.device))
        if not resume and self.ranks.is_main and self._restarted_job_run():
            log.warning("torchrun restarted the run after a failure: resuming from %s", self.latest_path)
            resume = True
        resume = rank0_flag(resume, self.ranks, self.device)  # one decision for every rank
        if self.latest_path.exists() and not resume:
            raise ConfigError(
                f"run folder {self.out} already holds a run (latest.pt); pass --resume or choose a new --out"
            )
        if resume and not self.latest_path.exists():
            shared = " (a run over several machines needs --out on storage that all of them share)"
            raise ConfigError(f"--resume: {self.latest_path} does not exist{shared if self.ranks.distributed else ''}")
        torch.set_num_threads(max(1, cfg.num_threads))
        self.array = load_array(cfg.array)
        self.feature_cfg, self.model_cfg = _model_configs(cfg, self.array)
        self.symmetries: list[Symmetry] = array_symmetries(self.array) if cfg.augment_symmetry else []
        fs = self.feature_cfg.sample_rate_hz
        self.frame_samples = self.feature_cfg.hop * self.model_cfg.frames_per_output
        self.crop_frames = max(1, int(round(cfg.crop_s / (self.frame_samples / fs))))
        self.data = training_data(cfg, self.array, fs, self.frame_samples / fs)
        self.scene_record = scene_provenance(cfg)  # scene_config + clip_duration_s for `sst adapt`
        self.task_loss = TaskLoss(cfg.loss, cfg.spectrum_weight, cfg.activity_weight)
        torch.manual_seed(cfg.seed)
        self.model = CRNN(self.model_cfg).to(self.device)
        # the interferer map's layers in a group of their own: their learning rate has its own factor
        named = list(self.model.named_parameters())
        groups = [{"params": [p for n, p in named if not n.startswith(INTERFERER_MAP_PREFIX)]}]
        if self.model_cfg.interferer_map:
            groups.append({"params": [p for n, p in named if n.startswith(INTERFERER_MAP_PREFIX)]})
        self.opt = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.precision = MixedPrecision(self.device, cfg.amp)
        if resume:
            self._restore()
            if not same_on_all_ranks(self.progress.step, self.ranks, self.device):
                raise ConfigError(
                    f"--resume: the processes found different latest.pt files in {self.out} (a run over several "
                    "machines needs --out on storage that all of them share)"
                )
        elif cfg.init_from:
            self._initialise(cfg.init_from)
        # set after restoring: a resumed run takes this config's factors, not the saved ones
        for group, factor in zip(self.opt.param_groups, (1.0, cfg.interferer_map_lr_factor), strict=False):
            group["lr_factor"] = factor
        self.net: nn.Module = _TaskLogits(self.model)
        if self.ranks.distributed:  # after restoring: DDP broadcasts rank 0's weights to the others
            global_batchnorm(self.model)  # BatchNorm of the global batch: the single-process step
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.net, device_ids=ids)
        examples: TrainingExamples
        if self.data.train is not None:
            examples = ClipExamples(self.data.train, cfg.seed)
        else:  # fresh scenes: example k of the run is the scene of seed seed * stride + k
            examples = SimulatedExamples(str(cfg.simulate_config), self.array, cfg.sim_duration_s,
                                         cfg.seed * _SIM_SEED_STRIDE, fs, self.frame_samples)  # fmt: skip
        self.step_batches = StepBatches(
            examples, self.crop_frames, self.symmetries, cfg.gain_db_range, self.feature_cfg, self.model_cfg.grid,
            cfg.seed, cfg.batch_size, self.ranks.rank, self.ranks.world_size, cfg.interferer_weight,
        )  # fmt: skip
        if self.ranks.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    @property
    def workers(self) -> int:
        """Data-loading worker processes: ``cfg.workers``, or by default 0 on a CPU (the cores
        are the step's) and on CUDA :data:`_CUDA_WORKERS`, at most this machine's share of the
        CPUs this process may use (its affinity, divided among torchrun's local processes) less one."""
        if self.cfg.workers is not None:
            return int(self.cfg.workers)
        if self.device.type != "cuda":
            return 0
        local_procs = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
        return min(_CUDA_WORKERS, max(0, len(os.sched_getaffinity(0)) // local_procs - 1))

    def _restarted_job_run(self) -> bool:
        """Whether torchrun restarted this job after a failure and ``latest.pt`` is this job's
        (``torchrun_run_id``): a folder holding another run is still refused."""
        job = torchrun_job_id()
        if not (restarted() and job and self.latest_path.exists()):
            return False
        try:
            ck = load_checkpoint(self.latest_path, with_train_state=True)
        except ModelError:
            return False
        ts = ck.extra.get("train_state")
        return isinstance(ts, dict) and ts.get("torchrun_run_id") == job

    def _initialise(self, path: str) -> None:
        """Weights of checkpoint ``path`` (fine-tuning); its features and network must be this run's,
        or differ only in the steered-response azimuth rows (:func:`rows_only_difference`), or lack
        the interferer map this run's network has (the map then starts untrained).

        Raises:
            ModelError: unreadable checkpoint, or one built with other features or another network.
        """
        ck = load_checkpoint(path)
        # a network without an interferer map can start one: every other weight fits, the map starts untrained
        adds_map = self.model_cfg.interferer_map and not ck.model_cfg.interferer_map
        their_net = dataclasses.replace(ck.model_cfg, interferer_map=True) if adds_map else ck.model_cfg
        rows = rows_only_difference(ck.feature_cfg, their_net, self.feature_cfg, self.model_cfg)
        if rows is None:
            for what, theirs, compared, ours in (  # compared: theirs, with the map this run may add
                ("features", ck.feature_cfg, ck.feature_cfg, self.feature_cfg),
                ("network", ck.model_cfg, their_net, self.model_cfg),
            ):
                if compared != ours:
                    raise ModelError(
                        f"init_from {path}: its {what} ({theirs}) differ from this run's ({ours}); train with the "
                        "checkpoint's own training config (preset, features, resolution_deg, sigma_deg) and array "
                        "(srp_azimuths may differ when freq_pool brings the same number of rows to the GRU)"
                    )
        missing, unexpected = self.model.load_state_dict(ck.model.state_dict(), strict=not adds_map)  # onto the device
        if unexpected or any(not k.startswith(INTERFERER_MAP_PREFIX) for k in missing):  # only the map may be new
            raise ModelError(f"init_from {path}: weights that do not fit: missing {missing}, unexpected {unexpected}")
        if rows:
            log.warning("initialised from %s: %s", path, rows)
        else:
            log.info("initialised from %s", path)
        if adds_map:
            log.info("%s has no interferer map: the map starts untrained", path)

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
        self.opt.load_state_dict(ts["optimizer"])  # its tensors follow the parameters' device
        self.precision.load_state_dict(dict(ts.get("amp_scaler", {})))
        p = self.progress
        p.step, p.best_mae = int(ts["step"]), float(ts["best_mae"])
        p.best_metrics = dict(ts.get("best_metrics", {}))
        p.elapsed_before_s = float(ts.get("elapsed_s", 0.0))
        torch.manual_seed(self.cfg.seed + p.step)
        self.saved_step = p.step
        log.info("resumed %s at step %d", self.latest_path, p.step)

    @property
    def elapsed_s(self) -> float:
        """Training wall time so far, seconds (including the runs this one resumes)."""
        return self.progress.elapsed_before_s + time.monotonic() - self._t_start

    # ---- one step ------------------------------------------------------------------------
    def batch(self) -> Batch:
        """This process's share of the current step's batch (:class:`~sst_ros.train.batches.StepBatches`),
        on the CPU.

        Returns:
            features (B, C, F, T), spectrum targets (B, T_out, n_bins), activity labels
            (B, T_out) float 0/1 and the spectrum loss's per-bin factors (B, T_out, n_bins);
            B = ``batch_size`` / processes.
        """
        if self._batches is None:
            pin = self.device.type == "cuda"
            self._batches = batch_loader(self.step_batches, self.progress.step, self.cfg.steps, self.workers, pin)
        return next(self._batches)

    def loss(self, batch: Batch) -> torch.Tensor:
        """Mean task loss of a batch (frames beyond the shorter of output and labels dropped)."""
        logits = self.net(batch.features)
        T = min(logits.spectrum.shape[1], batch.target.shape[1])
        interferer = None if logits.interferer is None else logits.interferer[:, :T].float()
        return self.task_loss.per_frame(
            logits.spectrum[:, :T].float(), logits.activity[:, :T].float(), batch.target[:, :T],
            batch.active[:, :T], batch.bin_weight[:, :T], interferer, batch.interferer_target[:, :T],
        ).mean()  # fmt: skip

    def step(self) -> float:
        """One optimisation step; returns its loss (the mean over all processes).

        Raises:
            NonFiniteLossError: a NaN / infinite loss or gradient norm (checked before the
                optimiser step: the model keeps its last finite weights). A float16 overflow
                of the gradients under mixed precision skips the step instead (the loss scale
                is lowered).
        """
        batch = Batch(*(t.to(self.device, non_blocking=True) for t in self.batch()))
        for g in self.opt.param_groups:
            g["lr"] = self.cfg.learning_rate(self.progress.step) * g["lr_factor"]
        with self.precision.autocast():
            loss = self.loss(batch)
        mean_loss = all_ranks_mean(loss, self.ranks)  # every rank takes the same decision
        where = f"training step {self.progress.step + 1} ({self.out})"
        check_finite(mean_loss, "loss", where, self._nonfinite_fix())
        self.opt.zero_grad(set_to_none=True)
        self.precision.backward(loss, self.opt)
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip_norm)
        if not self.precision.overflowed(norm):  # a float16 overflow: the scaler skips the step
            check_finite(norm, "gradient norm", where, self._nonfinite_fix())
        self.precision.step(self.opt)
        self.progress.step += 1
        value = float(mean_loss)
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
        """Metrics on the validation clips (logged, ``best.pt`` saved when the MAE improves); {} without
        validation clips and on ranks other than 0."""
        p = self.progress
        if self.data.val is None or len(self.data.val) == 0 or not self.ranks.is_main:
            return {}
        m = evaluate_clips(self.model, self.data.val, self.feature_cfg, self.task_loss, self.device)
        m = {k: (round(float(v), 5) if isinstance(v, float) else v) for k, v in m.items()}
        rec = {"step": p.step, "elapsed_s": round(self.elapsed_s, 1), **m}
        with (self.out / "metrics.jsonl").open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        log.info(
            "step %d: val loss %.4f, MAE %.2f deg, ACC5 %.3f, ACC10 %.3f, activity F1 %.3f (%d active frames)",
            p.step, m["loss"], m["mae_deg"], m["acc5"], m["acc10"], m["activity_f1"], m["n_active"],
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
        """Write ``latest.pt`` (with optimiser and progress, to resume) or ``best.pt`` (weights only);
        rank 0 only (the others hold the same weights)."""
        p = self.progress
        if not self.ranks.is_main:
            return
        prov = self._provenance(p.last_metrics if metrics is None else metrics)
        if best:
            save_checkpoint(self.best_path, self.model, self.array, self.feature_cfg, self.model_cfg, prov)
            return
        ts = {
            "optimizer": self.opt.state_dict(),
            "amp_scaler": self.precision.state_dict(),
            "torchrun_run_id": torchrun_job_id() or "",
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
            "processes": self.ranks.world_size,
            "device": str(self.device),
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
            progress: show a tqdm progress bar (rank 0 only).
        Returns:
            summary dict: steps, wall time, best and last validation metrics, checkpoint paths.
        """
        cfg, p = self.cfg, self.progress
        self._t_start = time.monotonic()
        log.info(
            "training %s (%d parameters) on %d clips (%d validation), %d steps of %d x %.1f s, %d symmetries, "
            "on %s%s, %d data workers, mixed precision %s",
            cfg.preset, self.model.n_parameters(), self.data.n_train_clips if self.data.train else -1,
            self.data.n_val_clips, cfg.steps, cfg.batch_size, cfg.crop_s, len(self.symmetries), self.device,
            f" x {self.ranks.world_size} processes" if self.ranks.distributed else "", self.workers,
            "on" if self.precision.enabled else "off",
        )  # fmt: skip
        self.model.train()
        bar = _progress_bar(cfg.steps, p.step) if progress and self.ranks.is_main else None
        stopped_early = False
        while p.step < cfg.steps:
            self.step()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{p.ema_loss:.4f}", lr=f"{cfg.learning_rate(p.step):.1e}", refresh=False)
            if p.step % cfg.val_every == 0 or p.step == cfg.steps:
                self.validate_and_save()
                log.info("step %d: train loss %.4f", p.step, p.ema_loss)
            if cfg.max_time_min > 0 and any_rank(self.elapsed_s > 60 * cfg.max_time_min, self.ranks, self.device):
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
        self._batches = None  # ends the data-loading workers
        if self.ranks.is_main and not self.best_path.exists():  # no validation data: the last model is the best
            self.save(best=True)
        if self.ranks.is_main and not self.latest_path.exists():
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
        if self.ranks.is_main:
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
    finished = False
    try:
        summary = Trainer(cfg, out_dir, resume=resume, on_validation=on_validation).run(progress)
        finished = True
        return summary
    finally:
        leave(finished)


def rows_only_difference(
    their_features: FeatureConfig, their_net: ModelConfig, our_features: FeatureConfig, our_net: ModelConfig
) -> str | None:
    """What differs between a checkpoint's features and network and this run's, when the
    checkpoint's weights still fit: "" for nothing, a sentence when only the steered-response
    azimuths differ, None for anything else (the caller refuses).

    The convolutions' weights do not depend on the number of azimuth rows, so a network whose
    features have another ``srp_azimuths`` and whose azimuth pooling brings the same number of
    rows to the GRU (e.g. 128 rows pooled ``[2, 2, 2, 2, 2]`` and 64 rows pooled ``[2, 2, 2, 2,
    1]``: 4 rows) has tensors of the same shapes; every conv block then sees another azimuth
    spacing, which the fine-tuning run must adapt to.
    """
    if their_features == our_features and their_net == our_net:
        return ""
    if (
        their_features.kind != "srp"
        or our_features.kind != "srp"
        or their_features.srp_azimuths == our_features.srp_azimuths
        or len(their_net.freq_pool) != len(our_net.freq_pool)  # another number of blocks
        or their_net.freq_out != our_net.freq_out
    ):
        return None
    same_features = dataclasses.replace(their_features, srp_azimuths=our_features.srp_azimuths) == our_features
    same_net = dataclasses.replace(their_net, n_freq=our_net.n_freq, freq_pool=our_net.freq_pool) == our_net
    if not (same_features and same_net):
        return None
    return (
        f"its features have {their_features.srp_azimuths} candidate azimuths and this run's "
        f"{our_features.srp_azimuths} (azimuth pooling {list(their_net.freq_pool)} -> {list(our_net.freq_pool)}, "
        f"{our_net.freq_out} rows into the GRU in both): the same weights, at another azimuth spacing"
    )

"""Adapt a checkpoint to target recordings and write the adapted checkpoint with provenance."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sst_ros.adapt.batches import SourcePool
from sst_ros.adapt.config import AdaptConfig
from sst_ros.adapt.direction_prior import learn_direction_prior
from sst_ros.adapt.evaluation import evaluate_oracle
from sst_ros.adapt.selection import CRITERION_KEYS, AdaptResult
from sst_ros.adapt.state import STATE_FILE
from sst_ros.adapt.trainer import IwanTrainer
from sst_ros.data.clip_reader import ClipReader
from sst_ros.data.target_set import file_sha256, load_target_set
from sst_ros.errors import DataError
from sst_ros.model.direction_prior import DirectionPrior

__all__ = ["AdaptRun", "adapt_checkpoint", "check_run_dir", "default_run_dir", "source_clips", "split_clips"]


_SELECTION_TEXT = {
    "target": "lowest symmetry-equivariance error on unlabelled target crops among snapshots passing the "
    "collapse checks; no target labels",
    "iwcv": "importance-weighted source validation loss (IWCV), weights from D; no target labels",
    "dev": "deep embedded validation (IWCV with a control variate), weights from D; no target labels",
    "source_val": "source validation loss; no target labels",
    "last": "the final step",
}


def _ess_summary(log: Sequence[dict[str, Any]]) -> dict[str, float] | None:
    """Mean and minimum effective sample fraction of the importance weights over the logged steps."""
    ess = [float(r["w_ess_frac"]) for r in log if "w_ess_frac" in r]
    return {"mean": round(float(np.mean(ess)), 4), "min": round(min(ess), 4)} if ess else None


@dataclass
class AdaptRun:
    """Result of :func:`adapt_checkpoint`: the written file, the result, the trainer, the
    provenance written and the direction prior stored with the model (None = none)."""

    out_path: Path
    result: AdaptResult
    trainer: IwanTrainer
    provenance: dict[str, Any]
    direction_prior: DirectionPrior | None = None


def split_clips(clips: ClipReader, val_fraction: float, seed: int) -> tuple[ClipReader, ClipReader]:
    """Split clips (by clip, not by crop) into training and validation clips, in a random order."""
    if len(clips) < 2:
        raise DataError("need at least 2 labelled synthetic clips (training and validation)")
    idx = np.random.default_rng(seed).permutation(len(clips))
    n_val = min(len(clips) - 1, max(1, int(round(val_fraction * len(clips)))))
    return clips.subset(idx[n_val:]), clips.subset(idx[:n_val])


def source_clips(clips: ClipReader, max_clips: int | None, seed: int) -> ClipReader:
    """A random subset of at most ``max_clips`` clips (all when None or fewer), in their order."""
    if max_clips is None or len(clips) <= max_clips:
        return clips
    return clips.subset(np.sort(np.random.default_rng(seed).choice(len(clips), max_clips, replace=False)))


def default_run_dir(out_path: str | os.PathLike[str]) -> Path:
    """The run folder of an adaptation writing ``out_path``: ``<out>.run`` beside it."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + ".run")


def check_run_dir(run_dir: str | os.PathLike[str], resume: bool) -> None:
    """Refuse to start over an earlier run's state (:class:`DataError`) unless resuming.

    Cheap; ``sst adapt`` calls it before simulating source clips so the refusal comes first.
    """
    if (Path(run_dir) / STATE_FILE).exists() and not resume:
        raise DataError(f"run folder {run_dir} holds an earlier adaptation; pass --resume to continue it or delete it")


def adapt_checkpoint(
    model_path: str | os.PathLike[str] | None,
    target_paths: Sequence[str | os.PathLike[str]],
    source_dirs: Sequence[str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
    cfg: AdaptConfig,
    *,
    val_dirs: Sequence[str | os.PathLike[str]] | None = None,
    oracle_dirs: Sequence[str | os.PathLike[str]] | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    max_source_clips: int | None = 400,
    progress: bool = True,
    source_info: dict[str, Any] | None = None,
    device: str = "auto",
) -> AdaptRun:
    """Adapt the model at ``model_path`` (None = shipped default) to the target recordings.

    Args:
        model_path: source checkpoint.
        target_paths: rosbag2 bags / WAV files / folders of them (unlabelled).
        source_dirs: labelled synthetic clip sets (the task loss).
        out_path: adapted checkpoint to write.
        cfg: adaptation hyper-parameters.
        val_dirs: held-out synthetic clip sets for selection (None = 20 % of the source clips).
        oracle_dirs: labelled target clip sets evaluated for reporting only (never for choosing).
        run_dir: folder for resumable state and logs (None = ``<out>.run``).
        resume: continue a previous run in ``run_dir``; without it an existing state is an error.
        max_source_clips: use a random subset of at most this many synthetic clips (None = all).
        progress: show a tqdm progress bar.
        source_info: how the source clips were obtained, recorded as the provenance's
            ``adaptation.source`` (default: ``{"folders": source_dirs, "simulated": False}``).
        device: where the networks run (``auto``: CUDA when present; :mod:`sst_ros.model.device`);
            the written checkpoint is the same on any device (CPU tensors).
    """
    from sst_ros.model.checkpoint import LoadedModel, load_checkpoint, save_checkpoint

    loaded = load_checkpoint(model_path)
    cfg = cfg.with_training_loss(loaded.provenance.get("train_config"))  # the loss the model was trained on
    out_path = Path(out_path)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(out_path)
    check_run_dir(run_dir, resume)
    fs, frame_s = loaded.feature_cfg.sample_rate_hz, loaded.frame_s
    target = load_target_set(target_paths, loaded.array, fs, min_duration_s=frame_s)
    clips = source_clips(ClipReader(source_dirs, loaded.array, fs, frame_s), max_source_clips, cfg.seed)
    if val_dirs:
        val = source_clips(ClipReader(val_dirs, loaded.array, fs, frame_s), max_source_clips, cfg.seed)
        train = clips
    else:
        train, val = split_clips(clips, 0.2, cfg.seed)
    oracle = ClipReader(oracle_dirs, loaded.array, fs, frame_s) if oracle_dirs else None
    trainer = IwanTrainer(
        loaded.model, loaded.feature_cfg, SourcePool(train), SourcePool(val), target, cfg, run_dir, oracle,
        array=loaded.array, device=device,
    )  # fmt: skip
    if resume:
        trainer.try_resume()
    result = trainer.run(progress=progress)
    chosen = next(h for h in result.history if h["step"] == result.selected_step)
    provenance: dict[str, Any] = {
        "kind": "adapted",
        "adaptation": {
            "method": "importance-weighted adversarial adaptation (IWAN structure), Zhong & Dietzen 2025",
            "variant": cfg.variant,
            "config": cfg.to_dict(),
            "steps": trainer.step,
            "selected_step": result.selected_step,
            "selection": {
                "criterion": cfg.selection,
                "description": _SELECTION_TEXT[cfg.selection],
                "value": chosen.get(CRITERION_KEYS.get(cfg.selection, "step")),
            },
            "guard": result.guard.to_dict() if result.guard is not None else None,
            "shipped": "adapted" if result.shipped_adapted else "unadapted",
            "unadapted_criteria": {k: v for k, v in (result.unadapted or {}).items() if k != "val_losses"},
            "weights_ess_frac": _ess_summary(result.log),
            "source_model": {
                "path": str(loaded.path),
                "sha256": file_sha256(loaded.path) if loaded.path else None,
            },
            "source_clips": [str(d) for d in source_dirs],
            "source": source_info or {"folders": [str(d) for d in source_dirs], "simulated": False},
            "n_source_clips": len(train),
            "n_validation_clips": len(val),
            "target_files": target.provenance(),
            "target_duration_s": round(target.duration_s, 2),
            "history": [{k: v for k, v in h.items() if k != "val_losses"} for h in result.history],
        },
        "source_provenance": loaded.provenance,
    }
    prior = None
    if cfg.direction_prior:
        # the written network on the CPU, without a prior (a copy: the caller's model stays where it is)
        net = copy.deepcopy(result.model).cpu().eval()
        shipped = LoadedModel(net, loaded.array, loaded.feature_cfg, loaded.model_cfg, {})
        decision = learn_direction_prior(shipped, [r.audio for r in target.recordings])
        prior = decision.prior
        provenance["adaptation"]["direction_prior"] = decision.to_dict()
    if oracle is not None:
        o = evaluate_oracle(result.model, oracle, loaded.feature_cfg, prior=prior)  # the written model
        provenance["adaptation"]["oracle_report_only"] = {
            "clips": [str(d) for d in oracle_dirs or []],
            "selected_model": o,
            **result.selection_summary(cfg.selection),
        }
    provenance = json.loads(json.dumps(provenance, default=str))  # plain data only (weights-only loadable)
    save_checkpoint(
        out_path, result.model, loaded.array, loaded.feature_cfg, loaded.model_cfg, provenance, direction_prior=prior
    )
    return AdaptRun(out_path, result, trainer, provenance, prior)

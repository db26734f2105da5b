"""``sst adapt``: adapt a trained tracker to the robot's room from unlabelled recordings.

Example::

    sst adapt --model training/runs/source.pt --target training/bags/target_20260101_120000 \\
        --source-clips training/data/sim_train --out training/runs/adapted.pt --variant iwan
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from sst_ros.adapt.config import SELECTION_CRITERIA, VARIANTS, AdaptConfig
from sst_ros.errors import ConfigError

__all__ = ["config_from_args", "register", "run"]

_LOG = logging.getLogger(__name__)


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``adapt`` subcommand to ``sst``."""
    d = AdaptConfig()
    p = subparsers.add_parser(
        "adapt",
        help="adapt a model to a room from unlabelled recordings (rosbag2 bags or WAV files)",
        description=(
            "Importance-weighted adversarial domain adaptation (Zhong & Dietzen 2025, IWAN structure). "
            "No target label is used; --oracle-clips are only evaluated and reported."
        ),
    )
    p.add_argument("--model", default=None, help="source checkpoint (default: the shipped default model)")
    p.add_argument("--target", nargs="+", required=True, help="rosbag2 bags from record_target, WAV files, or folders")
    p.add_argument(
        "--source-clips",
        nargs="+",
        default=None,
        help="labelled synthetic clip sets (sst simulate); default: the model provenance's training clips",
    )
    p.add_argument("--val-clips", nargs="+", default=None, help="held-out synthetic clip sets (default: 20%% split)")
    p.add_argument("--oracle-clips", nargs="+", default=None, help="labelled target clips: reported, never used")
    p.add_argument("--out", required=True, help="adapted checkpoint to write (.pt)")
    p.add_argument("--variant", choices=VARIANTS, default=d.variant)
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="clips per domain per step")
    p.add_argument("--crop-min-s", type=float, default=d.crop_min_s)
    p.add_argument("--crop-max-s", type=float, default=d.crop_max_s)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--lr-disc", type=float, default=d.lr_disc)
    p.add_argument("--grl-hi", type=float, default=d.grl_hi, help="ceiling of the gradient-reversal coefficient")
    p.add_argument("--grl-lo", type=float, default=d.grl_lo)
    p.add_argument("--adv-weight", type=float, default=d.adv_weight)
    p.add_argument("--weight-mode", choices=("ratio", "prob"), default=d.weight_mode)
    p.add_argument("--max-weight", type=float, default=d.max_weight, help="cap of normalised weights (<=0: none)")
    p.add_argument("--spectrum-loss", choices=("bce", "mse"), default=d.spectrum_loss, help="as in source training")
    p.add_argument("--activity-weight", type=float, default=d.activity_weight)
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--selection", choices=SELECTION_CRITERIA, default=d.selection)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--max-source-clips", type=int, default=400, help="use a random subset of at most this many synthetic clips"
    )
    p.add_argument("--run-dir", default=None, help="resumable state and logs (default: OUT.run)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: fastest when other jobs share the CPU)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def config_from_args(args: argparse.Namespace) -> AdaptConfig:
    """The :class:`AdaptConfig` the options describe."""
    return AdaptConfig(
        variant=args.variant,
        steps=args.steps,
        batch_size=args.batch_size,
        crop_min_s=args.crop_min_s,
        crop_max_s=args.crop_max_s,
        lr=args.lr,
        lr_disc=args.lr_disc,
        grl_hi=args.grl_hi,
        grl_lo=args.grl_lo,
        adv_weight=args.adv_weight,
        weight_mode=args.weight_mode,
        max_weight=args.max_weight if args.max_weight and args.max_weight > 0 else None,
        spectrum_loss=args.spectrum_loss,
        activity_weight=args.activity_weight,
        eval_every=args.eval_every,
        selection=args.selection,
        seed=args.seed,
    )


def _default_source_clips(model: str | None) -> list[str]:
    from sst_ros.model.checkpoint import load_checkpoint

    prov = load_checkpoint(model).provenance
    for key in ("train_clips", "train_dirs", "clip_sets", "data"):
        val = prov.get(key)
        if isinstance(val, str):
            val = [val]
        if isinstance(val, list) and val and all(isinstance(v, str) and Path(v).is_dir() for v in val):
            return val
    raise ConfigError(
        "no --source-clips given and the model's provenance names no existing training clip set; "
        "simulate one with `sst simulate --array <the model's array> --out DIR` and pass --source-clips DIR"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``sst adapt``; returns the exit code."""
    import torch

    from sst_ros.adapt.run import adapt_checkpoint

    torch.set_num_threads(max(1, args.threads))
    cfg = config_from_args(args)
    source = args.source_clips or _default_source_clips(args.model)
    res = adapt_checkpoint(
        args.model,
        args.target,
        source,
        args.out,
        cfg,
        val_dirs=args.val_clips,
        oracle_dirs=args.oracle_clips,
        run_dir=args.run_dir,
        resume=args.resume,
        max_source_clips=args.max_source_clips,
        progress=not args.no_progress,
    )
    a = res.provenance["adaptation"]
    summary = {
        "out": str(res.out_path),
        "variant": a["variant"],
        "steps": a["steps"],
        "selected_step": a["selected_step"],
        "selection": a["selection"],
        "target_duration_s": a["target_duration_s"],
        "target_files": len(a["target_files"]),
    }
    if "oracle_report_only" in a:
        summary["oracle_report_only"] = a["oracle_report_only"]
    print(json.dumps(summary, indent=2))
    return 0

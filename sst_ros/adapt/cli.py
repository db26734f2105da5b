"""``sst adapt``: adapt a trained tracker to the robot's room from unlabelled recordings.

One command (the shipped default model; labelled synthetic source clips simulated for it with
the scene configuration it was trained with and cached, see :mod:`sst_ros.adapt.source_clips`)::

    sst adapt --target training/bags/ --out adapted.pt

Explicit form::

    sst adapt --model training/runs/source.pt --target training/bags/target_20260101_120000 \\
        --source-clips training/data/sim_train --out training/runs/adapted.pt --variant iwan

Ends with a summary (:func:`sst_ros.adapt.summary.format_summary`) on standard output.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from sst_ros.adapt.config import FORMS, SELECTION_CRITERIA, VARIANTS, WEIGHT_INPUTS, WEIGHT_NORMS, AdaptConfig
from sst_ros.adapt.source_clips import DEFAULT_SOURCE_N, DEFAULT_SOURCE_SEED, SourcePlan
from sst_ros.model.device import DEVICE_HELP

if TYPE_CHECKING:
    from sst_ros.geometry import MicArray

__all__ = ["config_from_args", "plan_from_args", "register", "run"]

_MAX_GIVEN_SOURCE_CLIPS = 400  # default subset of --source-clips sets (simulated sets are used whole)
_SIM_OPTIONS = ("source_config", "source_n", "source_seed", "source_duration", "source_workers", "cache_dir")

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
        help="labelled synthetic clip sets (sst simulate); default: simulate them for the model (--source-*) "
        "with the scene config it was trained with, cached in --cache-dir",
    )
    _add_source_options(p)
    p.add_argument("--val-clips", nargs="+", default=None, help="held-out synthetic clip sets (default: 20%% split)")
    p.add_argument("--oracle-clips", nargs="+", default=None, help="labelled target clips: reported, never used")
    p.add_argument("--out", required=True, help="adapted checkpoint to write (.pt)")
    p.add_argument("--variant", choices=VARIANTS, default=d.variant)
    p.add_argument("--form", choices=FORMS, default=d.form, help="where the discriminators look (paper: IWAN's)")
    p.add_argument(
        "--target-stats",
        action="store_true",
        help="re-estimate BatchNorm statistics on the target first (AdaBN; off: it hurt on the benchmark)",
    )
    p.add_argument("--no-augment", action="store_true", help="no symmetry/gain augmentation of synthetic crops")
    p.add_argument("--no-guard", action="store_true", help="ship the selected snapshot even without a clear gain")
    p.add_argument("--guard-min-gain", type=float, default=d.guard_min_gain,
                   help="relative drop of the target equivariance error the guard requires")  # fmt: skip
    p.add_argument(
        "--no-direction-prior", action="store_true",
        help="do not learn the target's direction prior (learnt by default when talkers keep to a clear sector)",
    )  # fmt: skip
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="clips per domain per step")
    p.add_argument("--crop-min-s", type=float, default=d.crop_min_s)
    p.add_argument("--crop-max-s", type=float, default=d.crop_max_s)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--lr-disc", type=float, default=d.lr_disc)
    p.add_argument("--grl-hi", type=float, default=d.grl_hi, help="ceiling of the gradient-reversal coefficient")
    p.add_argument("--grl-lo", type=float, default=d.grl_lo)
    p.add_argument("--adv-weight", type=float, default=d.adv_weight)
    p.add_argument("--weight-mode", choices=("prob", "ratio"), default=d.weight_mode)
    p.add_argument("--weight-norm", choices=WEIGHT_NORMS, default=d.weight_norm)
    p.add_argument(
        "--weight-input", choices=WEIGHT_INPUTS, default=d.weight_input,
        help="what the weighting discriminator reads: the embeddings, or the decoded direction and activity",
    )  # fmt: skip
    p.add_argument("--entropy-weight", type=float, default=d.entropy_weight,
                   help="spectrum entropy on active target frames (IWAN's entropy term); 0 = off")  # fmt: skip
    p.add_argument("--equivariance-weight", type=float, default=d.equivariance_weight,
                   help="symmetry equivariance on target clips; 0 = off (trains what selection measures)")  # fmt: skip
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--grad-clip-norm", type=float, default=d.grad_clip_norm, help="<= 0: no clipping")
    p.add_argument("--max-weight", type=float, default=d.max_weight, help="cap of normalised weights (<=0: none)")
    p.add_argument("--spectrum-loss", choices=("bce", "mse"), default=None, help="default: the model's training loss")
    p.add_argument("--spectrum-weight", type=float, default=None, help="default: the model's training weight")
    p.add_argument("--activity-weight", type=float, default=None, help="default: the model's training weight")
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--selection", choices=SELECTION_CRITERIA, default=d.selection)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--max-source-clips",
        type=int,
        default=None,
        help=f"use a random subset of at most this many synthetic clips (default: {_MAX_GIVEN_SOURCE_CLIPS} of "
        "--source-clips sets; all simulated clips)",
    )
    p.add_argument("--run-dir", default=None, help="resumable state and logs (default: OUT.run)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: fastest when other jobs share the CPU)"
    )
    p.add_argument("--device", default="auto", help=DEVICE_HELP + " (default auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def config_from_args(args: argparse.Namespace) -> AdaptConfig:
    """The :class:`AdaptConfig` the options describe."""
    return AdaptConfig(
        variant=args.variant,
        form=args.form,
        target_stats=args.target_stats,
        augment=not args.no_augment,
        guard=not args.no_guard,
        guard_min_gain=args.guard_min_gain,
        direction_prior=not args.no_direction_prior,
        weight_norm=args.weight_norm,
        weight_input=args.weight_input,
        entropy_weight=args.entropy_weight,
        equivariance_weight=args.equivariance_weight,
        warmup_steps=args.warmup_steps,
        grad_clip_norm=args.grad_clip_norm if args.grad_clip_norm and args.grad_clip_norm > 0 else None,
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
        spectrum_weight=args.spectrum_weight,
        activity_weight=args.activity_weight,
        eval_every=args.eval_every,
        selection=args.selection,
        seed=args.seed,
    )


def _add_source_options(p: argparse.ArgumentParser) -> None:
    """Options of the simulated source clips (used when no --source-clips are given)."""
    g = p.add_argument_group("simulated source clips (without --source-clips)")
    g.add_argument(
        "--source-config",
        default=None,
        help="scene config YAML (default: the model's provenance, its training clip set's sim_config.yaml, "
        "else config/sim/default.yaml with a warning)",
    )
    g.add_argument("--source-n", type=int, default=None, help=f"number of clips (default {DEFAULT_SOURCE_N})")
    g.add_argument("--source-seed", type=int, default=None, help=f"base seed (default {DEFAULT_SOURCE_SEED})")
    g.add_argument(
        "--source-duration",
        type=float,
        default=None,
        help="clip length in s (default: the model's training clips', else the scene config's)",
    )
    g.add_argument("--source-workers", type=int, default=None, help="simulation processes (default: CPUs, at most 4)")
    g.add_argument(
        "--cache-dir",
        default=None,
        help="folder of cached clip sets (default: training/data in the source tree, else $SST_CACHE_DIR or "
        "~/.cache/sst_ros)",
    )


def plan_from_args(args: argparse.Namespace, provenance: dict[str, Any], array: MicArray) -> SourcePlan:
    """The simulated source clips the options ask for, for a checkpoint's provenance and geometry."""
    from sst_ros.adapt.source_clips import plan_source_clips

    return plan_source_clips(
        provenance,
        array,
        n=args.source_n,
        seed=args.source_seed,
        duration_s=args.source_duration,
        cache_dir=args.cache_dir,
        scene_config=args.source_config,
    )


def _source(args: argparse.Namespace) -> tuple[list[str], dict[str, Any], int]:
    """Source clip folders, their provenance record and the subset size, from --source-clips or simulated."""
    if args.source_clips:
        ignored = [f"--{o.replace('_', '-')}" for o in _SIM_OPTIONS if getattr(args, o) is not None]
        if ignored:
            _LOG.warning("%s ignored: --source-clips given", ", ".join(ignored))
        info = {"folders": list(args.source_clips), "simulated": False}
        return list(args.source_clips), info, args.max_source_clips or _MAX_GIVEN_SOURCE_CLIPS
    from sst_ros.adapt.source_clips import ensure_source_clips
    from sst_ros.model.checkpoint import load_checkpoint

    loaded = load_checkpoint(args.model)
    plan = plan_from_args(args, loaded.provenance, loaded.array)
    clips = ensure_source_clips(plan, workers=args.source_workers, progress=not args.no_progress)
    return [str(clips.folder)], clips.provenance(), args.max_source_clips or plan.n


def run(args: argparse.Namespace) -> int:
    """Run ``sst adapt``; prints the closing summary and returns the exit code."""
    import torch

    from sst_ros.adapt.run import adapt_checkpoint, check_run_dir, default_run_dir
    from sst_ros.adapt.summary import format_summary
    from sst_ros.data.target_set import find_recordings
    from sst_ros.model.device import check_device_spec, resolve_device

    torch.set_num_threads(max(1, args.threads))
    cfg = config_from_args(args)
    # Cheap refusals first: they must not wait for a simulation.
    check_run_dir(args.run_dir or default_run_dir(args.out), args.resume)
    if check_device_spec(args.device) != "auto":
        resolve_device(args.device)  # a GPU that is not there is refused now, not after a simulation
    find_recordings(args.target)
    source, source_info, max_clips = _source(args)
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
        max_source_clips=max_clips,
        progress=not args.no_progress,
        source_info=source_info,
        device=args.device,
    )
    print(format_summary(res), flush=True)
    return 0

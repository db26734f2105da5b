"""``sst train``: train the CRNN tracker on clip sets or on-the-fly simulation.

Examples::

    sst train --array respeaker_usb_v2 --data training/data/train --val training/data/val \\
        --config training/configs/default.yaml --out training/runs/default
    sst train --out training/runs/default --resume          # continue an interrupted run
    torchrun --nproc-per-node 4 -m sst_ros.cli train --device cuda --data ... --out ...  # 4 GPUs (DDP)

Under torchrun, --batch-size is the global batch (shared by the processes) and only rank 0
writes the run folder and prints.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

import yaml

from sst_ros.errors import ConfigError
from sst_ros.model.device import AMP_MODES, DEVICE_HELP

__all__ = ["register", "run"]

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    p = subparsers.add_parser(
        "train",
        help="train the CRNN tracker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="training config YAML (TrainConfig fields); flags below override it")
    p.add_argument("--array", help="array name or geometry YAML (default: respeaker_usb_v2)")
    p.add_argument("--data", help="training clip-set folder(s), comma separated")
    p.add_argument("--val", help="validation clip-set folder(s), comma separated (default: hold out 5%%)")
    p.add_argument("--simulate", metavar="SCENE_YAML", help="simulate training clips on the fly instead of --data")
    p.add_argument("--out", required=True, help="run folder (config.yaml, latest.pt, best.pt, metrics.jsonl)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from latest.pt")
    p.add_argument("--steps", type=int, help="optimisation steps")
    p.add_argument("--batch-size", type=int, help="clips per step")
    p.add_argument("--preset", choices=["cpu", "tiny", "paper"], help="model size")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--threads", type=int, help="torch threads per process (default 2)")
    p.add_argument("--device", help=DEVICE_HELP + " (default auto)")
    p.add_argument("--amp", choices=AMP_MODES, help="mixed precision: auto (on CUDA only, the default), on, off")
    p.add_argument("--workers", type=int, help="data-loading processes (default: 0 on a CPU, 4 on CUDA)")
    p.add_argument("--max-time-min", type=float, help="stop (with checkpoints) after this many minutes")
    p.add_argument("--init", metavar="CKPT", help="start from this checkpoint's weights (fine-tuning)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the config from YAML + flags, train, print the summary; returns the exit code."""
    from sst_ros.train.loop import TrainConfig, train

    out = Path(args.out)
    if args.resume and args.config is None and (out / "config.yaml").exists():
        cfg = TrainConfig.from_yaml(out / "config.yaml")
    elif args.config:
        cfg = TrainConfig.from_yaml(args.config)
    else:
        cfg = TrainConfig()
    overrides = {
        "array": args.array,
        "data": args.data.split(",") if args.data else None,
        "val_data": args.val.split(",") if args.val else None,
        "simulate_config": args.simulate,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "preset": args.preset,
        "seed": args.seed,
        "num_threads": args.threads,
        "device": args.device,
        "amp": args.amp,
        "workers": args.workers,
        "max_time_min": args.max_time_min,
        "init_from": args.init,
    }
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, v)
    cfg.__post_init__()
    if not cfg.data and not cfg.simulate_config:
        raise ConfigError("sst train: give --data DIR[,DIR] (clip sets from `sst simulate`) or --simulate SCENE_YAML")
    main = _torchrun_rank() == 0
    if not main:  # the other processes of a torchrun group: warnings and errors only
        logging.getLogger().setLevel(logging.WARNING)
    summary = train(cfg, out, resume=args.resume, progress=not args.no_progress)
    if main:
        print(yaml.safe_dump({"summary": json.loads(json.dumps(summary))}, sort_keys=False))
    return 0


def _torchrun_rank() -> int:
    """This process's rank in a torchrun group (``RANK``; 0 outside torchrun)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0

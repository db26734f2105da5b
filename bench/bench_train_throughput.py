"""Training throughput: optimisation steps per second of a preset on a device.

Runs real training steps of ``sst train`` (batches built as in a run, forward, backward, Adam)
on a clip set, after warm-up steps that are not timed, and prints steps per second and
training examples per second. With ``--device cuda`` it is the GPU figure of the scale-out
issue (goal: the ``paper`` preset at 20x this machine's CPU steps per second); the CPU figure
is the reference. Nothing is written but a scratch run folder, removed at the end.

    python bench/bench_train_throughput.py --data training/data/default_val --preset paper --device cpu
    python bench/bench_train_throughput.py --data DIR --preset paper --device cuda --workers 8
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="clip set (sst simulate)")
    ap.add_argument("--config", default=str(REPO / "training/configs/default.yaml"), help="training config")
    ap.add_argument("--preset", default="paper", choices=["cpu", "tiny", "paper"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--amp", default="auto", choices=["auto", "on", "off"])
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    args = ap.parse_args()

    import torch

    from sst_ros.train.config import TrainConfig
    from sst_ros.train.loop import Trainer

    cfg = TrainConfig.from_yaml(args.config)
    cfg.data, cfg.val_data, cfg.preset = [args.data], [], args.preset
    cfg.device, cfg.amp, cfg.workers = args.device, args.amp, args.workers
    cfg.batch_size, cfg.num_threads, cfg.steps = args.batch_size, args.threads, args.warmup + args.steps
    cfg.__post_init__()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run")
        trainer.model.train()
        for _ in range(args.warmup):
            trainer.step()
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            trainer.step()
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        trainer._batches = None
    rate = args.steps / dt
    print(
        f"{args.preset} preset ({trainer.model.n_parameters()} parameters), batch {cfg.batch_size} x {cfg.crop_s:g} s, "
        f"on {trainer.device} (mixed precision {'on' if trainer.precision.enabled else 'off'}, "
        f"{trainer.workers} data workers, {cfg.num_threads} threads): {rate:.3f} steps/s "
        f"({dt / args.steps:.2f} s/step), {rate * cfg.batch_size:.1f} examples/s"
    )


if __name__ == "__main__":
    main()

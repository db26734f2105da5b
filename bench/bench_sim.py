#!/usr/bin/env python3
"""Benchmark: simulated scenes per second (prints the figure; not a timed test).

Default: 10 s scenes of the default 4-microphone array (ReSpeaker USB v2), the shipped scene
config (RT60 0.2 to 0.8 s), 2 worker processes, written to a temporary clip set exactly as
``sst simulate`` does (WAV + CSV). A warm-up of a few scenes fills the espeak-ng cache and
loads the corpora first, so the figure is the steady-state rate.

    python bench/bench_sim.py [--n 40] [--workers 2] [--duration 10] [--array respeaker_usb_v2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from sst_ros.geometry import load_array
from sst_ros.sim.cli import run_simulate
from sst_ros.sim.config import load_scene_config


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=40, help="scenes to time")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--duration", type=float, default=10.0, help="scene length in s")
    p.add_argument("--array", default="respeaker_usb_v2")
    p.add_argument("--config", default=None, help="scene config (default: config/sim/default.yaml)")
    p.add_argument("--warmup", type=int, default=4)
    args = p.parse_args()
    cfg = load_scene_config(args.config)
    array = load_array(args.array)
    with tempfile.TemporaryDirectory(prefix="bench_sim_") as tmp:
        if args.warmup:
            run_simulate(
                cfg,
                array,
                args.warmup,
                os.path.join(tmp, "warm"),
                workers=args.workers,
                seed=999,
                duration_s=args.duration,
                progress=False,
            )
        t0 = time.perf_counter()
        run_simulate(
            cfg,
            array,
            args.n,
            os.path.join(tmp, "set"),
            workers=args.workers,
            seed=0,
            duration_s=args.duration,
            progress=False,
        )
        elapsed = time.perf_counter() - t0
    rate = args.n / elapsed
    print(
        f"bench_sim: {rate:.2f} scenes/s ({args.n} scenes of {args.duration:g} s, {array.n_mics} mics "
        f"({array.name}), RT60 {cfg.room.rt60_s[0]:g}-{cfg.room.rt60_s[1]:g} s, {args.workers} workers, "
        f"{os.cpu_count()} CPUs; {elapsed:.1f} s wall)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

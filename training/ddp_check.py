"""Does data-parallel training reach the validation loss of one process? (issue: training that scales)

Trains the default recipe's network (``training/configs/default.yaml``) for ``--steps`` steps
with the same global batch, per seed three times: as one process with 2 threads, as one
process with 1 thread, and as ``torchrun --nproc-per-node 2`` (gloo, one thread each). It prints
the validation loss of each run and two noise levels a DDP-minus-single gap must be compared
with: the seed-to-seed spread, and the run-to-run noise of one process on the same seed, which
float rounding alone makes (the thread count changes the order of the sums, and training
amplifies such differences). Resumable: finished runs are read back.

    python training/ddp_check.py --data training/data/adapt_source_respeaker_usb_v2_7aa3a5c7d832 \\
        --val training/data/default_val --out training/runs/ddp_check
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("w") as fh:
        rc = subprocess.run(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
    if rc != 0:
        sys.exit(f"failed ({rc}): {' '.join(cmd)}; see {log}")


def _val_loss(run: Path) -> float:
    return float(json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["loss"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--val-clips", type=int, default=60)
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = out / "config.yaml"
    text = (REPO / "training/configs/default.yaml").read_text()
    cfg.write_text(text + f"\nval_clips: {args.val_clips}\nval_every: {args.steps}\nmax_time_min: 0\n")
    sst = [sys.executable, "-m", "sst_ros.cli", "train"]
    torchrun = [shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun")), "--standalone",
                "--nproc-per-node", "2", "-m", "sst_ros.cli", "train"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        common = ["--config", str(cfg), "--array", "respeaker_usb_v2", "--data", args.data, "--val", args.val,
                  "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--seed", str(seed),
                  "--device", "cpu", "--no-progress"]  # fmt: skip
        losses = {}
        for kind, launcher, threads in (("single", sst, "2"), ("single_t1", sst, "1"), ("ddp2", torchrun, "1")):
            run = out / f"{kind}_seed{seed}"
            if not (run / "summary.json").exists():
                shutil.rmtree(run, ignore_errors=True)
                _run([*launcher, *common, "--threads", threads, "--out", str(run)], env, out / f"{kind}_seed{seed}.log")
            losses[kind] = _val_loss(run)
            wall = json.loads((run / "summary.json").read_text())["wall_s"]
            print(f"seed {seed} {kind:9s}: validation loss {losses[kind]:.5f} ({wall:.0f} s)", flush=True)
        rows.append(losses)
    singles = [r["single"] for r in rows]
    gaps = [r["ddp2"] - r["single"] for r in rows]
    rounding = [r["single_t1"] - r["single"] for r in rows]
    sd = statistics.stdev(singles) if len(singles) > 1 else float("nan")
    mean = statistics.mean(singles)
    print(f"\nsingle process, {len(rows)} seeds: validation loss {mean:.5f}, seed-to-seed SD {sd:.5f}")
    print("single, 1 thread minus 2 threads, same seed (float rounding only): "
          + ", ".join(f"{g:+.5f}" for g in rounding) + f"; largest |difference| {max(abs(g) for g in rounding):.5f}")
    print("DDP (2 x gloo) minus single, same seed: " + ", ".join(f"{g:+.5f}" for g in gaps)
          + f"; largest |gap| {max(abs(g) for g in gaps):.5f}")
    mean_gap = statistics.mean(gaps)
    print(f"mean DDP - single over the seeds: {mean_gap:+.5f} (a systematic difference would show here)")


if __name__ == "__main__":
    main()

"""Accuracy goal of issue 4: the default model against the classical baselines on held-out sets.

Simulates two held-out clip sets with seeds the training recipe never uses (``sst simulate``):

- ``default``: the shipped scene distribution (``bench/sim_heldout_default.yaml``);
- ``hard``: RT60 0.6-1.0 s and SNR 0-10 dB (``bench/sim_heldout_hard.yaml``);

then runs ``sst evaluate`` (the model and SRP-PHAT, MUSIC, NormMUSIC on the same 100 ms frames)
on each and prints MAE and ACC10 per method and whether the goals hold:

- on each set, model MAE <= 0.5 x the best baseline's MAE;
- on the default set, >= 85 % of the active frames within 10 degrees (ACC10 >= 0.85).

Usage (about 10 minutes on 2 cores with the defaults)::

    python bench/bench_accuracy.py [--model PATH] [--n 40] [--duration 6] [--out /tmp/sst_bench_accuracy]

Exit code 0 when every goal holds, 1 otherwise. Existing sets in ``--out`` are reused when they
hold ``--n`` clips (``--fresh`` re-simulates). Reports: ``<out>/<set>/report/report.md``.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SETS = {
    # name: (config, seed) - seeds far from the training recipe's
    "default": (HERE / "sim_heldout_default.yaml", 7_100_003),
    "hard": (HERE / "sim_heldout_hard.yaml", 7_200_003),
}
MAE_RATIO_GOAL = 0.5
ACC10_GOAL = 0.85


def _simulate(name: str, cfg_path: Path, seed: int, args: argparse.Namespace, out: Path) -> Path:
    set_dir = out / name / "clips"
    have = len(list(set_dir.glob("*.csv"))) if set_dir.is_dir() else 0
    if have >= args.n and not args.fresh:
        print(f"[{name}] reusing {have} clips in {set_dir}")
        return set_dir
    cfg = yaml.safe_load(cfg_path.read_text()) or {}
    cfg["duration_s"] = float(args.duration)
    run_cfg = out / name / "sim.yaml"
    run_cfg.parent.mkdir(parents=True, exist_ok=True)
    run_cfg.write_text(yaml.safe_dump(cfg, sort_keys=False))
    if set_dir.exists():
        import shutil

        shutil.rmtree(set_dir)
    cmd = [
        sys.executable, "-m", "sst_ros.cli", "simulate",
        "--config", str(run_cfg), "--array", args.array, "--n", str(args.n),
        "--out", str(set_dir), "--workers", str(args.workers), "--seed", str(seed),
    ]  # fmt: skip
    print(f"[{name}] simulating {args.n} x {args.duration:g} s: {' '.join(cmd[2:])}", flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"[{name}] simulated in {time.perf_counter() - t0:.0f} s", flush=True)
    return set_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="checkpoint (default: the shipped default model)")
    ap.add_argument("--n", type=int, default=40, help="clips per set (default: %(default)s)")
    ap.add_argument("--duration", type=float, default=6.0, help="clip length, s (default: %(default)s)")
    ap.add_argument("--array", default="respeaker_usb_v2", help="array of the simulated sets")
    ap.add_argument("--workers", type=int, default=2, help="simulation processes (default: %(default)s)")
    ap.add_argument("--baselines", default="srp_phat,music,normmusic", help="baselines to compare")
    ap.add_argument("--sets", default="default,hard", help="sets to run (default: %(default)s)")
    ap.add_argument("--out", default=os.environ.get("SST_BENCH_OUT", "/tmp/sst_bench_accuracy"), help="work folder")
    ap.add_argument("--fresh", action="store_true", help="re-simulate even when the sets exist")
    ap.add_argument("--plots", type=int, default=6, help="per-clip plots per set (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    args = ap.parse_args(argv)

    import torch

    from sst_ros.train.evaluate import MODEL_METHOD, evaluate
    from sst_ros.train.report import METRIC_COLUMNS, METRIC_KEYS, metric_cells, metric_header, write_json

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    names = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in names if s not in SETS]
    if unknown:
        ap.error(f"unknown set(s) {unknown}; choose from {list(SETS)}")
    summary: dict[str, dict] = {}
    goals: list[tuple[str, bool]] = []
    t_start = time.perf_counter()
    for name in names:
        cfg_path, seed = SETS[name]
        clips = _simulate(name, cfg_path, seed, args, out)
        t0 = time.perf_counter()
        report = evaluate(
            args.model, clips, out / name / "report", baselines=args.baselines, max_plots=args.plots, progress=False
        )
        print(f"[{name}] evaluated {report['n_clips']} clips in {time.perf_counter() - t0:.0f} s", flush=True)
        methods = report["methods"]
        summary[name] = {m: {k: r["pooled"][k] for k in (*METRIC_KEYS, "n_active")}
                         for m, r in methods.items()}  # fmt: skip
        baseline_mae = {m: r["pooled"]["mae_deg"] for m, r in methods.items() if m != MODEL_METHOD}
        model = methods[MODEL_METHOD]["pooled"]
        if baseline_mae:  # --baselines '': the model's figures only; the ratio goal needs a baseline
            best = min(baseline_mae, key=lambda m: baseline_mae[m])
            ratio = model["mae_deg"] / baseline_mae[best] if baseline_mae[best] > 0 else math.inf
            summary[name]["goal"] = {"best_baseline": best, "mae_ratio": ratio}
            text = (f"{name}: model MAE {model['mae_deg']:.2f} <= {MAE_RATIO_GOAL} x best baseline "
                    f"({best} {baseline_mae[best]:.2f}) [ratio {ratio:.2f}]")  # fmt: skip
            goals.append((text, ratio <= MAE_RATIO_GOAL))
        else:
            print(f"[{name}] no baseline run: the MAE ratio goal is not checked", flush=True)
        if name == "default":
            goals.append((f"{name}: model ACC10 {100 * model['acc10']:.1f} % >= {100 * ACC10_GOAL:.0f} %",
                          model["acc10"] >= ACC10_GOAL))  # fmt: skip

    print()
    print(f"{'set':<8} {'method':<10} {metric_header(METRIC_COLUMNS)} {'active frames':>14}")
    for name, res in summary.items():
        for m, r in res.items():
            if m == "goal":
                continue
            print(f"{name:<8} {m:<10} {metric_cells(r, METRIC_COLUMNS)} {r['n_active']:14d}")
    print()
    for text, ok in goals:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    ok_all = all(ok for _, ok in goals)
    verdict = ("all hold" if ok_all else "NOT met") if goals else "none checked (the ratio goal needs a baseline)"
    print(f"\naccuracy goals: {verdict} (total {time.perf_counter() - t_start:.0f} s)")
    write_json(out / "summary.json", {"sets": summary, "goals": [[t, ok] for t, ok in goals]})
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())

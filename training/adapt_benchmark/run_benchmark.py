#!/usr/bin/env python3
"""Run the adaptation benchmark: every row on every domain and seed, every snapshot scored.

Each adaptive run is ``sst adapt``'s own function (:func:`sst_ros.adapt.run.adapt_checkpoint`)
on the domain's unlabelled ``pool/`` with the shipped model and the source clips ``sst adapt``
simulates for it (cached). After the run, every snapshot the run kept, the unadapted model and
the model the run wrote are scored on the domain's labelled ``test/`` clips
(:mod:`scoring`); the labels are read only here, after the run has chosen. One JSON per run
under ``--runs`` (``<domain>/<row>/seed<k>.json``); a finished run is skipped, an interrupted
one resumes from its state, so the script can be re-run after a stop.

Usage:
    python training/adapt_benchmark/run_benchmark.py --data training/data/adapt_benchmark \\
        --runs training/runs/adapt_benchmark [--domains ...] [--rows ...] [--seeds 0 1 2] \\
        [--steps 200] [--eval-every 40] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rows import ADAPTIVE_ROWS, row_config  # noqa: E402
from scoring import TestSet, constant_errors, load_test_set, model_errors, normmusic_errors  # noqa: E402

from sst_ros.adapt.config import SELECTION_CRITERIA, AdaptConfig  # noqa: E402
from sst_ros.adapt.selection import select_step  # noqa: E402
from sst_ros.adapt.trainer import IwanTrainer  # noqa: E402

DOMAINS = ("device", "sector", "acoustic", "combined")
SECTOR_DEG = 35.0  # the sector domains' half-width (build_domains.py)
_TESTS: dict[str, TestSet] = {}


def _test(data: Path, domain: str) -> TestSet:
    from sst_ros.model.checkpoint import load_checkpoint

    if domain not in _TESTS:
        _TESTS[domain] = load_test_set(data / domain / "test", load_checkpoint(None))
    return _TESTS[domain]


def source_clip_folder() -> Path:
    """The source clips ``sst adapt`` uses for the shipped model (simulated once, cached)."""
    from sst_ros.adapt.source_clips import ensure_source_clips, plan_source_clips
    from sst_ros.model.checkpoint import load_checkpoint

    loaded = load_checkpoint(None)
    return ensure_source_clips(plan_source_clips(loaded.provenance, loaded.array), progress=False).folder


def fixed_rows(data: Path, domain: str, out: Path) -> None:
    """Score the fixed rows of ``domain`` into ``out`` (skipped when present)."""
    if out.exists():
        return
    from sst_ros.model.checkpoint import load_checkpoint

    test = _test(data, domain)
    errs = {
        "constant": constant_errors(test),
        "normmusic": normmusic_errors(test),
        "unadapted": model_errors(load_checkpoint(None).model, test),
    }
    rec = {"domain": domain, "clip_n": test.n_active.tolist(), **{k: v.round(3).tolist() for k, v in errs.items()}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rec))
    maes = ", ".join(f"{k} {v.sum() / test.n_active.sum():.2f}" for k, v in errs.items())
    print(f"[{domain}] fixed rows (MAE, deg): {maes}", flush=True)


def prior_row(data: Path, domain: str, out: Path) -> None:
    """Score the ``prior`` row of ``domain`` into ``out`` (skipped when present): the shipped
    network unchanged, with the direction prior ``sst adapt`` estimates from the unlabelled pool
    (:mod:`sst_ros.adapt.direction_prior`; the unadapted model's errors when it decides against one)."""
    if out.exists():
        return
    from sst_ros.adapt.direction_prior import learn_direction_prior
    from sst_ros.data.target_set import load_target_set
    from sst_ros.model.checkpoint import load_checkpoint

    loaded = load_checkpoint(None)
    loaded.direction_prior = None  # the network's own estimates (the shipped file has no prior)
    fs, frame_s = loaded.feature_cfg.sample_rate_hz, loaded.frame_s
    pool = load_target_set([data / domain / "pool"], loaded.array, fs, min_duration_s=frame_s)
    decision = learn_direction_prior(loaded, [r.audio for r in pool.recordings])
    test = _test(data, domain)
    errs = model_errors(loaded.model, test, decision.prior)
    out.write_text(json.dumps({"domain": domain, "prior": errs.round(3).tolist(), "decision": decision.to_dict()}))
    print(f"[{domain}] prior row: MAE {errs.sum() / test.n_active.sum():.2f} deg; {decision.reason}", flush=True)


def _direction(az: np.ndarray, active: np.ndarray) -> float:
    """Circular mean (degrees) of a crop's active label azimuths (NaN when none)."""
    a = np.radians(az[active & np.isfinite(az)])
    return float(np.degrees(np.arctan2(np.sin(a).mean(), np.cos(a).mean()))) if a.size else float("nan")


@torch.no_grad()
def weight_diagnostics(trainer: IwanTrainer) -> dict[str, float]:
    """How the final weighting discriminator treats synthetic validation crops inside the
    frontal sector: AUROC of ``D`` for in-sector crops and their share of the weight against
    their share of the crops (uses synthetic labels only)."""
    from sst_ros.adapt.weights import importance_weights

    vb = trainer.val_batch
    d = trainer.source_target_probability(vb).numpy()
    dirs = np.array([_direction(vb.azimuth_deg[i], vb.active[i]) for i in range(vb.size)])
    ok = np.isfinite(dirs)
    inside = np.abs(dirs[ok]) <= SECTOR_DEG
    d = d[ok]
    w = importance_weights(torch.from_numpy(d), trainer.cfg.weight_mode).numpy()
    out = {"in_sector_prior_share": float(inside.mean()) if inside.size else float("nan")}
    out["in_sector_weight_share"] = float(w[inside].sum() / w.sum()) if inside.any() else float("nan")
    if inside.any() and (~inside).any():
        ranks = np.argsort(np.argsort(d)) + 1
        n1, n0 = int(inside.sum()), int((~inside).sum())
        out["in_sector_auroc"] = float((ranks[inside].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
    return out


def adaptive_run(task: tuple[str, str, int, dict[str, Any], str, str, str]) -> str:
    """One (domain, row, seed) run; writes its JSON. Returns a one-line summary."""
    domain, row, seed, common, data_s, runs_s, source_s = task
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    from sst_ros.adapt.run import adapt_checkpoint
    from sst_ros.model.checkpoint import load_checkpoint

    data, runs = Path(data_s), Path(runs_s)
    out = runs / domain / row / f"seed{seed}.json"
    if out.exists():
        return f"[{domain}/{row}/seed{seed}] done earlier"
    cfg = AdaptConfig(**row_config(row, seed=seed, **common))
    t0 = time.monotonic()
    res = adapt_checkpoint(
        None, [data / domain / "pool"], [source_s], out.with_suffix(".pt"), cfg,
        run_dir=out.with_suffix(".run"), resume=True, max_source_clips=None, progress=False,
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    test = _test(data, domain)
    tr = res.trainer
    history = []
    net = load_checkpoint(None).model
    for h in res.result.history:
        net.load_state_dict(tr.snapshots[h["step"]])
        history.append({**{k: v for k, v in h.items() if k != "val_losses"},
                        "clip_err": model_errors(net, test).round(3).tolist()})  # fmt: skip
    shipped = model_errors(res.result.model, test, res.direction_prior)  # as written: with its prior, if any
    rec = {
        "domain": domain, "row": row, "seed": seed, "config": cfg.to_dict(), "adapt_s": round(elapsed, 1),
        "history": history,
        "selected": {c: select_step(res.result.history, c, tr.reference()) for c in SELECTION_CRITERIA},
        "ess_frac": res.provenance["adaptation"].get("weights_ess_frac"),
        "guard": res.result.guard.to_dict() if res.result.guard is not None else None,
        "shipped": "adapted" if res.result.shipped_adapted else "unadapted",
        "shipped_err": shipped.round(3).tolist(),
        "direction_prior": res.provenance["adaptation"].get("direction_prior"),
        "weights": weight_diagnostics(tr),
    }  # fmt: skip
    out.write_text(json.dumps(rec, default=float))
    out.with_suffix(".pt").unlink(missing_ok=True)  # the model is not needed; the run folder keeps the state
    mae = shipped.sum() / test.n_active.sum()
    return f"[{domain}/{row}/seed{seed}] {elapsed / 60:.1f} min, written model MAE {mae:.2f} deg ({rec['shipped']})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("training/data/adapt_benchmark"))
    p.add_argument("--runs", type=Path, default=Path("training/runs/adapt_benchmark"))
    p.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=DOMAINS)
    p.add_argument("--rows", nargs="*", default=list(ADAPTIVE_ROWS), choices=list(ADAPTIVE_ROWS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--eval-every", type=int, default=40)
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (one torch thread each)")
    args = p.parse_args(argv)
    t0 = time.monotonic()
    torch.set_num_threads(max(1, args.jobs))
    for d in args.domains:
        if not (args.data / d / "meta.json").is_file():
            print(f"domain {d} missing under {args.data}: run build_domains.py first", file=sys.stderr)
            return 2
        fixed_rows(args.data, d, args.runs / d / "fixed.json")
        prior_row(args.data, d, args.runs / d / "prior.json")
    if not args.rows:  # the fixed rows only
        print(f"fixed rows scored in {(time.monotonic() - t0) / 60:.1f} min; JSON in {args.runs}")
        return 0
    source = source_clip_folder()
    common = {"steps": args.steps, "eval_every": args.eval_every}
    # Cheap rows first, then seed by seed, so a stop leaves whole seeds behind.
    tasks = [(d, r, s, common, str(args.data), str(args.runs), str(source))
             for s in args.seeds for r in args.rows for d in args.domains]  # fmt: skip
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        for line in pool.imap_unordered(adaptive_run, tasks):
            print(f"{line}  (total {(time.monotonic() - t0) / 60:.1f} min)", flush=True)
    print(f"benchmark runs finished in {(time.monotonic() - t0) / 60:.1f} min; fixed-row and run JSON in {args.runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

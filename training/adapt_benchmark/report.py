#!/usr/bin/env python3
"""Tables of the adaptation benchmark from the run JSON of ``run_benchmark.py``.

Per domain and row: MAE (degrees, frame-pooled over the domain's test clips, mean over the
seeds that finished), the seed-to-seed spread (standard deviation of the per-seed MAE), and
the paired bootstrap 95 % interval of the difference to the unadapted model (the same clips
resampled for both; per-clip errors averaged over seeds first). A difference is called a
finding only when its interval excludes 0 and it exceeds the seed-to-seed spread.

Selection and guard: for every run, the MAE of the snapshot each label-free criterion chose
against the best snapshot (regret, degrees; the oracle uses labels and is only reported), the
Spearman correlation of the target criterion with the oracle MAE over snapshots, and how often
the product row wrote a model worse than the unadapted one.

Usage:
    python training/adapt_benchmark/report.py --runs training/runs/adapt_benchmark \\
        --results training/adapt_benchmark/results
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # rows.py beside this script
from rows import ADAPTIVE_ROWS, FIXED_ROWS  # noqa: E402

ROW_ORDER = (*FIXED_ROWS, *ADAPTIVE_ROWS)  # every row rows.py defines, in its order
CRITERIA = ("target", "iwcv", "dev", "source_val", "last")
N_BOOT = 2000


def bootstrap_diff(err_a: np.ndarray, err_b: np.ndarray, n: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """Paired bootstrap of ``MAE_a - MAE_b`` over clips: (difference, 2.5 %, 97.5 %), degrees."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(n), size=(N_BOOT, len(n)))
    tot = n[idx].sum(1)
    d = (err_a[idx].sum(1) - err_b[idx].sum(1)) / tot
    return float((err_a.sum() - err_b.sum()) / n.sum()), float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))


def spearman(a: list[float], b: list[float]) -> float:
    """Rank correlation (NaN with fewer than 3 points or a constant input)."""
    fa, fb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(fa) & np.isfinite(fb)
    a, b = list(fa[ok]), list(fb[ok])
    if len(a) < 3:
        return float("nan")
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def load_runs(runs: Path) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, list[dict[str, Any]]]]]:
    """(fixed rows per domain, adaptive runs per domain and row)."""
    fixed = {p.parent.name: json.loads(p.read_text()) for p in sorted(runs.glob("*/fixed.json"))}
    for d, fx in fixed.items():  # the direction-prior row (run_benchmark.py's prior_row), when scored
        prior = runs / d / "prior.json"
        if prior.is_file():
            fx["prior"] = json.loads(prior.read_text())["prior"]
    adaptive: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for p in sorted(runs.glob("*/*/seed*.json")):
        rec = json.loads(p.read_text())
        adaptive[rec["domain"]][rec["row"]].append(rec)
    return fixed, adaptive


def _mae(err: np.ndarray, n: np.ndarray) -> float:
    return float(err.sum() / n.sum())


def _run_errors(rec: dict[str, Any]) -> np.ndarray:
    return np.asarray(rec["shipped_err"])


def guarded_errors(rec: dict[str, Any], unadapted_err: np.ndarray) -> tuple[np.ndarray, bool]:
    """Per-clip errors of what the do-no-harm guard would write for this run (the same
    function as ``sst adapt``, on the run's recorded criteria): the snapshot the target
    criterion selected, or the unadapted model. Returns (errors, shipped adapted)."""
    from sst_ros.adapt.guard import collapse_reasons, guard_decision

    step = rec["selected"]["target"]
    chosen = next(h for h in rec["history"] if h["step"] == step)
    reference = rec["guard"]["criteria_unadapted"]
    min_gain = rec["config"]["guard_min_gain"]
    if "equivariance_check_deg" in chosen:
        ship = guard_decision(chosen, reference, min_gain).ship_adapted
    else:  # runs recorded before guard v2 (no per-crop errors): the v1 rule, gain on all crops
        e, e0 = chosen["equivariance_deg"], reference["equivariance_deg"]
        ship = not collapse_reasons(chosen, reference) and (e0 - e) / e0 >= min_gain
    return (np.asarray(chosen["clip_err"]), True) if ship else (unadapted_err, False)


def domain_table(fixed: dict[str, Any], rows: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One dict per row of one domain (see the module docstring)."""
    n = np.asarray(fixed["clip_n"], dtype=float)
    base = np.asarray(fixed["unadapted"])
    out = []
    for name in ROW_ORDER:
        if name in FIXED_ROWS and name in fixed:
            per_seed = [np.asarray(fixed[name])]
        elif rows.get(name):
            per_seed = [_run_errors(r) for r in sorted(rows[name], key=lambda r: r["seed"])]
        else:
            continue
        rec = _row_stats(name, per_seed, base, n, deterministic=name in FIXED_ROWS)
        if name not in FIXED_ROWS:
            rec["shipped_unadapted"] = sum(r["shipped"] == "unadapted" for r in rows[name])
        out.append(rec)
        if name in (*FIXED_ROWS, "product"):
            continue
        guarded = [guarded_errors(r, base) for r in sorted(rows[name], key=lambda r: r["seed"])]
        out.append(_row_stats(f"{name} + guard", [e for e, _ in guarded], base, n))
        out[-1]["shipped_unadapted"] = sum(not shipped for _, shipped in guarded)
    return out


def _row_stats(
    name: str, per_seed: list[np.ndarray], base: np.ndarray, n: np.ndarray, deterministic: bool = False
) -> dict[str, Any]:
    """MAE over seeds, seed spread, paired bootstrap CI against ``base``; a seeded row needs at
    least two seeds (a known spread) before a difference can be a finding."""
    maes = [_mae(e, n) for e in per_seed]
    diff, lo, hi = bootstrap_diff(np.mean(per_seed, axis=0), base, n)
    spread = float(np.std(maes)) if len(maes) > 1 else 0.0
    known = deterministic or len(maes) > 1
    return {"row": name, "mae": float(np.mean(maes)), "seeds": len(maes), "spread": spread, "diff": diff,
            "ci": [lo, hi], "finding": bool(known and (hi < 0 or lo > 0) and abs(diff) > spread)}  # fmt: skip


def selection_stats(fixed: dict[str, Any], rows: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per run: MAE of every snapshot, each criterion's regret, and the target criterion's rank correlation."""
    n = np.asarray(fixed["clip_n"], dtype=float)
    u = _mae(np.asarray(fixed["unadapted"]), n)
    out = []
    for name, recs in rows.items():
        for r in recs:
            maes = {h["step"]: _mae(np.asarray(h["clip_err"]), n) for h in r["history"]}
            best = min(maes.values())
            regret = {c: maes[r["selected"][c]] - best for c in CRITERIA}
            eq = [h.get("equivariance_deg", float("nan")) for h in r["history"]]
            out.append({
                "row": name, "seed": r["seed"], "snapshot_mae": maes, "oracle_mae": best, "unadapted_mae": u,
                "regret": regret, "shipped_mae": _mae(_run_errors(r), n), "shipped": r["shipped"],
                "spearman_target": spearman(eq, list(maes.values())), "weights": r.get("weights", {}),
            })  # fmt: skip
    return out


def _fmt_row(t: dict[str, Any]) -> str:
    ci = f"{t['diff']:+.2f} [{t['ci'][0]:+.2f}, {t['ci'][1]:+.2f}]" if t["row"] != "unadapted" else "-"
    star = " *" if t["finding"] and t["row"] != "unadapted" else ""
    spread = f"{t['spread']:.2f}" if t["seeds"] > 1 else "-"
    kept = f" ({t['shipped_unadapted']}/{t['seeds']} kept unadapted)" if t.get("shipped_unadapted") else ""
    return f"| {t['row']} | {t['mae']:.2f} | {t['seeds']} | {spread} | {ci}{star}{kept} |"


def render(fixed: dict[str, dict[str, Any]], adaptive: dict[str, dict[str, list[dict[str, Any]]]]) -> tuple[str, dict]:
    """Markdown and JSON of the whole benchmark."""
    lines = ["# Adaptation benchmark results", ""]
    data: dict[str, Any] = {"domains": {}}
    ratios = []
    for d, fx in fixed.items():
        table = domain_table(fx, adaptive.get(d, {}))
        sel = selection_stats(fx, adaptive.get(d, {}))
        data["domains"][d] = {"rows": table, "runs": sel}
        lines += [f"## {d}", "", "| row | MAE (deg) | seeds | seed spread | vs unadapted: diff [95 % CI] |",
                  "|---|---|---|---|---|"]  # fmt: skip
        lines += [_fmt_row(t) for t in table]
        prod = [t for t in table if t["row"] == "product"]
        u = next(t for t in table if t["row"] == "unadapted")["mae"]
        if prod:
            ratios.append(prod[0]["mae"] / u)
        lines += ["", "| run | oracle MAE | regret: target / iwcv / dev / source_val / last | Spearman(target, MAE) |"
                  " shipped | in-sector AUROC / weight share (prior) |", "|---|---|---|---|---|---|"]  # fmt: skip
        for s in sel:
            reg = " / ".join(f"{s['regret'][c]:.2f}" for c in CRITERIA)
            w = s["weights"]
            ws = (f"{w.get('in_sector_auroc', float('nan')):.2f} / {w.get('in_sector_weight_share', float('nan')):.2f}"
                  f" ({w.get('in_sector_prior_share', float('nan')):.2f})")  # fmt: skip
            lines.append(f"| {s['row']} s{s['seed']} | {s['oracle_mae']:.2f} | {reg} | {s['spearman_target']:+.2f} |"
                         f" {s['shipped']} {s['shipped_mae']:.2f} | {ws} |")  # fmt: skip
        lines.append("")
    all_runs = [s for d in data["domains"].values() for s in d["runs"]]
    prod_runs = [s for s in all_runs if s["row"] == "product"]
    summary = {
        "product_to_unadapted_ratio_mean": float(np.mean(ratios)) if ratios else None,
        "mean_regret": {c: float(np.mean([s["regret"][c] for s in all_runs])) for c in CRITERIA} if all_runs else {},
        "product_runs_worse_than_unadapted": sum(
            s["shipped"] == "adapted" and s["shipped_mae"] > s["unadapted_mae"] + 1e-3 for s in prod_runs
        ),
        "product_runs": len(prod_runs),
    }
    data["summary"] = summary
    lines += ["## Summary", "", "```", json.dumps(summary, indent=2), "```", ""]
    lines += [
        "`*` = a finding: the paired 95 % interval excludes 0 and the difference exceeds the seed spread "
        "(seeded rows need at least two seeds). `row + guard` = what the do-no-harm guard (the same "
        "function as `sst adapt`) would write from that run's recorded criteria."
    ]
    return "\n".join(lines) + "\n", data


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, default=Path("training/runs/adapt_benchmark"))
    p.add_argument("--results", type=Path, default=Path("training/adapt_benchmark/results"))
    args = p.parse_args(argv)
    fixed, adaptive = load_runs(args.runs)
    if not fixed:
        print(f"no benchmark runs under {args.runs}; run run_benchmark.py first", file=sys.stderr)
        return 2
    md, data = render(fixed, adaptive)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "results.md").write_text(md)
    (args.results / "results.json").write_text(json.dumps(data, indent=1, default=float))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

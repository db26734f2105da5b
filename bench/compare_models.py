"""Paired comparison of two models on the same held-out clips, from two runs' reports.

Reads the ``report.json`` files that ``bench/bench_multisource.py`` and ``bench/bench_accuracy.py``
write per set (``<out>/<set>/report/report.json``) for model A and model B, pairs the clips by
name and prints, per set, each model's mean per-clip figure and the mean per-clip difference
B - A with a paired bootstrap 95 % interval (2000 resamples of clips).
Multi-source sets: F1, recall, recall where two or more talkers speak at once (overlap recall),
precision (frame-source pairs pooled per clip) and the interferer rate; single-source sets: MAE
and ACC10 over active frames. The means of per-clip figures differ from the pooled figures the
benches print (every clip weighs the same, not every frame).

    python bench/compare_models.py --a /tmp/old_ms --b /tmp/new_ms --kind multi
    python bench/compare_models.py --a /tmp/old_acc --b /tmp/new_acc --kind single
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _clips(report: Path, kind: str, key: str) -> dict[str, float]:
    data = json.loads(report.read_text())
    out: dict[str, float] = {}
    for clip in data["clips"]:
        value = clip["multi_source"]["crnn"].get(key) if kind == "multi" else clip["metrics"]["crnn"].get(key)
        if value is not None and np.isfinite(value):
            out[clip["name"]] = float(value)
    return out


def paired_ci(diff: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Paired bootstrap 95 % interval of the mean of ``diff`` (per-clip differences)."""
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, (n_boot, diff.size))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True, help="bench --out folder of model A (the reference)")
    ap.add_argument("--b", required=True, help="bench --out folder of model B")
    ap.add_argument("--kind", choices=("multi", "single"), required=True)
    args = ap.parse_args()
    multi_keys = ("f1", "recall", "overlap_recall", "precision", "interferer_rate")
    keys = multi_keys if args.kind == "multi" else ("mae_deg", "acc10")
    for report_a in sorted(Path(args.a).glob("*/report/report.json")):
        name = report_a.parent.parent.name
        report_b = Path(args.b) / name / "report" / "report.json"
        if not report_b.is_file():
            continue
        for key in keys:
            a, b = _clips(report_a, args.kind, key), _clips(report_b, args.kind, key)
            common = sorted(set(a) & set(b))
            if not common:
                continue
            diff = np.array([b[c] - a[c] for c in common])
            lo, hi = paired_ci(diff)
            mean_a, mean_b = np.mean([a[c] for c in common]), np.mean([b[c] for c in common])
            print(f"{name:18s} {key:16s} A {mean_a:7.3f}  B {mean_b:7.3f}  B-A per clip {diff.mean():+7.3f} "
                  f"[{lo:+.3f}, {hi:+.3f}]  ({len(common)} clips)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

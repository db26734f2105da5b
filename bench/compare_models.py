"""Paired comparison of two networks on the same held-out clips, from the benches' reports,
judged against the seed-to-seed spread of training.

Reads the ``report.json`` files that ``bench/bench_multisource.py`` and ``bench/bench_accuracy.py``
write per set (``<out>/<set>/report/report.json``). Each side, A (the reference) and B, is one
or more bench ``--out`` folders: one per training seed of that network (the same recipe with
another ``seed:``). Clips are paired by name (those every folder has). Per set and figure it
prints each side's mean per-clip figure (averaged over its seeds), the mean per-clip difference
B - A with a paired bootstrap 95 % interval over clips (2000 resamples), and the seed spread:
the largest absolute mean per-clip difference between two seeds of one side.

A per-clip interval compares fixed networks; it knows nothing of the training seed, and two
seeds of one network can differ by more than the interval's width (training/README.md, "A
smaller network"). So the last column says ``difference`` only when the interval excludes 0
and the difference is larger than the seed spread; ``within seed spread`` when it is not;
``no difference`` when the interval includes 0; ``seed spread unknown`` with one seed a side;
``too few clips`` below 10 paired clips. The seed spread is only as wide as what the seeds
differ by (e.g. stage-2 seeds on one stage 1 leave stage 1's seed out) and is measured on the
same clips. Figures are fractions (ACC10 0.05 = 5 points) or degrees (MAE).

Multi-source sets: F1, recall, recall where two or more talkers speak at once (overlap recall),
precision (frame-source pairs pooled per clip) and the interferer rate; single-source sets: MAE
and ACC10 over active frames. The means of per-clip figures differ from the pooled figures the
benches print (every clip weighs the same, not every frame).

    python bench/compare_models.py --a /tmp/old_ms --b /tmp/new_ms --kind multi
    python bench/compare_models.py --a /tmp/old_acc_s0 /tmp/old_acc_s1 --b /tmp/new_acc_s0 /tmp/new_acc_s1 --kind single
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MULTI_KEYS = ("f1", "recall", "overlap_recall", "precision", "interferer_rate")
SINGLE_KEYS = ("mae_deg", "acc10")
MIN_CLIPS = 10  # fewer paired clips: a bootstrap interval means nothing


class ReportError(ValueError):
    """A report that is not what ``--kind`` reads (the message names the file and the fix)."""


@dataclass(frozen=True)
class Comparison:
    """One figure of one set: B against A.

    Attributes:
        set_name, key: the clip set and the figure.
        mean_a, mean_b: mean per-clip figure of each side (over its seeds).
        diff, ci: mean per-clip difference B - A and its paired bootstrap 95 % interval.
        seed_spread: largest absolute mean per-clip difference between two seeds of one side (None:
            one seed a side).
        n_clips: clips every folder has.
        verdict: ``difference``, ``within seed spread``, ``no difference``, ``seed spread unknown``
            or ``too few clips``.
    """

    set_name: str
    key: str
    mean_a: float
    mean_b: float
    diff: float
    ci: tuple[float, float]
    seed_spread: float | None
    n_clips: int
    verdict: str


def clip_figures(report: Path, kind: str, keys: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """The model's figures per key, then per clip name, of one report (missing or non-finite
    values left out); the file is read once for all keys.

    Raises:
        ReportError: a clip without the model's figures of ``kind``.
    """
    data = json.loads(report.read_text())
    section = "multi_source" if kind == "multi" else "metrics"
    out: dict[str, dict[str, float]] = {key: {} for key in keys}
    for clip in data["clips"]:
        figures = clip.get(section, {}).get("crnn")
        if figures is None:
            bench = "bench_multisource.py" if kind == "multi" else "bench_accuracy.py"
            raise ReportError(
                f"{report}: clip {clip.get('name')} has no model figures under '{section}'; --kind {kind} "
                f"reads the reports of {bench} run with a model"
            )
        for key in keys:
            value = figures.get(key)
            if value is not None and np.isfinite(value):
                out[key][clip["name"]] = float(value)
    return out


def paired_ci(diff: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Paired bootstrap 95 % interval of the mean of ``diff`` (per-clip differences)."""
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, (n_boot, diff.size))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _seed_spread(per_seed: np.ndarray) -> float | None:
    """Largest |mean per-clip difference| between two seeds; ``per_seed`` is (seeds, clips)."""
    pairs = list(itertools.combinations(range(per_seed.shape[0]), 2))
    return max(abs(float((per_seed[j] - per_seed[i]).mean())) for i, j in pairs) if pairs else None


def verdict(diff: float, ci: tuple[float, float], spread: float | None, n_clips: int) -> str:
    """What the difference is worth: see the module docstring."""
    if n_clips < MIN_CLIPS:
        return "too few clips"
    if ci[0] <= 0.0 <= ci[1]:
        return "no difference"
    if spread is None:
        return "seed spread unknown"
    return "difference" if abs(diff) > spread else "within seed spread"


def compare(a_dirs: list[Path], b_dirs: list[Path], kind: str) -> tuple[list[Comparison], list[str]]:
    """Every figure of every set that all folders of both sides have, B against A; and the names
    of the sets some folder has and another lacks (not compared)."""
    keys = MULTI_KEYS if kind == "multi" else SINGLE_KEYS
    dirs = (*a_dirs, *b_dirs)
    names = sorted({r.parent.parent.name for d in dirs for r in d.glob("*/report/report.json")})
    rows: list[Comparison] = []
    skipped: list[str] = []
    for name in names:
        reports = [d / name / "report" / "report.json" for d in dirs]
        if not all(r.is_file() for r in reports):
            skipped.append(name)
            continue
        per_report = [clip_figures(r, kind, keys) for r in reports]
        for key in keys:
            figures = [f[key] for f in per_report]
            common = sorted(set.intersection(*(set(f) for f in figures)))
            if not common:
                continue
            table = np.array([[f[c] for c in common] for f in figures])  # (folders, clips)
            a, b = table[: len(a_dirs)], table[len(a_dirs) :]
            diff = b.mean(axis=0) - a.mean(axis=0)
            ci = paired_ci(diff)
            spreads = [s for s in (_seed_spread(a), _seed_spread(b)) if s is not None]
            spread = max(spreads) if spreads else None
            rows.append(Comparison(
                name, key, float(a.mean()), float(b.mean()), float(diff.mean()), ci, spread, len(common),
                verdict(float(diff.mean()), ci, spread, len(common)),
            ))  # fmt: skip
    return rows, skipped


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True, nargs="+", type=Path,
                    help="bench --out folder(s) of network A (the reference), one per training seed")  # fmt: skip
    ap.add_argument("--b", required=True, nargs="+", type=Path, help="bench --out folder(s) of network B, one per seed")
    ap.add_argument("--kind", choices=("multi", "single"), required=True)
    args = ap.parse_args()
    dirs = [d.resolve() for d in (*args.a, *args.b)]
    if len(set(dirs)) < len(dirs):
        ap.error("a folder is given twice: each folder is one training seed (the same one twice is a seed spread of 0)")
    missing = [str(d) for d in (*args.a, *args.b) if not d.is_dir()]
    if missing:
        ap.error(f"not a folder: {', '.join(missing)} (give the --out folders of bench_accuracy.py or "
                 "bench_multisource.py)")  # fmt: skip
    try:
        rows, skipped = compare(args.a, args.b, args.kind)
    except ReportError as err:
        ap.error(str(err))
    if skipped:
        print(f"not compared (not in every folder): {', '.join(skipped)}", file=sys.stderr)
    if not rows:
        ap.error("no set has a report in every folder: run the same bench (--kind single: bench_accuracy.py, "
                 "multi: bench_multisource.py) with --out each folder")  # fmt: skip
    print(f"A: {len(args.a)} seed(s), B: {len(args.b)} seed(s)")
    for r in rows:
        spread = f"seed spread {r.seed_spread:6.3f}" if r.seed_spread is not None else "seed spread    n/a"
        print(f"{r.set_name:18s} {r.key:16s} A {r.mean_a:7.3f}  B {r.mean_b:7.3f}  B-A per clip {r.diff:+7.3f} "
              f"[{r.ci[0]:+.3f}, {r.ci[1]:+.3f}]  {spread}  ({r.n_clips} clips)  {r.verdict}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

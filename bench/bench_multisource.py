"""Multi-source tracking: the model and the classical baselines through the same tracker, on held-out sets.

Simulates four held-out clip sets (``sst simulate`` with
``training/configs/sim_multi.yaml`` plus the overrides below, written to ``<out>/<set>/``)
with seeds the training recipes never use (they use 1, 2 and 3):

- ``one_talker``: 1 talker, no interferer (seed 910004): the false tracks a lone talker gets;
- ``two_talkers``: 2 talkers at least 30 degrees apart (no crossing paths), no interferer
  (seed 910001);
- ``three_talkers``: 3 talkers at least 30 degrees apart, no interferer (seed 910002);
- ``talker_interferer``: 1 talker plus one labelled non-speech interferer, a third of the
  scenes each with a fan, a television and a motor (seed 910003, consecutive scene indices);

then runs ``sst evaluate``'s multi-source scoring (the model and SRP-PHAT + NormMUSIC, every
method's spectrum through the same peak picking and tracker, ``--max-sources`` peaks per frame)
and prints matched MAE, precision, recall (also on the frames where two or more talkers speak
at once), F1, identity switches per minute, OSPA and the interferer-as-talker rate per set
and method, side by side (definitions: :mod:`sst_ros.tracking.score`).

Usage (about 2 minutes on 2 cores with the defaults, half of it simulation on a first run)::

    python bench/bench_multisource.py [--model PATH | --no-model] [--n 24] [--duration 6]
        [--out /tmp/sst_bench_multisource] [--sets one_talker,two_talkers,three_talkers,talker_interferer]
        [--seed-offset K]

Sets in ``--out`` are reused when they were simulated with the same settings (``--fresh``
re-simulates). Reports: ``<out>/<set>/report/report.md``; the table: ``<out>/summary.json``.
Exit code 0: a measurement; the goals are stated in training/README.md ("Several talkers").
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
BASE_CONFIG = HERE.parent / "training" / "configs" / "sim_multi.yaml"
NO_INTERFERER = {"talker_prob": 0.0, "fan_prob": 0.0, "tv_prob": 0.0, "motor_prob": 0.0}
APART = {"min_separation_deg": 30.0, "crossing_prob": 0.0}  # crossing pairs would be exempt from the separation
# name -> (seed, [(share of the scenes, overrides of the base config)]) - seeds far from the recipes' 1, 2 and 3
SETS: dict[str, tuple[int, list[tuple[float, dict[str, Any]]]]] = {
    "one_talker": (910_004, [(1.0, {"talkers": {"count_weights": [0, 1, 0, 0]}, "interferers": NO_INTERFERER})]),
    "two_talkers": (
        910_001,
        [(1.0, {"talkers": {"count_weights": [0, 0, 1, 0], **APART}, "interferers": NO_INTERFERER})],
    ),
    "three_talkers": (
        910_002,
        [(1.0, {"talkers": {"count_weights": [0, 0, 0, 1], **APART}, "interferers": NO_INTERFERER})],
    ),
    "talker_interferer": (
        910_003,
        [
            (1 / 3, {"talkers": {"count_weights": [0, 1, 0, 0]}, "interferers": {**NO_INTERFERER, kind: 1.0}})
            for kind in ("fan_prob", "tv_prob", "motor_prob")
        ],
    ),
}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, val in over.items():
        out[key] = _merge(out.get(key) or {}, val) if isinstance(val, dict) else val
    return out


def base_config() -> tuple[dict[str, Any], str]:
    """The scene config every set starts from, and where it came from."""
    if BASE_CONFIG.is_file():
        return yaml.safe_load(BASE_CONFIG.read_text()) or {}, str(BASE_CONFIG.relative_to(HERE.parent))
    print(f"[bench] {BASE_CONFIG} does not exist: using the simulator defaults with labels.multi_source: true")
    return {"labels": {"multi_source": True}}, "config/sim/default.yaml + labels.multi_source: true"


def _counts(n: int, shares: list[float]) -> list[int]:
    """``n`` scenes split by ``shares`` (largest remainders), each part at least 1."""
    raw = [n * s / sum(shares) for s in shares]
    out = [max(1, int(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - int(raw[i]), reverse=True)
    for i in order[: max(0, n - sum(out))]:
        out[i] += 1
    return out


@dataclass(frozen=True)
class Draw:
    """How the sets are drawn.

    Attributes:
        n: clips per set.
        duration_s: clip length, seconds.
        array: array config name of the simulated sets.
        seed_offset: added to every set's seed (0: the benchmark's own draw).
        workers: simulation processes.
    """

    n: int = 24
    duration_s: float = 6.0
    array: str = "respeaker_usb_v2"
    seed_offset: int = 0
    workers: int = 2


def set_parts(name: str, draw: Draw, base: dict[str, Any]) -> tuple[int, list[tuple[int, dict[str, Any]]]]:
    """How set ``name`` is simulated: its seed and, per part, the scene count and the scene config
    (``base`` with the part's overrides and the draw's duration). Scene ``i`` of the set (parts in
    order) is ``sst simulate``'s scene index ``i`` with that seed."""
    seed, parts = SETS[name]
    counts = _counts(draw.n, [share for share, _ in parts])
    cfgs = [_merge(base, {**over, "duration_s": float(draw.duration_s)}) for _, over in parts]
    return seed + draw.seed_offset, list(zip(counts, cfgs, strict=True))


def simulate_set(
    name: str, draw: Draw, out: Path, base: dict[str, Any], fresh: bool = False
) -> tuple[Path, dict[str, Any]]:
    """Simulate (or reuse, unless ``fresh``) one set under ``out/<name>/``; returns its clip folder and
    what it was made with (a set made otherwise, another seed included, is simulated anew)."""
    seed, parts = set_parts(name, draw, base)
    spec = {"seed": seed, "n": sum(c for c, _ in parts), "duration_s": float(draw.duration_s), "array": draw.array,
            "parts": [{"n": c, "config": cfg} for c, cfg in parts]}  # fmt: skip
    set_dir = out / name / "clips"
    stamp = out / name / "bench_set.json"
    if not fresh and stamp.is_file() and json.loads(stamp.read_text()) == spec:
        print(f"[{name}] reusing {spec['n']} clips in {set_dir}", flush=True)
        return set_dir, spec
    if set_dir.exists():
        shutil.rmtree(set_dir)
    stamp.unlink(missing_ok=True)
    t0 = time.perf_counter()
    start = 0
    for k, (count, cfg) in enumerate(parts):
        cfg_path = out / name / f"sim_part{k}.yaml"
        cfg_path.parent.mkdir(parents=True, exist_ok=True)
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        cmd = [
            sys.executable, "-m", "sst_ros.cli", "simulate", "--config", str(cfg_path), "--array", draw.array,
            "--n", str(count), "--out", str(set_dir), "--workers", str(draw.workers), "--seed", str(seed),
            "--start-index", str(start), "--no-progress",
        ]  # fmt: skip
        print(f"[{name}] simulating {count} x {draw.duration_s:g} s (seed {seed}, scenes {start}..{start + count - 1})",
              flush=True)  # fmt: skip
        subprocess.run(cmd, check=True)
        start += count
    stamp.write_text(json.dumps(spec, indent=1))
    print(f"[{name}] simulated in {time.perf_counter() - t0:.0f} s", flush=True)
    return set_dir, spec


def _label_summary(clips: Path) -> dict[str, int]:
    """Clips, talker-count histogram and interferer count of a simulated set (from its labels)."""
    from sst_ros.data.clipset import ClipSet, read_labels

    talkers: dict[str, int] = {}
    n_int = n_multi = 0
    cs = ClipSet(clips)
    for clip in cs:
        lab = read_labels(clip.csv_path)
        n_multi += lab.is_multi_source
        key = str(len(lab.talkers()))
        talkers[key] = talkers.get(key, 0) + 1
        n_int += len(lab.interferers())
    return {"clips": len(cs), "multi_source_labels": n_multi, "interferers": n_int,
            **{f"clips_with_{k}_talkers": v for k, v in sorted(talkers.items())}}  # fmt: skip


def interferer_by_kind(clips: Path, report_json: Path) -> dict[str, dict[str, tuple[int, int]]]:
    """Per method, per interferer kind (fan, tv, motor: the scenes' metadata), the interferer's active
    frames tracked as a talker and its active frames, summed over the clips with that one kind."""
    from sst_ros.sim.cli import MANIFEST

    kinds: dict[str, str] = {}
    for line in (clips / MANIFEST).read_text().splitlines():
        scene = json.loads(line)
        found = {i.get("kind") for i in scene.get("interferers") or []}
        if len(found) == 1:
            kinds[scene["name"]] = str(found.pop())
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for clip in json.loads(report_json.read_text())["clips"]:
        kind = kinds.get(clip["name"])
        if kind is None:
            continue
        for method, score in (clip.get("multi_source") or {}).items():
            if not score.get("n_interferer_frames"):
                continue
            tracked, frames = out.setdefault(method, {}).get(kind, (0, 0))
            out[method][kind] = (
                tracked + int(score["n_interferer_tracked"]),
                frames + int(score["n_interferer_frames"]),
            )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--model", default=None, help="checkpoint (default: the shipped default model)")
    ap.add_argument("--no-model", action="store_true", help="baselines only")
    ap.add_argument("--n", type=int, default=24, help="clips per set (default: %(default)s)")
    ap.add_argument("--duration", type=float, default=6.0, help="clip length, s (default: %(default)s)")
    ap.add_argument("--array", default="respeaker_usb_v2", help="array of the simulated sets")
    ap.add_argument("--workers", type=int, default=2, help="simulation processes (default: %(default)s)")
    ap.add_argument("--baselines", default="srp_phat,normmusic", help="baselines (default: %(default)s)")
    ap.add_argument("--max-sources", type=int, default=3, help="peaks per frame (default: %(default)s)")
    ap.add_argument("--sets", default=",".join(SETS), help="sets to run (default: %(default)s)")
    ap.add_argument("--out", default=os.environ.get("SST_BENCH_OUT", "/tmp/sst_bench_multisource"), help="work folder")
    ap.add_argument("--fresh", action="store_true", help="re-simulate even when the sets exist")
    ap.add_argument("--seed-offset", type=int, default=0,
                    help="added to every set's seed: another draw of the same sets (training/tune_tracking.py "
                         "tunes on offset 30000; the figures use 0)")  # fmt: skip
    ap.add_argument("--plots", type=int, default=4, help="per-clip plots per set (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    args = ap.parse_args(argv)
    names = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in names if s not in SETS]
    if unknown:
        ap.error(f"unknown set(s) {unknown}; choose from {list(SETS)}")
    if args.n < len(SETS["talker_interferer"][1]) and "talker_interferer" in names:
        ap.error("--n must be >= 3 (talker_interferer has a fan, a tv and a motor part)")

    if not args.no_model:
        import torch

        torch.set_num_threads(args.threads)
    from sst_ros.train.evaluate import evaluate
    from sst_ros.train.report import metric_cells, metric_header, write_json

    t_start = time.perf_counter()
    out = Path(args.out)
    base, base_name = base_config()
    draw = Draw(args.n, args.duration, args.array, args.seed_offset, args.workers)
    summary: dict[str, Any] = {"base_config": base_name, "max_sources": args.max_sources, "sets": {}}
    for name in names:
        clips, spec = simulate_set(name, draw, out, base, fresh=args.fresh)
        labels = _label_summary(clips)
        t0 = time.perf_counter()
        report = evaluate(
            args.model, clips, out / name / "report", baselines=args.baselines, use_model=not args.no_model,
            max_plots=args.plots, multi_source=True, max_sources=args.max_sources,
        )  # fmt: skip
        t_eval = time.perf_counter() - t0
        print(f"[{name}] evaluated {report['n_clips']} clips in {t_eval:.0f} s", flush=True)
        by_kind = interferer_by_kind(clips, out / name / "report" / "report.json")
        summary["sets"][name] = {
            "interferer_by_kind": by_kind,
            "seed": spec["seed"],
            "duration_s": spec["duration_s"],
            "labels": labels,
            "eval_s": t_eval,
            "methods": {m: r["pooled"] for m, r in report["multi_source"]["methods"].items()},
            "report": str(out / name / "report" / "report.md"),
        }
    total = time.perf_counter() - t_start
    summary["total_s"] = total

    print()
    print(f"multi-source tracking, pooled over each set's frames (gate 30 deg, OSPA c = 30 deg, p = 1; "
          f"at most {args.max_sources} tracks per frame; base config {base_name})")  # fmt: skip
    head = f"{'set':<18} {'clips':>5} {'seed':>7} {'method':<10} {metric_header()}"
    print(head)
    print("-" * len(head))
    for name, res in summary["sets"].items():
        for m, pooled in res["methods"].items():
            print(f"{name:<18} {res['labels']['clips']:>5} {res['seed']:>7} {m:<10} {metric_cells(pooled)}")
    print()
    for name, res in summary["sets"].items():
        lab = res["labels"]
        extra = ", ".join(f"{k} {v}" for k, v in lab.items() if k.startswith("clips_with"))
        print(f"{name}: {lab['clips']} clips x {res['duration_s']:g} s, seed {res['seed']}, {extra}, "
              f"{lab['interferers']} labelled interferers; report {res['report']}")  # fmt: skip
    for name, res in summary["sets"].items():
        for m, kinds in res["interferer_by_kind"].items():
            parts = ", ".join(f"{k} {100 * t / n:.1f} % ({t} of {n})" for k, (t, n) in sorted(kinds.items()))
            print(f"{name}, {m}: interferer tracked as a talker by kind: {parts}")
    print(f"\ntotal {total:.0f} s")
    write_json(out / "summary.json", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Adaptation experiment: source-only vs DANN vs importance-weighted (IWAN), three seeds each.

Stages (all by default):
  source  train the source model on the simulated clips (sst_ros.train.loop, the `sst train` code)
  adapt   for each variant and seed run `sst adapt`'s code path (sst_ros.adapt.run.adapt_checkpoint)
          on the unlabelled target_train WAVs; no target label is read
  report  evaluate every model on the held-out labelled target_test clips, write results.json,
          results.md and the importance-weight histogram (weights_hist.png)

The target test labels are read only in the report stage. Model selection inside each
adaptation run is label-free (importance-weighted source validation loss, IWCV); the
"oracle" column (best snapshot by test MAE) is shown only to say what target labels would
have chosen.

Usage: python run_experiment.py --data training/data/adapt_experiment \
           --runs training/runs/adapt_experiment --results training/adapt_experiment/results
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from sst_ros.adapt.batches import make_batch
from sst_ros.adapt.config import AdaptConfig
from sst_ros.adapt.evaluation import evaluate_oracle
from sst_ros.adapt.run import adapt_checkpoint
from sst_ros.adapt.weights import importance_weights
from sst_ros.data.clip_reader import ClipReader
from sst_ros.data.clipset import LabelledAudio
from sst_ros.geometry import angular_distance_deg
from sst_ros.model.checkpoint import load_checkpoint
from sst_ros.model.crnn import CRNN

VARIANTS = ("source_only", "dann", "iwan")
SEEDS = (0, 1, 2)
SECTOR_DEG = 30.0
MODEL = {"conv_channels": [16, 16, 16, 16, 16], "gru_hidden": 64, "head_hidden": [64, 64]}
ADAPT = {
    "steps": 200,
    "batch_size": 8,
    "crop_min_s": 1.5,
    "crop_max_s": 3.0,
    "lr": 3e-4,
    "lr_disc": 1e-3,
    "grl_hi": 1.0,
    "adv_weight": 1.0,
    "disc_gru_hidden": 32,
    "disc_mlp_hidden": 32,
    "eval_every": 40,
    "n_val_clips": 48,
    "n_target_val_clips": 16,
}


def stage_source(data: Path, runs: Path, steps: int) -> Path:
    from sst_ros.train.loop import TrainConfig, train

    out = runs / "source"
    final = runs / "source.pt"
    if final.exists():
        return final
    cfg = TrainConfig(
        array=str(data / "source_train" / "array.yaml"),
        data=[str(data / "source_train")],
        val_data=[str(data / "source_val")],
        preset="tiny",
        model=dict(MODEL),
        # relative-phase planes as the default model; bins 1..64 (31 Hz..2 kHz): a 0.18 m pair aliases
        # spatially above ~950 Hz, and the CNN stays cheap enough for 2 shared cores
        features={"phase_reference": True, "n_freq": 64},
        crop_s=2.0,
        batch_size=16,
        steps=steps,
        lr=2e-3,
        val_every=max(50, steps // 6),
        seed=0,
        num_threads=1,
    )
    if not (out / "best.pt").exists():
        summary = train(cfg, out, resume=(out / "latest.pt").exists(), progress=False)
        print("source training:", json.dumps(summary, default=str)[:600])
    # re-save best.pt with plain-data provenance (a loadable, weights-only checkpoint)
    from sst_ros.model.checkpoint import load_checkpoint, save_checkpoint

    lm = load_checkpoint(out / "best.pt", with_train_state=True)
    prov = json.loads(json.dumps(lm.provenance, default=str))
    save_checkpoint(final, lm.model, lm.array, lm.feature_cfg, lm.model_cfg, prov)
    return final


def _overrides(spec: str) -> dict:
    """Variant spec ``name[:key=value,...]``, e.g. ``iwan:grl_hi=0.001`` (the reference code's ceiling)."""
    name, _, rest = spec.partition(":")
    out: dict = {"variant": name}
    for item in filter(None, rest.split("+")):
        k, _, v = item.partition("=")
        out[k] = type(ADAPT.get(k, 1.0))(v) if k in ADAPT else float(v)
    return out


def stage_adapt(data: Path, runs: Path, source: Path, variants: list[str], seeds: list[int]) -> None:
    for variant in variants:
        for seed in seeds:
            out = runs / f"{variant}_s{seed}.pt"
            if out.exists():
                continue
            cfg = AdaptConfig(**{**ADAPT, **_overrides(variant)}, seed=seed)
            t0 = time.monotonic()
            res = adapt_checkpoint(
                source,
                [data / "target_train"],
                [data / "source_train"],
                out,
                cfg,
                val_dirs=[data / "source_val"],
                resume=True,
                progress=False,
            )
            # keep every snapshot (for the oracle line) and the weighting discriminator (for the histogram)
            torch.save(
                {
                    "snapshots": res.trainer.snapshots,
                    "final": res.trainer.model_t.state_dict(),
                    "disc": res.trainer.disc.state_dict(),
                    "selected_step": res.result.selected_step,
                    "history": [{k: v for k, v in h.items() if k != "val_losses"} for h in res.result.history],
                    "log": res.result.log,
                },
                runs / f"{variant}_s{seed}.extra.pt",
            )
            print(f"{variant} seed {seed}: selected step {res.result.selected_step}, {time.monotonic() - t0:.0f} s",
                  flush=True)  # fmt: skip


def _model_from_state(template: CRNN, state: dict) -> CRNN:
    m = CRNN(template.cfg)
    m.load_state_dict(state)
    return m.eval()


def _weights_for_clips(loaded, disc_state: dict, clips: list[LabelledAudio], adapt_cfg: dict) -> np.ndarray:
    """Importance weights of whole synthetic clips from the trained weighting discriminator D."""
    from sst_ros.adapt.discriminator import SequenceDiscriminator

    h_dim = loaded.model_cfg.gru_hidden
    disc = SequenceDiscriminator(h_dim, adapt_cfg["disc_gru_hidden"], adapt_cfg["disc_mlp_hidden"])
    disc.load_state_dict(disc_state)
    disc.eval()
    fpo = loaded.model_cfg.frames_per_output
    probs = []
    with torch.no_grad():
        for i in range(0, len(clips), 16):
            b = make_batch([c.audio for c in clips[i : i + 16]], loaded.feature_cfg, fpo)
            probs.append(disc.probability(loaded.model.extract(b.x), b.lengths))
    return importance_weights(torch.cat(probs), "ratio", max_weight=None).numpy()


def _clip_azimuth(clip: LabelledAudio, grid) -> float:
    lab = clip.labels
    az = grid.fold(lab.azimuth_deg[lab.active]) if lab.active.any() else grid.fold(lab.azimuth_deg)
    return float(np.median(az))


def stage_report(data: Path, runs: Path, results: Path, source: Path, variants: list[str], seeds: list[int]) -> dict:
    results.mkdir(parents=True, exist_ok=True)
    loaded = load_checkpoint(source)
    fc = loaded.feature_cfg
    test = ClipReader([data / "target_test"], loaded.array, fc.sample_rate_hz, loaded.frame_s)
    rows: dict = {"source_model": evaluate_oracle(loaded.model, test, fc), "runs": {}}
    for variant in variants:
        for seed in seeds:
            extra_path = runs / f"{variant}_s{seed}.extra.pt"
            if not extra_path.exists():
                continue
            extra = torch.load(extra_path, weights_only=False)
            sel = evaluate_oracle(load_checkpoint(runs / f"{variant}_s{seed}.pt").model, test, fc)
            last = evaluate_oracle(_model_from_state(loaded.model, extra["final"]), test, fc)
            per_snap = {
                int(s): evaluate_oracle(_model_from_state(loaded.model, st), test, fc)["mae_deg"]
                for s, st in extra["snapshots"].items()
            }
            oracle_step = min(per_snap, key=per_snap.get)
            rows["runs"][f"{variant}_s{seed}"] = {
                "variant": variant,
                "seed": seed,
                "selected_step": extra["selected_step"],
                "selected": sel,
                "last": last,
                "oracle_step": oracle_step,
                "oracle_mae_deg": per_snap[oracle_step],
                "snapshot_mae_deg": per_snap,
            }
    # aggregate
    agg: dict = {}
    for variant in variants:
        rs = [r for r in rows["runs"].values() if r["variant"] == variant]
        if not rs:
            continue
        a = {}
        for which in ("selected", "last"):
            for metric in ("mae_deg", "acc10"):
                v = np.array([r[which][metric] for r in rs])
                a[f"{which}_{metric}"] = (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0)
        v = np.array([r["oracle_mae_deg"] for r in rs])
        a["oracle_mae_deg"] = (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0)
        a["n_seeds"] = len(rs)
        agg[variant] = a
    rows["aggregate"] = agg

    # importance-weight histogram: synthetic clips inside vs outside the target sector (iwan, seed 0)
    hist_path = None
    iw = runs / f"iwan_s{seeds[0]}.extra.pt"
    if iw.exists():
        sets = [data / "source_train", data / "source_val"]
        reader = ClipReader(sets, loaded.array, fc.sample_rate_hz, loaded.frame_s)
        clips = [reader.load(i) for i in range(len(reader))]
        w = _weights_for_clips(loaded, torch.load(iw, weights_only=False)["disc"], clips, ADAPT)
        az = np.array([_clip_azimuth(c, loaded.model_cfg.grid) for c in clips])
        inside = angular_distance_deg(az, 0.0) <= SECTOR_DEG
        rows["weights"] = {
            "n_inside": int(inside.sum()),
            "n_outside": int((~inside).sum()),
            "mean_inside": float(w[inside].mean()),
            "mean_outside": float(w[~inside].mean()),
            "median_inside": float(np.median(w[inside])),
            "median_outside": float(np.median(w[~inside])),
        }
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
        bins = np.logspace(np.log10(max(w.min(), 1e-3)), np.log10(w.max() + 1e-9), 30)
        ax[0].hist(w[inside], bins=bins, alpha=0.6, label=f"inside |az|<={SECTOR_DEG:.0f} (n={inside.sum()})")
        ax[0].hist(w[~inside], bins=bins, alpha=0.6, label=f"outside (n={(~inside).sum()})")
        ax[0].set_xscale("log")
        ax[0].set_xlabel("importance weight (mean 1 over all synthetic clips)")
        ax[0].set_ylabel("synthetic clips")
        ax[0].legend(fontsize=8)
        ax[1].scatter(az, w, s=6)
        ax[1].axvspan(-SECTOR_DEG, SECTOR_DEG, color="C1", alpha=0.15, label="target sector")
        ax[1].set_yscale("log")
        ax[1].set_xlabel("synthetic clip azimuth, folded (deg)")
        ax[1].set_ylabel("weight")
        ax[1].legend(fontsize=8)
        fig.suptitle("IWAN importance weights of synthetic clips (weighting discriminator D, seed 0)")
        fig.tight_layout()
        hist_path = results / "weights_hist.png"
        fig.savefig(hist_path, dpi=110)
        plt.close(fig)
    (results / "results.json").write_text(json.dumps(rows, indent=1))
    (results / "results.md").write_text(_markdown(rows, hist_path))
    print(_markdown(rows, hist_path))
    return rows


def _markdown(rows: dict, hist: Path | None) -> str:
    s = rows["source_model"]
    lines = [
        "| model | MAE (deg), label-free selected | ACC10, selected | MAE, final step | ACC10, final step "
        "| oracle MAE (not used) |",
        "|---|---|---|---|---|---|",
        f"| source model, unadapted | {s['mae_deg']:.2f} | {s['acc10']:.3f} | - | - | - |",
    ]

    def f(a: dict, k: str, p: int = 2) -> str:
        return f"{a[k][0]:.{p}f} ± {a[k][1]:.{p}f}"

    for v, a in rows["aggregate"].items():
        lines.append(
            f"| {v} ({a['n_seeds']} seeds) | {f(a, 'selected_mae_deg')} | {f(a, 'selected_acc10', 3)} | "
            f"{f(a, 'last_mae_deg')} | {f(a, 'last_acc10', 3)} | {f(a, 'oracle_mae_deg')} |"
        )
    if "weights" in rows:
        w = rows["weights"]
        lines += [
            "",
            f"Importance weights (IWAN seed 0, D on FE_s features of all synthetic clips): mean inside the "
            f"target sector {w['mean_inside']:.2f} (n={w['n_inside']}), outside {w['mean_outside']:.2f} "
            f"(n={w['n_outside']}); medians {w['median_inside']:.2f} / {w['median_outside']:.2f}.",
        ]
    if hist is not None:
        lines += ["", f"![weights]({hist.name})"]
    lines += ["", "Per run (selected step / oracle step):", ""]
    for k, r in rows["runs"].items():
        lines.append(
            f"- {k}: selected step {r['selected_step']} MAE {r['selected']['mae_deg']:.2f}; final MAE "
            f"{r['last']['mae_deg']:.2f}; oracle step {r['oracle_step']} MAE {r['oracle_mae_deg']:.2f}"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="training/data/adapt_experiment")
    ap.add_argument("--runs", default="training/runs/adapt_experiment")
    ap.add_argument("--results", default="training/adapt_experiment/results")
    ap.add_argument("--stage", choices=("all", "source", "adapt", "report"), default="all")
    ap.add_argument("--source-steps", type=int, default=1200)
    ap.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated; a variant may carry overrides: iwan:grl_hi=0.001+adv_weight=0.5",
    )
    ap.add_argument("--seeds", default=",".join(str(s) for s in SEEDS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--adapt-steps", type=int, default=ADAPT["steps"], help="(smoke tests only)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    data, runs, results = Path(args.data), Path(args.runs), Path(args.results)
    runs.mkdir(parents=True, exist_ok=True)
    ADAPT["steps"] = args.adapt_steps
    ADAPT["eval_every"] = min(ADAPT["eval_every"], max(1, args.adapt_steps // 2))
    variants = [v for v in args.variants.split(",") if v]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    t0 = time.monotonic()
    source = stage_source(data, runs, args.source_steps) if args.stage in ("all", "source") else runs / "source.pt"
    print(f"[{time.monotonic() - t0:.0f} s] source model: {source}", flush=True)
    if args.stage in ("all", "adapt"):
        stage_adapt(data, runs, source, variants, seeds)
        print(f"[{time.monotonic() - t0:.0f} s] adaptation done", flush=True)
    if args.stage in ("all", "report"):
        stage_report(data, runs, results, source, variants, seeds)
        print(f"[{time.monotonic() - t0:.0f} s] report written to {results}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

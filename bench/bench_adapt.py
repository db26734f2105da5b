#!/usr/bin/env python3
"""Time to adapt the default model to 30 minutes of recorded target audio (``sst adapt`` defaults).

What it measures, on this machine:
  1. loading + resampling + hashing target audio (a WAV of ``--measure-audio-s`` seconds in the
     default array's channel count), scaled linearly to ``--target-min`` minutes;
  2. the adaptation itself with the default :class:`AdaptConfig` (variant iwan): ``--measure-steps``
     training steps and one selection evaluation are timed, then scaled to the default number of
     steps and evaluations. The cost of a step does not depend on how much target audio there is
     (each step draws ``batch_size`` random crops), so the total is load time + steps x step time;
  3. the direction prior's pass (the network over all target audio, :mod:`sst_ros.adapt.direction_prior`),
     timed on the loaded audio and scaled linearly like the loading.

The figure printed is therefore an extrapolation from a measured shorter run; the script says so.
Without a shipped default model (``sst_ros/models/default.pt``) a CRNN of the default ("cpu")
size for the default array with random weights is timed instead (the cost does not depend on the
weights). Source clips are white-noise clips with labels, which cost the same as simulated ones.

Usage: python bench/bench_adapt.py [--measure-steps 4] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sst_ros.adapt.batches import SourcePool
from sst_ros.adapt.config import AdaptConfig
from sst_ros.adapt.trainer import IwanTrainer
from sst_ros.audio.wav import write_wav
from sst_ros.data.clip_reader import ClipReader
from sst_ros.data.clipset import Labels, write_array_yaml, write_clip
from sst_ros.data.target_set import load_target_set
from sst_ros.errors import ModelError
from sst_ros.timebase import OUTPUT_FRAME_S, frame_samples


def _model():
    from sst_ros.geometry import load_array
    from sst_ros.model.azimuth import grid_for_array
    from sst_ros.model.checkpoint import load_checkpoint
    from sst_ros.model.crnn import CRNN, ModelConfig
    from sst_ros.model.features import FeatureConfig

    try:
        lm = load_checkpoint(None)
        return lm.model, lm.array, lm.feature_cfg, "shipped default model"
    except ModelError:
        array = load_array("respeaker_usb_v2")
        mc = ModelConfig.preset("cpu", array.n_mics, grid=grid_for_array(array))
        what = "no default.pt: default-size ('cpu' preset) CRNN, random weights"
        return CRNN(mc).eval(), array, FeatureConfig(), what


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target-min", type=float, default=30.0, help="target audio to extrapolate to, minutes")
    ap.add_argument("--measure-audio-s", type=float, default=60.0, help="target audio actually loaded, seconds")
    ap.add_argument("--measure-steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, array, fcfg, what = _model()
    fs = fcfg.sample_rate_hz
    cfg = AdaptConfig()  # the `sst adapt` defaults
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # target: one recording in the device's channel count
        n = int(args.measure_audio_s * fs)
        write_wav(tmp / "target" / "rec.wav", 0.1 * rng.standard_normal((n, array.n_input_channels)), fs)
        t0 = time.perf_counter()
        target = load_target_set([tmp / "target"], array, fs)
        load_s = time.perf_counter() - t0
        # source: labelled clips of the model's array
        for i in range(12):
            nf = 50
            t_s = np.arange(nf) * OUTPUT_FRAME_S
            lab = Labels(t_s, np.full(nf, rng.uniform(-180, 180)), np.zeros(nf), np.ones(nf, bool))
            audio = 0.1 * rng.standard_normal((nf * frame_samples(fs), array.n_mics))
            write_clip(tmp / "src", f"c{i:02d}", audio, fs, lab)
        write_array_yaml(tmp / "src", array.microphones_only())
        clips = ClipReader([tmp / "src"], array, fs, fcfg.hop * model.cfg.frames_per_output / fs)
        t0 = time.perf_counter()
        tr = IwanTrainer(model, fcfg, SourcePool(clips.subset(range(10))), SourcePool(clips.subset([10, 11])), target,
                         cfg, array=array)  # fmt: skip
        tr.prepare()  # the unadapted model's criteria and the target statistics stage
        setup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        tr.evaluate()
        eval_s = time.perf_counter() - t0
        tr.train_step()  # warm-up (allocator, thread pool), not timed
        t0 = time.perf_counter()
        for _ in range(args.measure_steps):
            tr.train_step()
        step_s = (time.perf_counter() - t0) / args.measure_steps
        from sst_ros.adapt.direction_prior import target_directions
        from sst_ros.model.checkpoint import LoadedModel

        t0 = time.perf_counter()
        target_directions(LoadedModel(model.eval(), array.microphones_only(), fcfg, model.cfg, {}),
                          [r.audio for r in target.recordings])  # fmt: skip
        prior_s = time.perf_counter() - t0
    n_evals = cfg.steps // cfg.eval_every + 1 + 1  # + the final selection pass
    load_full_s = load_s * args.target_min * 60.0 / args.measure_audio_s
    prior_full_s = prior_s * args.target_min * 60.0 / args.measure_audio_s
    total_s = load_full_s + setup_s + cfg.steps * step_s + n_evals * eval_s + prior_full_s
    res = {
        "model": what,
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "threads": args.threads,
        "config": {k: getattr(cfg, k) for k in ("variant", "steps", "batch_size", "crop_min_s", "crop_max_s")},
        "measured": {
            "target_audio_s": args.measure_audio_s,
            "load_s": round(load_s, 3),
            "setup_s": round(setup_s, 2),
            "train_step_s": round(step_s, 3),
            "evaluation_s": round(eval_s, 2),
            "direction_prior_s": round(prior_s, 2),
            "steps_timed": args.measure_steps,
        },
        "extrapolated": {
            "target_audio_min": args.target_min,
            "load_s": round(load_full_s, 1),
            "train_s": round(cfg.steps * step_s, 1),
            "evaluations_s": round(n_evals * eval_s, 1),
            "direction_prior_s": round(prior_full_s, 1),
            "total_min": round(total_s / 60.0, 2),
        },
    }
    print(json.dumps(res, indent=2))
    print(
        f"adapting the default model ({what}) to {args.target_min:.0f} min of target audio: "
        f"{total_s / 60:.1f} min on this machine with {args.threads} threads "
        f"(extrapolated from {args.measure_steps} timed steps and {args.measure_audio_s:.0f} s of loaded audio; "
        f"{cfg.steps} steps of {cfg.batch_size}+{cfg.batch_size} crops)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

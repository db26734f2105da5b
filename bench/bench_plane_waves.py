"""How well a model localises one talker with nothing but the direct path: a free-field probe.

Speech (the set-up's real recordings, pauses cut) arrives as an exact plane wave
(:mod:`sst_ros.sim.plane_wave`) from every ``--step`` degrees of azimuth, one clip per azimuth
and seed, with a little independent sensor noise. Each model runs over each clip
(:func:`sst_ros.model.infer.predict_audio`, the frame's highest peak); the error of a clip is the
median angular error over its frames after the first second whose activity exceeds 0.5.
Each clip is scored once per ``--snr-db`` entry: with independent white sensor noise that many
dB below the plane wave (by default ``SENSOR_SNR_DB``, 34 dB: 4 dB below the quietest diffuse
noise of the training scenes, whose SNR is -5..30 dB) and without any noise (``inf``: a test
signal, or a talker close to the array in a quiet, damped room; no training scene is that clean).
A clip depends only on its azimuth and seed, so a direction gets the same clip whatever
``--step`` or ``--azimuths`` is.

No room, no noise field, no other source: a model that errs here has learnt a bias, not met a
hard scene. The multi-source and single-talker benches (``bench_multisource.py``,
``bench_accuracy.py``) average such a bias away among reverberant scenes; this probe shows it per
direction. Usage (about 1.5 min per model and noise condition on a 2-core machine with the
defaults: 72 clips of 6 s)::

    python bench/bench_plane_waves.py [--model PATH ...] [--step 15 | --azimuths 150,-60]
        [--seeds 1,2,3] [--seconds 6] [--snr-db 34,inf] [--per-azimuth]

Prints, per model, the mean over azimuths of the per-azimuth error (the mean over seeds of each
clip's median error, degrees), the worst azimuth, the share of frames reported active, and with
``--per-azimuth`` the whole table. Exit code 0 (2 for bad arguments).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sst_ros.geometry import angular_distance_deg
from sst_ros.model.infer import predict_audio
from sst_ros.model.runtime import default_model_path, load_model
from sst_ros.sim.plane_wave import FS_HZ, SENSOR_SNR_DB, plane_wave, speech_signal, with_sensor_noise

WARMUP_FRAMES = 10  # the recurrent state's first second is not scored
ACTIVE = 0.5  # frames whose activity output is above this are scored


@dataclass(frozen=True)
class ProbeResult:
    """One model's per-azimuth figures under one noise condition."""

    error_deg: np.ndarray
    """(A,) mean over seeds of each clip's median angular error, degrees; NaN where no frame of any
    seed was active."""
    active: np.ndarray
    """(A,) share of the scored frames (after the first second) reported active, in [0, 1]."""


def scored_frames(seconds: float) -> int:
    """Output frames (100 ms) of a clip of ``seconds`` after the unscored first second."""
    return int(seconds * FS_HZ) // (FS_HZ // 10) - WARMUP_FRAMES


def clip_rng(seed: int, azimuth_deg: float) -> np.random.Generator:
    """The generator of one probe clip: the same clip for every model, step and azimuth list."""
    return np.random.default_rng([seed, int(round((azimuth_deg % 360.0) * 1000))])


def probe(model_path: Path, azimuths_deg: np.ndarray, seeds: list[int], seconds: float, snr_db: float) -> ProbeResult:
    """Per-azimuth errors of one model.

    Args:
        model_path: checkpoint (.pt) or ONNX export (.onnx) of a model for the ReSpeaker USB v2
            (any model: the plane waves arrive at the model's own array).
        azimuths_deg: (A,) source azimuths, degrees, array frame.
        seeds: clip seeds; each (seed, azimuth) is one clip.
        seconds: clip length, s; must exceed the unscored first second.
        snr_db: plane wave to sensor noise ratio, dB (``inf``: no noise).
    """
    if scored_frames(seconds) < 1:
        raise ValueError(f"clips of {seconds:g} s leave no frame after the unscored first second: use --seconds > 1")
    loaded = load_model(model_path)
    n = int(seconds * FS_HZ)
    errors = np.full((len(seeds), azimuths_deg.size), np.nan)
    active = np.zeros_like(errors)
    for i, seed in enumerate(seeds):
        for j, az in enumerate(azimuths_deg):
            rng = clip_rng(seed, float(az))
            audio = with_sensor_noise(plane_wave(loaded.array, float(az), n, rng, speech_signal(n, rng)), rng, snr_db)
            pred = predict_audio(loaded, audio, FS_HZ)
            on = pred.activity[WARMUP_FRAMES:] > ACTIVE
            active[i, j] = on.mean()
            if on.any():
                errors[i, j] = np.median(angular_distance_deg(pred.azimuth_deg[WARMUP_FRAMES:][on], float(az)))
    # an azimuth no seed found active stays NaN (np.nanmean would warn on it)
    error_deg = np.array([np.nan if np.isnan(c).all() else np.nanmean(c) for c in errors.T])
    return ProbeResult(error_deg=error_deg, active=active.mean(axis=0))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", nargs="+", type=Path, default=[default_model_path()], help="model(s) (.pt or .onnx)")
    p.add_argument("--step", type=float, default=15.0, help="azimuth spacing from -180, degrees (default 15)")
    p.add_argument("--azimuths", default="", help="azimuths, degrees, comma separated (instead of --step)")
    p.add_argument("--seeds", default="1,2,3", help="clip seeds, comma separated (default 1,2,3)")
    p.add_argument("--seconds", type=float, default=6.0, help="clip length, s (default 6)")
    p.add_argument(
        "--snr-db",
        default=f"{SENSOR_SNR_DB:g},inf",
        help=f"sensor-noise conditions, dB, comma separated (default {SENSOR_SNR_DB:g},inf)",
    )
    p.add_argument("--per-azimuth", action="store_true", help="print every azimuth's error")
    args = p.parse_args(argv)
    if scored_frames(args.seconds) < 1:
        p.error(f"--seconds {args.seconds:g}: clips must be longer than the unscored first second")
    if args.azimuths:
        azimuths = np.array([float(a) for a in args.azimuths.split(",")])
        where = f"{azimuths.size} azimuths ({args.azimuths} deg)"
    else:
        azimuths = np.arange(-180.0, 180.0, args.step)
        where = f"{azimuths.size} azimuths every {args.step:g} deg"
    seeds = [int(s) for s in args.seeds.split(",")]
    snrs = [float(s) for s in args.snr_db.split(",")]
    results = {(m, snr): probe(m, azimuths, seeds, args.seconds, snr) for m in args.model for snr in snrs}
    print(f"free-field speech plane waves: {where}, seeds {args.seeds}, "
          f"{args.seconds:g} s clips; error = median over active frames, degrees")  # fmt: skip
    for (m, snr), r in results.items():
        head = f"{m}, sensor noise {snr:g} dB below:"
        if np.isnan(r.error_deg).all():
            print(f"{head} no frame reported active (activity <= {ACTIVE}) at any azimuth")
            continue
        worst = int(np.nanargmax(r.error_deg))
        print(f"{head} mean error {np.nanmean(r.error_deg):.2f} deg, worst {r.error_deg[worst]:.1f} deg at "
              f"{azimuths[worst]:g} deg, active {100 * r.active.mean():.1f} % of frames")  # fmt: skip
    if args.per_azimuth:
        print("azimuth_deg," + ",".join(f"error_deg[{i}]" for i in range(len(results))))  # in the order above
        for j, az in enumerate(azimuths):
            print(f"{az:g}," + ",".join(f"{r.error_deg[j]:.2f}" for r in results.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

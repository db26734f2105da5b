"""How well a model localises one talker with nothing but the direct path: a free-field probe.

Speech (the set-up's real recordings, pauses cut) arrives as an exact plane wave
(:mod:`sst_ros.sim.plane_wave`) from every ``--step`` degrees of azimuth, one clip per azimuth
and seed, with a little independent sensor noise. Each model runs over each clip
(:func:`sst_ros.model.infer.predict_audio`, the frame's highest peak); the error of a clip is the
median angular error over its frames after the first second whose activity exceeds 0.5.
Each clip is scored twice: with independent white sensor noise at ``--snr-db`` (by default
``SENSOR_SNR_DB``, 34 dB below the plane wave, inside the -5..30 dB of the training scenes'
noise) and without any noise (far above the training range: a test signal, or a talker close to
the array in a quiet, damped room).

No room, no noise field, no other source: a model that errs here has learnt a bias, not met a
hard scene. The multi-source and single-talker benches (``bench_multisource.py``,
``bench_accuracy.py``) average such a bias away among reverberant scenes; this probe shows it per
direction. Usage (about 20 s per model on 2 cores)::

    python bench/bench_plane_waves.py [--model PATH ...] [--step 15] [--seeds 1,2,3] [--seconds 6]

Prints, per model, the mean over azimuths of the per-azimuth error (the mean over seeds of each
clip's median error, degrees), the worst azimuth, the share of frames reported active, and with
``--per-azimuth`` the whole table. Exit code 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sst_ros.geometry import angular_distance_deg
from sst_ros.model.infer import predict_audio
from sst_ros.model.runtime import default_model_path, load_model
from sst_ros.sim.plane_wave import FS_HZ, SENSOR_SNR_DB, plane_wave, speech_signal, with_sensor_noise

WARMUP_FRAMES = 10  # the recurrent state's first second is not scored
ACTIVE = 0.5  # frames whose activity output is above this are scored


def probe(model_path: Path, azimuths_deg: np.ndarray, seeds: list[int], seconds: float, snr_db: float) -> dict:
    """Per-azimuth errors of one model.

    Args:
        snr_db: plane wave to sensor noise ratio, dB (``inf``: no noise).
    Returns:
        dict with ``error_deg`` ((A,) mean over seeds of each clip's median error, degrees; NaN
        where no frame of any seed was active) and ``active`` ((A,) share of scored frames active).
    """
    loaded = load_model(model_path)
    n = int(seconds * FS_HZ)
    errors = np.full((len(seeds), azimuths_deg.size), np.nan)
    active = np.zeros_like(errors)
    for i, seed in enumerate(seeds):
        for j, az in enumerate(azimuths_deg):
            rng = np.random.default_rng([seed, j])  # the same clip for every model
            audio = with_sensor_noise(plane_wave(loaded.array, float(az), n, rng, speech_signal(n, rng)), rng, snr_db)
            pred = predict_audio(loaded, audio, FS_HZ)
            on = pred.activity[WARMUP_FRAMES:] > ACTIVE
            active[i, j] = on.mean()
            if on.any():
                errors[i, j] = np.median(angular_distance_deg(pred.azimuth_deg[WARMUP_FRAMES:][on], float(az)))
    return {"error_deg": np.nanmean(errors, axis=0), "active": active.mean(axis=0)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", nargs="+", type=Path, default=[default_model_path()], help="model(s) (.pt or .onnx)")
    p.add_argument("--step", type=float, default=15.0, help="azimuth spacing, degrees (default 15)")
    p.add_argument("--seeds", default="1,2,3", help="clip seeds, comma separated (default 1,2,3)")
    p.add_argument("--seconds", type=float, default=6.0, help="clip length, s (default 6)")
    p.add_argument(
        "--snr-db",
        default=f"{SENSOR_SNR_DB:g},inf",
        help=f"sensor-noise conditions, dB, comma separated (default {SENSOR_SNR_DB:g},inf)",
    )
    p.add_argument("--per-azimuth", action="store_true", help="print every azimuth's error")
    args = p.parse_args(argv)
    azimuths = np.arange(-180.0, 180.0, args.step)
    seeds = [int(s) for s in args.seeds.split(",")]
    snrs = [float(s) for s in args.snr_db.split(",")]
    results = {(m, snr): probe(m, azimuths, seeds, args.seconds, snr) for m in args.model for snr in snrs}
    print(f"free-field speech plane waves: {azimuths.size} azimuths every {args.step:g} deg, seeds {args.seeds}, "
          f"{args.seconds:g} s clips; error = median over active frames, degrees")  # fmt: skip
    for (m, snr), r in results.items():
        worst = int(np.nanargmax(r["error_deg"]))
        print(f"{m}, sensor noise {snr:g} dB below: mean error {np.nanmean(r['error_deg']):.2f} deg, worst "
              f"{r['error_deg'][worst]:.1f} deg at {azimuths[worst]:g} deg, active {100 * r['active'].mean():.1f} % "
              "of frames")  # fmt: skip
    if args.per_azimuth:
        print("azimuth_deg," + ",".join(f"error_deg[{i}]" for i in range(len(results))))  # in the order above
        for j, az in enumerate(azimuths):
            print(f"{az:g}," + ",".join(f"{r['error_deg'][j]:.2f}" for r in results.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Build four target domains for benchmarking unsupervised adaptation of the shipped model.

The shipped model (array ``config/arrays/respeaker_usb_v2.yaml``: 4 microphones on a 32 mm
radius circle) was trained on ``sst_ros/sim`` scenes (own image-source code of order 3 + a
diffuse exponential tail, talkers at 1.0-1.9 m, array at 0.3-1.5 m, spherically diffuse noise,
espeak-ng + recorded speech, microphone errors of 0.5 mm / 1 dB). None of the domains below
uses that engine or those settings: room responses are pyroomacoustics image sources of order
10 (L-shaped rooms: 6) with air absorption; noise comes from point sources rendered through
those rooms; speech is recorded speech only (see ``domain_audio.CORPORA`` for which corpora the
training simulator also used: all of them, so the split below is by file).

Domains (one subfolder of ``--out`` each):

``device``
    Device mismatch of a cheap MEMS array unit (one unit, fixed for the whole domain, the same
    unit as in ``combined``): per-channel colouring (low shelf, peak, high shelf within +-3 dB),
    gain error (std 2 dB), delay error (std 25 us, clipped at +-40 us) and microphone position
    error (std 3 mm per axis; rendered at the perturbed positions, labelled with the nominal
    geometry). Moderate acoustics (shoebox rooms, RT60 0.2-0.7 s, ambient noise point sources at
    15-30 dB SNR), talkers in all directions.
``sector``
    Talkers only in front: azimuth within +-35 degrees of the array's +x axis (array frame,
    REP-103). Moderate acoustics, no device mismatch.
``acoustic``
    Acoustic shift: pyroomacoustics rooms (half of them L-shaped), RT60 0.3-0.9 s, the array low
    (0.2-0.5 m, a small robot), talkers standing close (mouth 1.5-1.85 m, elevation 20-45 degrees
    above the array), real-speech babble from 1-2 other static directions (>= 30 degrees from the
    talker, 15-25 dB below it) and a fan (tonal hum + broadband airflow, point source, 10-25 dB
    below), all azimuths. (Babble 5-20 dB below from 1-3 directions made the unadapted model
    track the babble: MAE ~37-40 degrees; the model never saw a directional interfering talker.)
``combined``
    All of the above: the device unit + the frontal sector + the acoustic shift, with quieter
    interferers (one babble talker 20-30 dB below, fan 15-30 dB below).

Per domain: ``pool/`` (unlabelled 4-channel WAV files of ``--pool-clip-s`` s, ``--pool-min``
minutes in all, plus ``array.yaml``; no labels), ``test/`` (a labelled clip set as
``sst simulate`` writes it: WAV + CSV per clip, ``array.yaml``, ``clips.jsonl``), ``meta.json``
(parameters, seeds, counts, durations, build time; written last). Pool and test use disjoint
utterances (split by file) and their own rooms (per-clip seeds from (seed, domain, split, index)).

Talker: one per clip, moving (waypoints every 2-6 s, <= 1 m/s, 30 % static), RIRs recomputed
every 0.5 s and crossfaded. Labels per 100 ms frame: azimuth/elevation of the direct path from
the array centre at the frame centre (array frame), activity by ``sst_ros.sim.scene.activity_labels``
on the dry speech delayed by the propagation time (the simulator's thresholds).

Usage:
    python training/adapt_benchmark/build_domains.py --out training/data/adapt_benchmark \\
        [--domains device sector acoustic combined] [--pool-min 30] [--n-test 150] [--test-s 6] \\
        [--seed 0] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import domain_audio as da  # noqa: E402

from sst_ros.audio.wav import write_wav  # noqa: E402
from sst_ros.data.clipset import Labels, write_array_yaml, write_clip  # noqa: E402
from sst_ros.geometry import load_array, wrap_deg  # noqa: E402
from sst_ros.sim.scene import activity_labels  # noqa: E402
from sst_ros.timebase import OUTPUT_FRAME_S, frame_samples  # noqa: E402

FS = da.FS
FRAME = frame_samples(FS)
RIR_HOP_S = 0.5
ARRAY_NAME = "respeaker_usb_v2"
SPLIT_IDS = {"pool": 1, "test": 2}
DEVICE_SEED_TAG = 777  # the device unit is drawn from (seed, DEVICE_SEED_TAG): shared by device/combined


@dataclass(frozen=True)
class DomainSpec:
    """Which shifts a domain applies (see the module docstring)."""

    name: str
    domain_id: int
    device: bool = False
    sector_deg: float | None = None
    acoustic: bool = False
    # acoustic-shift levels (used when ``acoustic``): ranges drawn uniformly per clip
    rt60_s: tuple[float, float] = (0.3, 0.9)
    elevation_deg: tuple[float, float] = (20.0, 45.0)
    babble_below_db: tuple[float, float] = (15.0, 25.0)
    n_babble: tuple[int, int] = (1, 2)
    fan_below_db: tuple[float, float] = (10.0, 25.0)


DOMAINS: dict[str, DomainSpec] = {
    "device": DomainSpec("device", 1, device=True),
    "sector": DomainSpec("sector", 2, sector_deg=35.0),
    "acoustic": DomainSpec("acoustic", 3, acoustic=True),
    # combined: the acoustic shift with quieter interferers (with 15-25 dB babble the unadapted
    # model was no better than a constant frontal guess inside the +-35 degree sector)
    "combined": DomainSpec(
        "combined",
        4,
        device=True,
        sector_deg=35.0,
        acoustic=True,
        babble_below_db=(20.0, 30.0),
        n_babble=(1, 1),
        fan_below_db=(15.0, 30.0),
    ),
}

_STATE: dict[str, Any] = {}  # set in the parent before forking: corpus, array, device


# ------------------------------------------------------------------ scene ----
def _sample_room(spec: DomainSpec, rng: np.random.Generator) -> da.RoomGeom:
    if spec.acoustic:
        size = rng.uniform([4.5, 4.0, 2.4], [10.0, 8.0, 3.2])
        notch = size[:2] * rng.uniform(0.55, 0.75, 2) if rng.random() < 0.5 else None
        return da.RoomGeom(size, float(rng.uniform(*spec.rt60_s)), notch, max_order=6 if notch is not None else 10)
    size = rng.uniform([3.5, 3.0, 2.5], [9.0, 7.0, 3.5])
    return da.RoomGeom(size, float(rng.uniform(0.2, 0.7)), None, max_order=10)


def _rot(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _to_room(origin: np.ndarray, yaw: float, az_deg: np.ndarray, dist: np.ndarray, height: float) -> np.ndarray:
    """Array-frame polar (azimuth, horizontal distance) + absolute height -> room coordinates."""
    a = np.deg2rad(az_deg) + yaw
    return np.stack([origin[0] + dist * np.cos(a), origin[1] + dist * np.sin(a), np.full_like(a, height)], axis=-1)


def _place(spec: DomainSpec, geom: da.RoomGeom, dur: float, rng: np.random.Generator) -> dict[str, Any]:
    """Array pose and a talker trajectory that stays inside the room (retried until it does)."""
    az_range = (-spec.sector_deg, spec.sector_deg) if spec.sector_deg else (-180.0, 180.0)
    for _ in range(500):
        h_arr = rng.uniform(0.2, 0.5) if spec.acoustic else rng.uniform(0.3, 1.5)
        origin = np.append(rng.uniform(0.5, geom.size_m[:2] - 0.5), h_arr)
        if not geom.inside(np.append(origin[:2], 0.5 * geom.size_m[2]), 0.5):  # walls only
            continue
        yaw = float(rng.uniform(-np.pi, np.pi))
        if spec.acoustic:
            h_talk = rng.uniform(1.5, 1.85)
            dh = h_talk - h_arr
            el_lo, el_hi = np.deg2rad(spec.elevation_deg)
            dist_range = (dh / np.tan(el_hi), dh / np.tan(el_lo))
        else:
            h_talk = rng.uniform(1.0, 1.9)
            dist_range = (0.7, 4.0)

        def valid(az: np.ndarray, dist: np.ndarray, o: np.ndarray = origin, y: float = yaw, h: float = h_talk) -> bool:
            return all(geom.inside(p, 0.3) for p in _to_room(o, y, az, dist, h))

        traj = da.sample_trajectory(rng, dur, az_range, dist_range, h_talk, valid)
        if traj is not None:
            return {"origin": origin, "yaw": yaw, "traj": traj}
    raise RuntimeError("could not place the array and talker in the room")


def _static_points(
    geom: da.RoomGeom, origin: np.ndarray, yaw: float, avoid_az: np.ndarray, k: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, float]]:
    """k babble positions >= 30 degrees away from the talker's azimuths (best effort), with azimuths."""
    out: list[tuple[np.ndarray, float]] = []
    for _ in range(400):
        if len(out) == k:
            break
        az = rng.uniform(-180, 180)
        p = _to_room(origin, yaw, np.array([az]), np.array([rng.uniform(1.0, 4.0)]), rng.uniform(1.0, 1.8))[0]
        sep = np.min(np.abs(wrap_deg(avoid_az - az)))
        if geom.inside(p, 0.3) and sep >= 30.0:
            out.append((p, float(az)))
    return out


def _any_point(geom: da.RoomGeom, rng: np.random.Generator, z: tuple[float, float]) -> np.ndarray:
    for _ in range(400):
        p = np.append(rng.uniform(0.3, geom.size_m[:2] - 0.3), rng.uniform(*z))
        if geom.inside(p, 0.3):
            return p
    raise RuntimeError("no point inside the room")


def _power(x: np.ndarray, mask: np.ndarray | None = None) -> float:
    if mask is not None and mask.any():
        x = x[mask]
    return max(float(np.mean(x**2)), 1e-20)


def make_scene(spec: DomainSpec, split: str, index: int, seed: int, dur: float) -> tuple[np.ndarray, Labels, dict]:
    """One clip of a domain: (audio (n, 4) float32, labels, metadata)."""
    rng = np.random.default_rng([seed, spec.domain_id, SPLIT_IDS[split], index])
    corpus: da.Corpus = _STATE["corpus"]
    nominal = _STATE["array"].positions_m
    n = int(round(dur * FS))
    n_frames = n // FRAME
    geom = _sample_room(spec, rng)
    place = _place(spec, geom, dur, rng)
    origin, yaw, traj = place["origin"], place["yaw"], place["traj"]
    device: da.Device | None = _STATE["device"] if spec.device else None
    mic_local = nominal + (device.position_error_m if device is not None else 0.0)
    mics = origin + mic_local @ _rot(yaw).T

    # talker: RIRs every RIR_HOP_S along the path (one RIR when static), crossfaded
    hop = int(RIR_HOP_S * FS)
    t_rir = np.arange(0, n + hop, hop) / FS
    az_r, d_r = traj.polar(t_rir)
    if np.ptp(az_r) < 1e-6 and np.ptp(d_r) < 1e-6:
        az_r, d_r = az_r[:1], d_r[:1]
    speech = da.speech_track(corpus.items[f"talker_{split}"], n, rng)
    wet = da.render_moving(speech, da.rirs(geom, _to_room(origin, yaw, az_r, d_r, traj.height_m), mics), hop)

    t_frames = (np.arange(n_frames) + 0.5) * OUTPUT_FRAME_S
    az_f, d_f = traj.polar(t_frames)
    delay = int(round(float(np.mean(np.hypot(d_f, traj.height_m - origin[2]))) / da.C_SOUND * FS))
    direct = np.concatenate([np.zeros(delay), speech])[:n]
    active, mask = activity_labels(direct, FS, n_frames, OUTPUT_FRAME_S, -35.0, 0.667)
    p_talk = _power(wet, mask)

    # static sources in one pyroomacoustics call: 2 ambient noises (+ babble, + fan)
    info: dict[str, Any] = {}
    srcs: list[tuple[str, np.ndarray, np.ndarray, float]] = []  # kind, position, signal, level dB re talker
    snr = float(rng.uniform(15.0, 30.0))
    for _ in range(2):
        srcs.append(("noise", _any_point(geom, rng, (0.3, geom.size_m[2] - 0.3)), da.noise_signal(n, rng), -snr - 3.0))
    if spec.acoustic:
        for p, az in _static_points(
            geom, origin, yaw, az_f, int(rng.integers(spec.n_babble[0], spec.n_babble[1] + 1)), rng
        ):
            level = -rng.uniform(*spec.babble_below_db)
            srcs.append(("babble", p, da.babble_track(corpus.items[f"babble_{split}"], n, rng), level))
            info.setdefault("babble_az_deg", []).append(round(az, 1))
        srcs.append(("fan", _any_point(geom, rng, (0.2, 2.5)), da.fan_signal(n, rng), -rng.uniform(*spec.fan_below_db)))
    h_static = da.rirs(geom, np.array([s[1] for s in srcs]), mics)
    mix = wet.copy()
    for (kind, _, sig, level_db), h in zip(srcs, h_static, strict=True):
        img = da.render_static(sig, h)
        mix += img * np.sqrt(p_talk * 10 ** (level_db / 10) / _power(img))
        info.setdefault(f"{kind}_level_db", []).append(round(level_db, 1))

    if device is not None:
        mix = device.apply(mix)
    peak_dbfs = float(rng.uniform(-20.0, -3.0))
    mix *= 10 ** (peak_dbfs / 20) / max(float(np.max(np.abs(mix))), 1e-12)
    self_noise = float(rng.uniform(-80.0, -65.0) if device is not None else rng.uniform(-90.0, -70.0))
    mix += rng.standard_normal(mix.shape) * 10 ** (self_noise / 20)
    audio = np.clip(mix, -1.0, 1.0 - 2.0**-15).astype(np.float32)

    el_f = np.rad2deg(np.arctan2(traj.height_m - origin[2], d_f))
    labels = Labels(np.arange(n_frames) * OUTPUT_FRAME_S, np.asarray(wrap_deg(az_f)), el_f, active)
    meta = {
        "room": geom.to_dict(),
        "array_origin_m": np.round(origin, 2).tolist(),
        "array_yaw_deg": round(float(np.rad2deg(yaw)), 1),
        "trajectory": traj.to_dict(),
        "n_rirs_talker": int(az_r.size),
        "ambient_snr_db": round(snr, 1),
        "peak_dbfs": round(peak_dbfs, 1),
        "self_noise_dbfs": round(self_noise, 1),
        "active_fraction": round(float(active.mean()), 3),
        **info,
    }
    return audio, labels, meta


# ------------------------------------------------------------------ jobs ----
def _job(job: tuple[str, str, int, int, float, str]) -> dict[str, Any]:
    name, split, index, seed, dur, out = job
    audio, labels, meta = make_scene(DOMAINS[name], split, index, seed, dur)
    stem = f"{split}_{index:05d}"
    if split == "test":
        write_clip(Path(out), stem, audio, FS, labels, subtype="PCM_16")
    else:  # unlabelled: the WAV only; drop what would give the labels away
        write_wav(Path(out) / f"{stem}.wav", audio, FS, subtype="PCM_16")
        meta = {k: v for k, v in meta.items() if k not in ("trajectory", "babble_az_deg", "array_yaw_deg")}
    return {"index": index, "name": stem, **meta}


def _run(jobs: list[tuple], workers: int, label: str) -> list[dict[str, Any]]:
    t0 = time.monotonic()
    results: list[dict[str, Any]] = []
    ctx = mp.get_context("fork")
    with ctx.Pool(workers) if workers > 1 else _Serial() as pool:
        for r in pool.imap_unordered(_job, jobs, chunksize=1):
            results.append(r)
            if len(results) % max(1, len(jobs) // 10) == 0 or len(results) == len(jobs):
                print(f"  {label}: {len(results)}/{len(jobs)} ({time.monotonic() - t0:.0f} s)", flush=True)
    return sorted(results, key=lambda r: r["index"])


class _Serial:
    """Stand-in for a process pool with one worker (runs in this process)."""

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def imap_unordered(self, fn, it, chunksize: int = 1):  # noqa: ANN001, ANN201
        return map(fn, it)


def build_domain(spec: DomainSpec, args: argparse.Namespace) -> None:
    """Build ``<out>/<name>`` via ``<name>.partial`` (skipped when meta.json already exists)."""
    final = Path(args.out) / spec.name
    if (final / "meta.json").is_file():
        print(f"{spec.name}: complete, skipped ({final})", flush=True)
        return
    part = Path(args.out) / f"{spec.name}.partial"
    shutil.rmtree(part, ignore_errors=True)
    t0 = time.monotonic()
    n_pool = int(np.ceil(args.pool_min * 60.0 / args.pool_clip_s))
    mic_array = _STATE["array"]
    meta: dict[str, Any] = {"domain": spec.name, "spec": asdict(spec), "seed": args.seed, "sample_rate_hz": FS}
    for split, count, dur in (("pool", n_pool, args.pool_clip_s), ("test", args.n_test, args.test_s)):
        d = part / split
        d.mkdir(parents=True, exist_ok=True)
        write_array_yaml(d, mic_array)
        jobs = [(spec.name, split, i, args.seed, float(dur), str(d)) for i in range(count)]
        clips = _run(jobs, args.workers, f"{spec.name}/{split}")
        if split == "test":
            with (d / "clips.jsonl").open("w") as fh:
                fh.writelines(json.dumps(c) + "\n" for c in clips)
        meta[split] = {
            "n_clips": count,
            "clip_s": dur,
            "minutes": round(count * dur / 60, 2),
            "labelled": split == "test",
        }
        if split == "pool":
            meta["pool"]["clips"] = clips
    meta.update(_domain_notes(spec, args))
    meta["build_wall_s"] = round(time.monotonic() - t0, 1)
    (part / "meta.json").write_text(json.dumps(meta, indent=1))
    if final.exists():
        shutil.rmtree(final)
    part.rename(final)
    print(f"{spec.name}: done in {meta['build_wall_s']:.0f} s -> {final}", flush=True)


def _domain_notes(spec: DomainSpec, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "array": ARRAY_NAME,
        "device_unit": _STATE["device"].to_dict() if spec.device else None,
        "rir_update_s": RIR_HOP_S,
        "workers": args.workers,
        "clip_seed": "numpy default_rng([seed, domain_id, split_id (pool 1, test 2), index])",
        "speech": {
            "talker_pool": "talker_pool split (recorded: asterisk Allison + pocketsphinx, by file)",
            "talker_test": "talker_test split (disjoint files)",
            "babble": "babble_pool / babble_test splits (disjoint files)" if spec.acoustic else None,
            "splits": _STATE["corpus"].summary(),
            "files": _STATE["corpus"].names,
            "note": "the training simulator also used these recorded corpora (no unused recorded speech is "
            "installed); espeak-ng is not used here",
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=list(DOMAINS))
    ap.add_argument("--pool-min", type=float, default=30.0, help="unlabelled minutes per domain")
    ap.add_argument("--pool-clip-s", type=float, default=20.0, help="length of one pool WAV, s")
    ap.add_argument("--n-test", type=int, default=150)
    ap.add_argument("--test-s", type=float, default=6.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    _STATE["array"] = load_array(ARRAY_NAME).microphones_only()
    _STATE["corpus"] = da.Corpus.load()
    _STATE["device"] = da.Device.sample(np.random.default_rng([args.seed, DEVICE_SEED_TAG]), _STATE["array"].n_mics)
    print(f"speech corpus: {_STATE['corpus'].summary()} ({time.monotonic() - t0:.1f} s)", flush=True)
    for name in args.domains:
        build_domain(DOMAINS[name], args)
    print(f"all done in {time.monotonic() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

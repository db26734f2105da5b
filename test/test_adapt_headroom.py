"""The blind per-channel delay estimate of ``training/adapt_benchmark/headroom.py``."""

from __future__ import annotations

import numpy as np
from helpers import REPO_ROOT, load_module

from sst_ros.geometry import SPEED_OF_SOUND_M_S, load_array

headroom = load_module("adapt_headroom", REPO_ROOT / "training" / "adapt_benchmark" / "headroom.py")
FS = 16000


def _plane_waves(positions: np.ndarray, delays_s: np.ndarray, n_rec: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n_rec`` recordings of 2 s, each one white-noise source at a random azimuth (all around),
    every channel delayed by its extra ``delays_s``; a little sensor noise."""
    n, pad = 2 * FS, 2048
    f = np.fft.rfftfreq(n + pad, 1 / FS)
    out = []
    for az in rng.uniform(-np.pi, np.pi, n_rec):
        u = np.array([np.cos(az), np.sin(az), 0.0])
        arrival = -(positions @ u) / SPEED_OF_SOUND_M_S + delays_s  # (M,) seconds
        src = np.fft.rfft(rng.standard_normal(n + pad))
        x = np.fft.irfft(src[:, None] * np.exp(-2j * np.pi * f[:, None] * arrival[None, :]), n + pad, axis=0)[:n]
        out.append((x + 0.01 * rng.standard_normal(x.shape)).astype(np.float32))
    return out


def test_channel_delays_are_found_from_sources_all_around() -> None:
    positions = np.asarray(load_array("respeaker_usb_v2").positions_m)
    rng = np.random.default_rng(0)
    true = np.array([-26.3, -5.5, -26.3, 9.1]) * 1e-6  # the benchmark device unit's errors
    est = headroom.estimate_channel_delays(_plane_waves(positions, true, 24, rng), positions, FS)
    assert np.max(np.abs(est - (true - true.mean()))) < 3e-6, est * 1e6
    # and a matched array gives (about) no delays
    est0 = headroom.estimate_channel_delays(_plane_waves(positions, np.zeros(4), 24, rng), positions, FS)
    assert np.max(np.abs(est0)) < 3e-6, est0 * 1e6


def test_advance_channels_undoes_a_delay() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((FS, 1)).astype(np.float32)
    delayed = np.concatenate([np.zeros((3, 1), np.float32), x[:-3]])  # 3 samples late
    back = headroom.advance_channels(delayed, np.array([3 / FS]), FS)
    assert np.allclose(back[100:-100], x[100:-100], atol=1e-3)

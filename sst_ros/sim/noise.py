"""Diffuse (isotropic) multichannel noise with the theoretical inter-microphone coherence.

Method: M independent noise signals are mixed per STFT bin by a matrix ``A(f)`` with
``A A^H = Gamma(f)``, the coherence matrix of the field for the microphone positions
(E. Habets, I. Cohen, S. Gannot, "Generating nonstationary multisensor signals under a
spatial coherence constraint", JASA 124(5), 2008):

- spherically isotropic (3-D diffuse) field: ``Gamma_ij(f) = sinc(2 f d_ij / c)``
  (``sinc(x) = sin(pi x) / (pi x)``), d_ij = distance between microphones i and j in metres;
- cylindrically isotropic (2-D, horizontal) field: ``Gamma_ij(f) = J0(2 pi f d_ij / c)``.

Also simple coloured noises (white, pink, brown) used as the independent source signals.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import j0

from sst_ros.geometry import SPEED_OF_SOUND_M_S

__all__ = ["coherence_matrix", "coloured_noise", "diffuse_noise", "theoretical_coherence"]


def theoretical_coherence(distance_m: float | np.ndarray, freq_hz: np.ndarray, field: str = "spherical") -> np.ndarray:
    """Coherence of an isotropic field between two points ``distance_m`` apart at ``freq_hz``."""
    x = 2.0 * np.asarray(freq_hz, dtype=np.float64) * np.asarray(distance_m, dtype=np.float64) / SPEED_OF_SOUND_M_S
    if field == "spherical":
        return np.sinc(x)
    if field == "cylindrical":
        return j0(np.pi * x)
    raise ValueError(f"unknown diffuse field '{field}'; use spherical or cylindrical")


def coherence_matrix(positions_m: np.ndarray, freq_hz: np.ndarray, field: str = "spherical") -> np.ndarray:
    """(F, M, M) real coherence matrices for microphone positions (M, 3) metres at freqs (F,) Hz."""
    pos = np.asarray(positions_m, dtype=np.float64)
    d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    return theoretical_coherence(d[None, :, :], np.asarray(freq_hz)[:, None, None], field)


def coloured_noise(n: int, rng: np.random.Generator, colour: str = "white", n_channels: int = 1) -> np.ndarray:
    """(n, n_channels) float32 independent noise with power spectrum 1/f^a (white 0, pink 1, brown 2).

    Unit RMS per channel.
    """
    exponent = {"white": 0.0, "pink": 1.0, "brown": 2.0}[colour]
    x = rng.standard_normal((n, n_channels))
    if exponent > 0:
        spec = np.fft.rfft(x, axis=0)
        f = np.arange(spec.shape[0], dtype=np.float64)
        f[0] = 1.0
        f = np.maximum(f, max(1.0, spec.shape[0] * 20.0 / 8000.0))  # flatten below ~20 Hz (at 16 kHz)
        spec *= (f ** (-exponent / 2.0))[:, None]
        x = np.fft.irfft(spec, n=n, axis=0)
    x = x - x.mean(axis=0, keepdims=True)
    x /= np.maximum(np.sqrt(np.mean(x**2, axis=0, keepdims=True)), 1e-12)
    return x.astype(np.float32)


def diffuse_noise(
    positions_m: np.ndarray,
    n_samples: int,
    fs: int,
    rng: np.random.Generator,
    source: Callable[[int, int], np.ndarray] | None = None,
    field: str = "spherical",
    nfft: int = 256,
) -> np.ndarray:
    """Diffuse noise at microphones ``positions_m`` (M, 3) metres.

    Args:
        n_samples: output length in samples.
        fs: sample rate in Hz.
        rng: random generator (used when ``source`` is None: white Gaussian input).
        source: ``source(n, M) -> (n, M)`` independent single-channel noise signals to mix.
        field: "spherical" or "cylindrical".
        nfft: STFT length of the mixing (sqrt-Hann windows, 50 % overlap).
    Returns:
        (n_samples, M) float32, each channel with (about) the input's power.
    """
    pos = np.asarray(positions_m, dtype=np.float64)
    m = pos.shape[0]
    x = source(n_samples, m) if source is not None else rng.standard_normal((n_samples, m))
    x = np.asarray(x, dtype=np.float32)
    hop = nfft // 2
    # sqrt-Hann analysis and synthesis windows at 50 % overlap: perfect reconstruction.
    win = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(nfft) / nfft)).astype(np.float32)
    n_frames = -(-(n_samples + hop) // hop)
    padded = np.zeros(((n_frames + 1) * hop, m), dtype=np.float32)
    padded[hop : hop + n_samples] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, nfft, axis=0)[::hop]  # (T, M, nfft)
    spec = np.fft.rfft(frames * win, axis=-1).astype(np.complex64)  # (T, M, F)
    freqs = np.fft.rfftfreq(nfft, 1.0 / fs)
    gamma = coherence_matrix(pos, freqs, field)
    w, v = np.linalg.eigh(gamma)
    # Symmetric square root V sqrt(D) V^T: unique and smooth over frequency (an eigenvector basis
    # flips sign from bin to bin, and the window's leakage between bins then breaks the coherence).
    mix = ((v * np.sqrt(np.clip(w, 0.0, None))[:, None, :]) @ np.swapaxes(v, 1, 2)).astype(np.float32)  # (F, M, M)
    mixed = np.matmul(mix[None, :, :, :], spec.transpose(0, 2, 1)[..., None])[..., 0]  # (T, F, M)
    out_frames = np.fft.irfft(mixed, n=nfft, axis=1).astype(np.float32) * win[None, :, None]  # (T, nfft, M)
    y = np.zeros(((n_frames + 1) * hop, m), dtype=np.float32)
    y[: n_frames * hop] += out_frames[:, :hop].reshape(-1, m)
    y[hop : (n_frames + 1) * hop] += out_frames[:, hop:].reshape(-1, m)
    return np.ascontiguousarray(y[hop : hop + n_samples])

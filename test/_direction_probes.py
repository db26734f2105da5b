"""Independent direction probes of the simulator tests: what the audio itself says about where a
source is, computed here from first principles (FFT GCC-PHAT and a horizontal SRP-PHAT scan), so
that the scene engine's labels are checked against physics and not against its own code."""

from __future__ import annotations

import numpy as np

from sst_ros.geometry import SPEED_OF_SOUND_M_S, unit_vector

FS = 16000


def gcc_phat_delay(x: np.ndarray, y: np.ndarray, interp: int = 32, max_lag: int = 20) -> float:
    """Delay of y relative to x in samples (positive: y arrives later), sub-sample by FFT interpolation."""
    n = 2 * len(x)
    cross = np.fft.rfft(y, n) * np.conj(np.fft.rfft(x, n))
    cross /= np.maximum(np.abs(cross), 1e-12)
    cc = np.fft.irfft(cross, n * interp)
    lags = np.concatenate([np.arange(0, max_lag * interp + 1), np.arange(-max_lag * interp, 0)])
    vals = np.concatenate([cc[: max_lag * interp + 1], cc[-max_lag * interp :]])
    return float(lags[np.argmax(vals)] / interp)


def srp_azimuth_deg(audio: np.ndarray, positions_m: np.ndarray, fs: int = FS) -> float:
    """SRP-PHAT azimuth estimate (degrees, array frame) in the horizontal plane.

    Args:
        audio: (N, M) samples at ``fs`` Hz; positions_m: (M, 3) microphone positions, array frame.
    """
    spec = np.fft.rfft(audio, axis=0)
    f = np.fft.rfftfreq(audio.shape[0], 1.0 / fs)
    band = (f > 300) & (f < 4000)
    x = spec[band] / np.maximum(np.abs(spec[band]), 1e-12)  # (F, M)
    az = np.deg2rad(np.arange(-180.0, 180.0, 0.5))
    advance_s = unit_vector(az, 0.0) @ positions_m.T / SPEED_OF_SOUND_M_S  # (A, M): mic hears earlier
    steer = np.exp(-2j * np.pi * f[band][None, :, None] * advance_s[:, None, :])
    power = np.sum(np.abs(np.sum(x[None] * steer, axis=-1)) ** 2, axis=-1)
    return float(np.rad2deg(az[np.argmax(power)]))

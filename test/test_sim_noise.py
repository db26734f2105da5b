"""Diffuse noise: the simulated inter-microphone coherence follows the theoretical curve."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import csd, welch

from sst_ros.geometry import load_array
from sst_ros.sim.noise import coherence_matrix, coloured_noise, diffuse_noise, theoretical_coherence

FS = 16000


def _coherence(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f, pxy = csd(x, y, fs=FS, nperseg=512)
    _, pxx = welch(x, fs=FS, nperseg=512)
    _, pyy = welch(y, fs=FS, nperseg=512)
    return f, np.real(pxy) / np.sqrt(pxx * pyy)


@pytest.mark.parametrize("field", ["spherical", "cylindrical"])
def test_diffuse_coherence_follows_theory(field: str) -> None:
    # Pairs at 3 cm, 10 cm and 25 cm: the sinc/J0 curve crosses zero several times below 8 kHz.
    pos = np.array([[0.0, 0.0, 0.0], [0.03, 0.0, 0.0], [0.0, 0.10, 0.0], [0.25, 0.0, 0.0]])
    y = diffuse_noise(pos, 20 * FS, FS, np.random.default_rng(1), field=field)
    for j, d in ((1, 0.03), (2, 0.10), (3, 0.25)):
        f, coh = _coherence(y[:, 0].astype(np.float64), y[:, j].astype(np.float64))
        err = np.abs(coh - theoretical_coherence(d, f, field))[1:-1]
        assert err.mean() < 0.04, (d, err.mean())
        assert err.max() < 0.15, (d, err.max())
    # Power is preserved (unit-variance input).
    np.testing.assert_allclose(np.mean(y.astype(np.float64) ** 2, axis=0), 1.0, rtol=0.05)


def test_spherical_is_not_independent_noise() -> None:
    # The check above must be able to fail: independent channels have ~0 coherence at 3 cm.
    x = np.random.default_rng(2).standard_normal((10 * FS, 2))
    f, coh = _coherence(x[:, 0], x[:, 1])
    low = (f > 100) & (f < 1500)
    assert np.abs(coh[low] - theoretical_coherence(0.03, f[low])).mean() > 0.5


def test_coherence_matrix_of_shipped_array_is_valid() -> None:
    arr = load_array("minidsp_uma8")
    g = coherence_matrix(arr.positions_m, np.array([0.0, 1000.0, 4000.0]))
    assert g.shape == (3, 7, 7)
    np.testing.assert_allclose(g[0], 1.0)
    np.testing.assert_allclose(np.diagonal(g, axis1=1, axis2=2), 1.0)
    assert np.all(np.linalg.eigvalsh(g[1:]) > -1e-9)


@pytest.mark.parametrize("colour, slope_db_per_octave", [("white", 0.0), ("pink", -3.0), ("brown", -6.0)])
def test_coloured_noise_slopes(colour: str, slope_db_per_octave: float) -> None:
    x = coloured_noise(20 * FS, np.random.default_rng(3), colour)[:, 0]
    f, p = welch(x, fs=FS, nperseg=1024)
    sel = (f >= 250) & (f <= 4000)
    slope = np.polyfit(np.log2(f[sel]), 10 * np.log10(p[sel]), 1)[0]
    assert abs(slope - slope_db_per_octave) < 1.0
    assert np.sqrt(np.mean(x**2)) == pytest.approx(1.0, rel=1e-3)

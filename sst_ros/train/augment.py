"""Exact data augmentation from the symmetries of the microphone array.

If a rotation about the vertical axis (or a reflection across a vertical plane) ``R`` maps
the array onto itself, microphone ``i`` onto microphone ``P(i)``, then the signal microphone
``P(i)`` receives from direction ``R u`` equals what microphone ``i`` receives from ``u``
(plane waves: ``p_P(i) . R u = R p_i . R u = p_i . u``). So permuting the channels as
``a'[:, P(i)] = a[:, i]`` and mapping the azimuth with ``R`` gives another valid training
example (the ReSpeaker 4-mic square has 8 such symmetries: 4 rotations, 4 reflections).
The room around the array is not symmetric, but it is random in simulation anyway.

:func:`random_augment` draws one of the symmetries and a random overall gain per training
crop (features are normalised; the gain exercises that).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sst_ros.data.clipset import Labels
from sst_ros.geometry import POSITION_TOLERANCE_M, MicArray, wrap_deg

__all__ = ["Symmetry", "apply_symmetry", "array_symmetries", "random_augment"]

_TOL_M = POSITION_TOLERANCE_M


@dataclass(frozen=True)
class Symmetry:
    """An azimuth map ``az' = sign * az + offset_deg`` with its microphone permutation.

    Attributes:
        perm: ``perm[i]`` = the microphone that microphone ``i``'s signal moves to.
        sign: +1 for a rotation, -1 for a reflection.
        offset_deg: rotation angle (sign +1) or twice the mirror line's azimuth (sign -1), degrees.
    """

    perm: tuple[int, ...]
    sign: int
    offset_deg: float

    def map_azimuth(self, azimuth_deg: np.ndarray) -> np.ndarray:
        """Transformed azimuths, degrees wrapped to (-180, 180]."""
        return np.asarray(wrap_deg(self.sign * np.asarray(azimuth_deg, dtype=np.float64) + self.offset_deg))

    def grid_permutation(self, centers_deg: np.ndarray, tol_deg: float) -> np.ndarray | None:
        """How this map permutes an azimuth grid: ``src`` (K,) with ``new[..., k] = old[..., src[k]]``
        for anything sampled on the grid (a spectrum, a steered response map), i.e. grid point
        ``src[k]`` maps onto grid point ``k``. None when some grid point does not map onto another
        within ``tol_deg`` degrees.

        Args:
            centers_deg: (K,) the grid's azimuths, degrees.
            tol_deg: largest distance, degrees, of a mapped point from a grid point.
        """
        centers = np.asarray(centers_deg, dtype=np.float64)
        back = np.asarray(wrap_deg(self.sign * (centers - self.offset_deg)))  # the inverse map of each point
        dist = np.abs(np.asarray(wrap_deg(centers[None, :] - back[:, None])))  # (K, K)
        src = dist.argmin(axis=1)
        if dist[np.arange(centers.size), src].max(initial=0.0) > tol_deg:
            return None
        return src.astype(np.int64)


def _transform(xy: np.ndarray, sign: int, offset_deg: float) -> np.ndarray:
    y = xy.copy()
    if sign < 0:
        y[:, 1] = -y[:, 1]
    t = math.radians(offset_deg)
    c, s = math.cos(t), math.sin(t)
    return np.stack([c * y[:, 0] - s * y[:, 1], s * y[:, 0] + c * y[:, 1]], axis=1)


def array_symmetries(array: MicArray) -> list[Symmetry]:
    """All rotations/reflections about the vertical axis through the array centre that map
    the microphones onto each other (identity first)."""
    pos = array.positions_m - array.centre_m
    xy, z = pos[:, :2], pos[:, 2]
    r = np.hypot(xy[:, 0], xy[:, 1])
    ang = np.degrees(np.arctan2(xy[:, 1], xy[:, 0]))[r > _TOL_M]
    cands: set[tuple[int, float]] = {(1, 0.0)}
    for a in ang:
        for b in ang:
            cands.add((1, round(float(wrap_deg(b - a)), 6)))
            cands.add((-1, round(float(wrap_deg(b + a)), 6)))
    out: list[Symmetry] = []
    for sign, off in sorted(cands, key=lambda c: (c[0] < 0, abs(c[1]), c[1])):
        moved = _transform(xy, sign, off)
        d = np.linalg.norm(moved[:, None, :] - xy[None, :, :], axis=-1) + np.abs(z[:, None] - z[None, :])
        perm = d.argmin(axis=1)
        if np.all(d[np.arange(len(perm)), perm] < _TOL_M) and len(set(perm.tolist())) == len(perm):
            out.append(Symmetry(tuple(int(p) for p in perm), sign, float(off)))
    return out


def apply_symmetry(audio: np.ndarray, azimuth_deg: np.ndarray, sym: Symmetry) -> tuple[np.ndarray, np.ndarray]:
    """Apply a symmetry to a clip.

    Args:
        audio: (frames, M) microphone signals in array order.
        azimuth_deg: (F,) label azimuths, degrees.
        sym: the symmetry.
    Returns:
        permuted audio (frames, M) and mapped azimuths (F,).
    """
    out = np.empty_like(audio)
    out[:, list(sym.perm)] = audio
    return out, sym.map_azimuth(azimuth_deg)


def random_augment(
    audio: np.ndarray,
    labels: Labels,
    symmetries: Sequence[Symmetry],
    gain_db_range: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, Labels]:
    """A random symmetry (when any are given), then a random gain uniform in +-``gain_db_range`` dB.

    Args:
        audio: float32 (frames, M) microphone signals in array order.
        labels: the audio's labels (every source's azimuth is mapped with the symmetry).
        symmetries: the symmetries to draw from (empty: none applied, no number drawn).
        gain_db_range: gain range, dB (0: no gain, no number drawn).
        rng: source of the draws (first the symmetry, then the gain).
    Returns:
        transformed audio (frames, M) float32 and labels.
    """
    if symmetries:
        sym = symmetries[int(rng.integers(len(symmetries)))]
        audio = apply_symmetry(audio, np.zeros(0), sym)[0]
        labels = labels.map_azimuths(sym.map_azimuth)
    if gain_db_range > 0:
        audio = audio * np.float32(10 ** (rng.uniform(-gain_db_range, gain_db_range) / 20))
    return audio, labels

"""Shoebox rooms and their impulse responses (pyroomacoustics image sources + diffuse tail).

A room impulse response here has three parts, rendered separately so that moving sources
stay exact and cheap (see :mod:`sst_ros.sim.render`):

1. the direct path, rendered per sample by a time-varying fractional delay (not here);
2. early reflections: the image sources of orders 1..N of pyroomacoustics' shoebox model
   (per-wall energy absorption), built into short RIRs at trajectory points;
3. the late tail beyond the mixing time ``t_mix`` (first arrival of an order N+1 image): a
   diffuse-coherent (sinc) multichannel Gaussian noise with the exponential energy decay of
   statistical room acoustics, ``E[h^2](t) = c / (4 pi V fs) * exp(-13.8 t / RT60)`` per
   sample (the energy of a diffuse field fed by a unit source, Polack's model), crossfaded
   with the early part over ``FADE_S``.
   Hybrid rooms replace the exponential envelope by the energy decay that pyroomacoustics'
   ray tracer finds for the source and the array (:func:`raytraced_energy`): the hybrid
   ISM + ray-tracing model, with the tail still diffuse-coherent between the microphones.

Times are seconds from emission, distances metres, absorption coefficients are energy
absorption (0..1). Wall order: west (x=0), east (x=Lx), south (y=0), north (y=Ly), floor, ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyroomacoustics as pra

from sst_ros.geometry import SPEED_OF_SOUND_M_S
from sst_ros.sim.noise import diffuse_noise

__all__ = [
    "FADE_S",
    "HF_SPLIT_HZ",
    "WALLS",
    "Room",
    "early_rirs",
    "image_sources",
    "late_tail",
    "mixing_time_s",
    "raytraced_energy",
    "sample_room",
]

WALLS = ("west", "east", "south", "north", "floor", "ceiling")
FADE_S = 0.01
HF_SPLIT_HZ = 2000.0
_HALF_TAPS = 8  # fractional delay: windowed sinc of 16 taps
_RT_RECEIVER_RADIUS_M = 0.5  # ray tracer's receiver sphere (pyroomacoustics' default)
_RT_BIN_S = 0.004  # ray tracer's energy histogram bin


@dataclass(frozen=True)
class Room:
    """A shoebox room.

    Attributes:
        size_m: (3,) length, width, height in metres.
        rt60_s: target reverberation time (Sabine) in seconds.
        absorption: (6,) energy absorption per wall, order ``WALLS``.
        hf_rt60_ratio: RT60 above ``HF_SPLIT_HZ`` relative to ``rt60_s`` in the late tail
            (air and material absorption grow with frequency).
    """

    size_m: np.ndarray
    rt60_s: float
    absorption: np.ndarray
    hf_rt60_ratio: float = 1.0

    @property
    def volume_m3(self) -> float:
        """Volume in cubic metres."""
        return float(np.prod(self.size_m))

    @property
    def wall_areas_m2(self) -> np.ndarray:
        """(6,) wall areas in square metres, order ``WALLS``."""
        lx, ly, lz = self.size_m
        return np.array([ly * lz, ly * lz, lx * lz, lx * lz, lx * ly, lx * ly])

    def to_dict(self) -> dict[str, object]:
        """Plain-data summary (metadata)."""
        return {
            "size_m": [round(float(v), 3) for v in self.size_m],
            "rt60_s": round(float(self.rt60_s), 3),
            "hf_rt60_ratio": round(float(self.hf_rt60_ratio), 3),
            "absorption": {w: round(float(a), 4) for w, a in zip(WALLS, self.absorption, strict=True)},
        }


def sample_room(cfg: Any, rng: np.random.Generator) -> Room:
    """A random room from the ``room`` config section.

    Size uniform between ``size_min_m`` and ``size_max_m``; RT60 uniform in ``rt60_s``;
    mean absorption by Sabine inversion, ``alpha = 24 ln(10) V / (c S RT60)``; each wall
    varies by up to ``wall_absorption_spread`` (relative) and the set is rescaled to keep
    the total absorption area (so the Sabine RT60 is the one drawn, unless clipped to 0.99).
    The late tail's RT60 above ``HF_SPLIT_HZ`` is ``hf_rt60_ratio`` (drawn) times shorter.
    """
    lo, hi = np.asarray(cfg.size_min_m), np.asarray(cfg.size_max_m)
    size = lo + (hi - lo) * rng.random(3)
    rt60 = float(rng.uniform(*cfg.rt60_s))
    spread = rng.uniform(-1.0, 1.0, 6) * cfg.wall_absorption_spread
    room = Room(size, rt60, np.zeros(6))
    areas = room.wall_areas_m2
    a_mean = 24.0 * np.log(10.0) * room.volume_m3 / (SPEED_OF_SOUND_M_S * areas.sum() * rt60)
    a = a_mean * (1.0 + spread)
    a *= a_mean * areas.sum() / np.sum(areas * a)
    hf_ratio = float(rng.uniform(*cfg.hf_rt60_ratio))
    return Room(size, rt60, np.clip(a, 0.01, 0.99), hf_ratio)


def _pra_shoebox(
    room: Room, fs: int, max_order: int, *, ray_tracing: bool, scattering: float | None = None
) -> pra.ShoeBox:
    """The room as a pyroomacoustics shoebox: the walls' energy absorption (and ``scattering``,
    0..1, for the ray tracer), image order ``max_order``, no air absorption, no randomised ISM."""
    materials = {
        w: pra.Material(energy_absorption=float(a), scattering=scattering)
        for w, a in zip(WALLS, room.absorption, strict=True)
    }
    return pra.ShoeBox(
        room.size_m,
        fs=fs,
        materials=materials,
        max_order=int(max_order),
        air_absorption=False,
        ray_tracing=ray_tracing,
        use_rand_ism=False,
    )


def image_sources(
    room: Room, sources_m: np.ndarray, mics_m: np.ndarray, max_order: int, fs: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Image sources of each source point by pyroomacoustics' shoebox model.

    Args:
        sources_m: (K, 3) source positions in the room frame, metres.
        mics_m: (M, 3) microphone positions in the room frame, metres.
    Returns:
        per source point: (images (3, I) metres, amplitude damping (I,), reflection order (I,)).
    """
    pra_room = _pra_shoebox(room, fs, max_order, ray_tracing=False)
    pra_room.add_microphone_array(np.asarray(mics_m, dtype=np.float64).T)
    for p in np.asarray(sources_m, dtype=np.float64):
        pra_room.add_source(p)
    pra_room.image_source_model()
    out = []
    for src in pra_room.sources:
        damping = np.asarray(src.damping, dtype=np.float64)
        damping = damping[0] if damping.ndim > 1 else damping
        out.append((np.asarray(src.images, dtype=np.float64), damping, np.asarray(src.orders)))
    return out


def mixing_time_s(room: Room, sources_m: np.ndarray, receiver_m: np.ndarray, max_order: int) -> float:
    """Earliest arrival (s from emission) of an image of order ``max_order + 1`` over all sources.

    Up to this time the image sources of orders <= max_order are the complete response.
    """
    n = max_order + 1
    best = np.inf
    r = np.asarray(receiver_m, dtype=np.float64)
    for s in np.atleast_2d(sources_m):
        comps = []
        for ax in range(3):
            ks = np.arange(-n, n + 1)
            coord = np.where(ks % 2 == 0, ks * room.size_m[ax] + s[ax], (ks + 1) * room.size_m[ax] - s[ax])
            comps.append(dict(zip(ks.tolist(), np.abs(coord - r[ax]), strict=True)))
        for kx in range(-n, n + 1):
            for ky in range(-(n - abs(kx)), n - abs(kx) + 1):
                rem = n - abs(kx) - abs(ky)
                for kz in {rem, -rem}:
                    d = np.sqrt(comps[0][kx] ** 2 + comps[1][ky] ** 2 + comps[2][kz] ** 2)
                    best = min(best, d)
    return float(best / SPEED_OF_SOUND_M_S)


def _fade_out(t_s: np.ndarray, t_mix_s: float) -> np.ndarray:
    """Early-part weight: 1 before t_mix, raised-cosine to 0 over FADE_S."""
    u = np.clip((t_s - t_mix_s) / FADE_S, 0.0, 1.0)
    return 0.5 + 0.5 * np.cos(np.pi * u)


def _frac_taps(delay: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Windowed-sinc fractional-delay taps: (indices (..., 16), weights (..., 16))."""
    i0 = np.floor(delay).astype(np.int64)
    k = np.arange(-_HALF_TAPS + 1, _HALF_TAPS + 1)
    idx = i0[..., None] + k
    x = idx - delay[..., None]
    w = np.sinc(x) * (0.5 + 0.5 * np.cos(np.pi * x / _HALF_TAPS))
    return idx, w


def early_rirs(
    images: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    mics_m: np.ndarray,
    fs: int,
    t_mix_s: float = np.inf,
) -> np.ndarray:
    """Early-reflection RIRs (orders >= 1) from :func:`image_sources`.

    Each image contributes ``damping / (4 pi d)`` at delay ``d / c`` (windowed-sinc fractional
    delay), weighted by the fade-out at ``t_mix_s``.

    Returns:
        (K, M, L) float64 RIRs (K source points, M microphones), time 0 = emission.
    """
    mics = np.asarray(mics_m, dtype=np.float64)
    k_pts, m = len(images), mics.shape[0]
    delays, amps = [], []
    for imgs, damping, orders in images:
        keep = orders > 0
        d = np.linalg.norm(imgs[:, keep].T[None, :, :] - mics[:, None, :], axis=-1)  # (M, I)
        t = d / SPEED_OF_SOUND_M_S
        delays.append(t * fs)
        amps.append(damping[keep][None, :] / (4 * np.pi * np.maximum(d, 1e-3)) * _fade_out(t, t_mix_s))
    n_img = max((dl.shape[1] for dl in delays), default=0)
    if n_img == 0:
        return np.zeros((k_pts, m, 1))
    dl = np.zeros((k_pts, m, n_img))
    am = np.zeros((k_pts, m, n_img))
    for i, (a, b) in enumerate(zip(delays, amps, strict=True)):
        dl[i, :, : a.shape[1]] = a
        am[i, :, : b.shape[1]] = b
    live = am != 0.0
    max_delay = dl[live].max() if live.any() else 0.0
    length = int(np.ceil(max_delay)) + _HALF_TAPS + 2
    idx, w = _frac_taps(dl)
    w = w * am[..., None]
    idx = np.clip(idx, 0, length - 1)
    base = (np.arange(k_pts)[:, None] * m + np.arange(m)[None, :]) * length
    flat = (base[:, :, None, None] + idx).ravel()
    out = np.bincount(flat, weights=w.ravel(), minlength=k_pts * m * length)
    return out.reshape(k_pts, m, length)


def raytraced_energy(
    room: Room,
    source_m: np.ndarray,
    receiver_m: np.ndarray,
    fs: int,
    max_order: int,
    max_len_s: float,
    scattering: float,
    n_rays: int,
    seed: int,
) -> np.ndarray:
    """Late energy envelope (L,) per sample, time 0 = emission, by pyroomacoustics' ray tracer.

    The hybrid model: pyroomacoustics traces ``n_rays`` rays from ``source_m`` (room frame,
    metres) with the room's per-wall energy absorption and the given ``scattering`` (0..1),
    and bins the energy of reflections beyond image order ``max_order`` arriving in a sphere
    of radius 0.5 m around ``receiver_m``. The histogram (4 ms bins, up to ``max_len_s`` s) is
    rescaled to this package's amplitude convention (``1 / (4 pi d)`` for the direct path)
    and to energy per sample. Deterministic for ``seed`` (it seeds pyroomacoustics' global
    random generators).
    """
    pra.random.seed(numpy=int(seed), libroom=int(seed))
    pra_room = _pra_shoebox(room, fs, max_order, ray_tracing=True, scattering=float(scattering))
    pra_room.set_ray_tracing(
        n_rays=int(n_rays), receiver_radius=_RT_RECEIVER_RADIUS_M, time_thres=float(max_len_s), hist_bin_size=_RT_BIN_S
    )
    pra_room.add_microphone_array(np.asarray(receiver_m, dtype=np.float64).reshape(3, 1))
    pra_room.add_source(np.asarray(source_m, dtype=np.float64))
    pra_room.ray_tracing()
    hist = np.asarray(pra_room.rt_histograms[0][0], dtype=np.float64)
    hist = hist.reshape(-1, hist.shape[-1]).sum(axis=0)  # (bins,) over directions and bands
    bin_len = int(pra_room.rt_args["hist_bin_size_samples"])
    # pyroomacoustics' amplitudes are 1 / d (ours 1 / (4 pi d)); energy per bin -> per sample.
    per_sample = hist / ((4 * np.pi) ** 2 * bin_len)
    t_bins = (np.arange(hist.shape[0]) + 0.5) * bin_len
    n = int(min(max_len_s * fs, hist.shape[0] * bin_len))
    return np.maximum(np.interp(np.arange(n), t_bins, per_sample), 0.0)


def late_tail(
    room: Room,
    mics_m: np.ndarray,
    fs: int,
    rng: np.random.Generator,
    t_mix_s: float,
    max_len_s: float,
    field: str = "spherical",
    energy: np.ndarray | None = None,
) -> np.ndarray:
    """Late reverberation tail (M, L) starting at ``t_mix_s`` (fade-in over FADE_S), time 0 = emission.

    Diffuse-coherent Gaussian noise between the microphones with the exponential decay of
    the drawn RT60 and the energy density of a diffuse field ``c / (4 pi V fs)`` per sample,
    or, given ``energy`` (per sample from emission, e.g. :func:`raytraced_energy`), with that
    envelope (the upper band still decays ``hf_rt60_ratio`` times faster).
    """
    if energy is not None:
        return _shaped_tail(room, mics_m, fs, rng, t_mix_s, max_len_s, field, energy)
    length = int(min(max_len_s, t_mix_s + room.rt60_s) * fs)
    start = int(max(0.0, t_mix_s - FADE_S) * fs)
    if length <= start + 1:
        return np.zeros((np.asarray(mics_m).shape[0], 1))
    n = length - start
    noise = diffuse_noise(mics_m, n, fs, rng, field=field).astype(np.float64)
    t = (start + np.arange(n)) / fs
    scale = np.sqrt(SPEED_OF_SOUND_M_S / (4 * np.pi * room.volume_m3 * fs)) * (1.0 - _fade_out(t, t_mix_s))
    env_lo = scale * np.exp(-6.9078 * t / room.rt60_s)
    if room.hf_rt60_ratio != 1.0:
        # Two bands split by complementary raised-cosine masks around HF_SPLIT_HZ (the split
        # keeps the diffuse coherence per band); the upper band decays faster.
        spec = np.fft.rfft(noise, axis=0)
        f = np.fft.rfftfreq(n, 1.0 / fs)
        u = np.clip((f - HF_SPLIT_HZ / 1.5) / (HF_SPLIT_HZ * 1.5 - HF_SPLIT_HZ / 1.5), 0.0, 1.0)
        hi_mask = np.sin(0.5 * np.pi * u) ** 2
        hi = np.fft.irfft(spec * hi_mask[:, None], n=n, axis=0)
        lo = noise - hi
        env_hi = scale * np.exp(-6.9078 * t / (room.rt60_s * room.hf_rt60_ratio))
        noise = lo * env_lo[:, None] + hi * env_hi[:, None]
    else:
        noise = noise * env_lo[:, None]
    out = np.zeros((noise.shape[1], length))
    out[:, start:] = noise.T
    return out


def _hf_split(noise: np.ndarray, fs: int) -> tuple[np.ndarray, np.ndarray]:
    """(low band, high band) of (n, M) signals split around ``HF_SPLIT_HZ`` by raised-cosine masks."""
    n = noise.shape[0]
    spec = np.fft.rfft(noise, axis=0)
    f = np.fft.rfftfreq(n, 1.0 / fs)
    u = np.clip((f - HF_SPLIT_HZ / 1.5) / (HF_SPLIT_HZ * 1.5 - HF_SPLIT_HZ / 1.5), 0.0, 1.0)
    hi = np.fft.irfft(spec * (np.sin(0.5 * np.pi * u) ** 2)[:, None], n=n, axis=0)
    return noise - hi, hi


def _shaped_tail(
    room: Room,
    mics_m: np.ndarray,
    fs: int,
    rng: np.random.Generator,
    t_mix_s: float,
    max_len_s: float,
    field: str,
    energy: np.ndarray,
) -> np.ndarray:
    """:func:`late_tail` with a given energy envelope per sample (from emission)."""
    m = np.asarray(mics_m).shape[0]
    length = int(min(max_len_s * fs, energy.shape[0]))
    start = int(max(0.0, t_mix_s - FADE_S) * fs)
    if length <= start + 1:
        return np.zeros((m, 1))
    n = length - start
    noise = diffuse_noise(mics_m, n, fs, rng, field=field).astype(np.float64)
    t = (start + np.arange(n)) / fs
    env = np.sqrt(energy[start:length]) * (1.0 - _fade_out(t, t_mix_s))
    if room.hf_rt60_ratio != 1.0:
        lo, hi = _hf_split(noise, fs)
        extra = np.exp(-6.9078 * t / room.rt60_s * (1.0 / room.hf_rt60_ratio - 1.0))
        noise = lo * env[:, None] + hi * (env * extra)[:, None]
    else:
        noise = noise * env[:, None]
    out = np.zeros((m, length))
    out[:, start:] = noise.T
    return out

"""Rendering a (moving) point source at the microphones: time-varying convolution.

- Direct path: exact per-sample propagation delay ``d_m(t) / c`` and gain ``1 / (4 pi d_m(t))``
  for each microphone m, read from the source signal by a fractional delay (4x polyphase
  oversampling + linear interpolation; phase error < 0.5 degree at 8 kHz). Smooth by
  construction, Doppler included.
- Early reflections: RIRs of the image sources at trajectory points every
  ``rir_interval_s``; the signal is split by raised-cosine (cos^2) windows centred on the
  points, which sum to one, each piece is convolved with its point's RIR and the pieces
  overlap-add (crossfade between consecutive RIRs: no clicks).
- Late tail: position-independent (diffuse), convolved once with the whole signal. In a
  hybrid room (``RenderOptions.hybrid``) its envelope is the energy decay pyroomacoustics'
  ray tracer finds from the source (its mid-path point) to the receiver.

Also: several static sources rendered as one group sharing a late tail
(:func:`render_static_group`, cheap background babble) and smooth random microphone
frequency responses (:func:`mic_responses`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve, oaconvolve, resample_poly

from sst_ros.geometry import SPEED_OF_SOUND_M_S
from sst_ros.sim.room import Room, early_rirs, image_sources, late_tail, mixing_time_s, raytraced_energy
from sst_ros.sim.trajectory import Trajectory

__all__ = ["RenderOptions", "apply_mic_responses", "mic_responses", "render_source", "render_static_group"]

_OVERSAMPLE = 4


@dataclass(frozen=True)
class RenderOptions:
    """How to render: image-source order, RIR point spacing (s), late tail on/off, RIR cap (s), field;
    hybrid: late-tail envelope from pyroomacoustics' ray tracer (``rt_n_rays`` rays, wall
    scattering ``rt_scattering``) instead of the exponential model."""

    ism_max_order: int = 3
    rir_interval_s: float = 0.25
    late_tail: bool = True
    max_rir_s: float = 1.0
    field: str = "spherical"
    hybrid: bool = False
    rt_scattering: float = 0.2
    rt_n_rays: int = 1000


def _direct_from_distances(signal: np.ndarray, d: np.ndarray, fs: int) -> np.ndarray:
    """Direct path of ``signal`` (N,) for per-sample source-microphone distances ``d`` (N, M) in metres.

    Returns:
        (N, M) float64: ``signal(n - d_m(n) fs / c) / (4 pi d_m(n))``.
    """
    n = signal.shape[0]
    delay = d * (fs / SPEED_OF_SOUND_M_S)
    pad = int(np.ceil(delay.max())) + 4
    up = resample_poly(np.concatenate([np.zeros(pad), signal, np.zeros(4)]), _OVERSAMPLE, 1)
    pos = (np.arange(n, dtype=np.float64)[:, None] + pad - delay) * _OVERSAMPLE
    i0 = np.floor(pos).astype(np.int64)
    frac = pos - i0
    np.clip(i0, 0, up.shape[0] - 2, out=i0)
    out = up[i0]
    out += (up[i0 + 1] - out) * frac
    out /= 4 * np.pi * np.maximum(d, 1e-2)
    return out


def _distances_per_sample(traj: Trajectory, mics_m: np.ndarray, n: int, fs: int) -> np.ndarray:
    """(n, M) source-microphone distances in metres at every sample.

    The trajectory is evaluated every 5 ms and the (smooth) distances interpolated linearly.
    """
    if traj.is_static:
        return np.broadcast_to(np.linalg.norm(mics_m - traj.start_m, axis=1), (n, mics_m.shape[0]))
    step = max(1, fs // 200)
    t_ctrl = np.arange(0, n + step, step)
    d_ctrl = np.linalg.norm(traj.position(t_ctrl / fs)[:, None, :] - mics_m[None, :, :], axis=-1)
    ts = np.arange(n)
    return np.stack([np.interp(ts, t_ctrl, d_ctrl[:, m]) for m in range(mics_m.shape[0])], axis=1)


def render_source(
    signal: np.ndarray,
    traj: Trajectory,
    mics_m: np.ndarray,
    room: Room,
    fs: int,
    rng: np.random.Generator,
    opts: RenderOptions,
    receiver_m: np.ndarray | None = None,
) -> np.ndarray:
    """Reverberant image of a source moving along ``traj`` at microphones ``mics_m`` (M, 3), room frame.

    Args:
        signal: (N,) emitted signal at ``fs`` Hz (time 0 = start of the clip).
        receiver_m: point used for the mixing time and, in a hybrid room, as the ray tracer's
            receiver (default: microphone centroid).
    Returns:
        (N, M) float64 microphone signals (direct + early reflections + late tail).
    """
    signal = np.asarray(signal, dtype=np.float64)
    n = signal.shape[0]
    mics = np.asarray(mics_m, dtype=np.float64)
    receiver = mics.mean(axis=0) if receiver_m is None else receiver_m
    out = _direct_from_distances(signal, _distances_per_sample(traj, mics, n, fs), fs)

    if traj.is_static:
        t_pts = np.zeros(1)
    else:
        hop = opts.rir_interval_s
        t_pts = np.arange(0.0, n / fs + hop, hop)
    pts = traj.position(t_pts)
    t_mix = mixing_time_s(room, pts, receiver, opts.ism_max_order) if opts.late_tail else np.inf

    if opts.ism_max_order > 0:
        rirs = early_rirs(image_sources(room, pts, mics, opts.ism_max_order, fs), mics, fs, t_mix)
        if len(t_pts) == 1:
            out += oaconvolve(signal[:, None], rirs[0].T, axes=0)[:n]
        else:
            out += _crossfade_convolve(signal, rirs, int(round(opts.rir_interval_s * fs)))
    if opts.late_tail and np.isfinite(t_mix):
        energy = _raytraced(traj.position(0.5 * traj.duration_s)[0], receiver, room, fs, rng, opts)
        tail = late_tail(room, mics, fs, rng, t_mix, opts.max_rir_s, opts.field, energy)
        out += oaconvolve(signal[:, None], tail.T, axes=0)[:n]
    return out


def _raytraced(
    source_m: np.ndarray, receiver_m: np.ndarray, room: Room, fs: int, rng: np.random.Generator, opts: RenderOptions
) -> np.ndarray | None:
    """Ray-traced late energy per sample in a hybrid room (None otherwise: exponential model)."""
    if not opts.hybrid:
        return None
    seed = int(rng.integers(2**63))
    return raytraced_energy(
        room, source_m, receiver_m, fs, opts.ism_max_order, opts.max_rir_s, opts.rt_scattering, opts.rt_n_rays, seed
    )


def render_static_group(
    signals: np.ndarray,
    points_m: np.ndarray,
    mics_m: np.ndarray,
    room: Room,
    fs: int,
    rng: np.random.Generator,
    opts: RenderOptions,
    receiver_m: np.ndarray | None = None,
) -> np.ndarray:
    """Sum of the images of K static sources: exact direct paths and early reflections per source,
    one late tail (from the group's earliest mixing time) for their sum.

    Args:
        signals: (K, N) emitted signals at ``fs`` Hz.
        points_m: (K, 3) source positions in the room frame, metres.
        mics_m: (M, 3) microphone positions in the room frame, metres.
    Returns:
        (N, M) float64 microphone signals.
    """
    sig = np.asarray(signals, dtype=np.float64)
    pts = np.asarray(points_m, dtype=np.float64)
    mics = np.asarray(mics_m, dtype=np.float64)
    n = sig.shape[1]
    receiver = mics.mean(axis=0) if receiver_m is None else receiver_m
    out = np.zeros((n, mics.shape[0]))
    for k in range(pts.shape[0]):
        d = np.broadcast_to(np.linalg.norm(mics - pts[k], axis=1), (n, mics.shape[0]))
        out += _direct_from_distances(sig[k], d, fs)
    t_mix = mixing_time_s(room, pts, receiver, opts.ism_max_order) if opts.late_tail else np.inf
    if opts.ism_max_order > 0:
        rirs = early_rirs(image_sources(room, pts, mics, opts.ism_max_order, fs), mics, fs, t_mix)
        for k in range(pts.shape[0]):
            out += oaconvolve(sig[k][:, None], rirs[k].T, axes=0)[:n]
    if opts.late_tail and np.isfinite(t_mix):
        energy = _raytraced(pts[0], receiver, room, fs, rng, opts)
        tail = late_tail(room, mics, fs, rng, t_mix, opts.max_rir_s, opts.field, energy)
        out += oaconvolve(sig.sum(axis=0)[:, None], tail.T, axes=0)[:n]
    return out


def mic_responses(
    n_mics: int, fs: int, std_db: float, rng: np.random.Generator, n_knots: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random magnitude responses of ``n_mics`` microphones (cheap MEMS capsules).

    Each response is ``n_knots`` gains (dB, normal with std ``std_db``) at log-spaced
    frequencies from 100 Hz to ``fs / 2``, interpolated linearly in log frequency.

    Returns:
        (knot frequencies (n_knots,) Hz, gains (n_mics, n_knots) dB).
    """
    f_knots = np.geomspace(100.0, fs / 2.0, n_knots)
    return f_knots, rng.normal(0.0, std_db, (n_mics, n_knots))


def apply_mic_responses(x: np.ndarray, fs: int, f_knots: np.ndarray, gains_db: np.ndarray) -> np.ndarray:
    """Filter each channel of ``x`` (N, M) by its zero-phase magnitude response (see :func:`mic_responses`)."""
    n = x.shape[0]
    spec = np.fft.rfft(x, axis=0)
    f = np.maximum(np.fft.rfftfreq(n, 1.0 / fs), f_knots[0])
    logf = np.log(f)
    gain = np.stack([np.interp(logf, np.log(f_knots), g) for g in gains_db], axis=1)
    spec *= 10.0 ** (gain / 20.0)
    return np.fft.irfft(spec, n=n, axis=0)


def _crossfade_convolve(signal: np.ndarray, rirs: np.ndarray, hop: int) -> np.ndarray:
    """Time-varying convolution: RIR k (K, M, L) applies around sample k*hop, cos^2 crossfades.

    Returns (N, M).
    """
    n = signal.shape[0]
    k_pts, m, length = rirs.shape
    seg_len = 2 * hop
    ramp = np.cos(0.5 * np.pi * (np.arange(-hop, hop) / hop)) ** 2  # sums to 1 at spacing hop
    segs = np.zeros((k_pts, seg_len))
    for k in range(k_pts):
        a = k * hop - hop
        lo, hi = max(a, 0), min(a + seg_len, n)
        if hi > lo:
            segs[k, lo - a : hi - a] = signal[lo:hi] * ramp[lo - a : hi - a]
    conv = fftconvolve(segs[:, None, :], rirs, axes=-1)  # (K, M, seg_len + L - 1)
    out = np.zeros((n + seg_len + length, m))
    for k in range(k_pts):
        a = k * hop - hop
        lo = max(a, 0)
        piece = conv[k, :, lo - a :].T
        out[lo : lo + piece.shape[0]] += piece
    return out[:n]

"""One synthetic scene: a talker moving in a random room, heard by a microphone array.

``simulate_scene(cfg, array, seed, duration_s)`` draws everything from ``seed`` (same seed,
same scene), renders the tracked talker (source 0) with the time-varying room response,
adds spherically diffuse noise at a drawn SNR, optional directional interferers (a fan, an
unlabelled talker), microphone imperfections (gain and position errors, self-noise), and
labels the talker per ``cfg.label_frame_s`` (azimuth/elevation in the array frame, REP-103,
degrees; active from the energy of the talker's direct-path signal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sst_ros.data.clipset import Labels
from sst_ros.errors import ConfigError
from sst_ros.geometry import SPEED_OF_SOUND_M_S, MicArray, az_el_from_vector, wrap_deg
from sst_ros.sim.config import SceneConfig, load_scene_config
from sst_ros.sim.noise import coloured_noise, diffuse_noise
from sst_ros.sim.render import RenderOptions, render_source
from sst_ros.sim.room import Room, sample_room
from sst_ros.sim.speech import SpeechPool, get_speech_pool
from sst_ros.sim.trajectory import ArrayPose, Trajectory, sample_array_pose, sample_trajectory

__all__ = ["Scene", "activity_labels", "direction_labels", "simulate_scene"]

_SUBFRAME_S = 0.01


@dataclass
class Scene:
    """A simulated scene.

    Attributes:
        audio: (frames, M) float32 microphone signals in array order, full scale [-1, 1).
        fs: sample rate in Hz (``cfg.sample_rate_hz``).
        labels: per-frame labels of source 0 (the tracked talker), array frame.
        metadata: plain-data description (room, pose, trajectory, signals, levels, seed).
    """

    audio: np.ndarray
    fs: int
    labels: Labels
    metadata: dict[str, Any] = field(default_factory=dict)


def direction_labels(
    traj: Trajectory, pose: ArrayPose, n_frames: int, frame_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame start times (F,) s and azimuth/elevation (F,) degrees of the talker at frame centres,
    in the array frame (REP-103), seen from the array origin."""
    t = np.arange(n_frames) * frame_s
    vec = pose.to_array(traj.position(t + 0.5 * frame_s))
    az, el = az_el_from_vector(vec)
    return t, np.asarray(wrap_deg(np.rad2deg(az))), np.rad2deg(el)


def activity_labels(
    direct: np.ndarray, fs: int, n_frames: int, frame_s: float, threshold_db: float, min_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Active flag per frame from the direct-path signal (N,) at the array.

    A 10 ms sub-frame is speech when its energy is above the clip's robust maximum (99th
    percentile of sub-frame energies) plus ``threshold_db``; a frame is active when at least
    ``min_fraction`` of its sub-frames are speech.

    Returns:
        (active (F,) bool, speech mask (N,) bool per sample of ``direct``: its sub-frame's decision,
        False beyond the F frames).
    """
    per_frame = max(1, int(round(frame_s / _SUBFRAME_S)))
    sub_len = max(1, int(round(frame_s * fs / per_frame)))
    n_sub = n_frames * per_frame
    x = np.zeros(n_sub * sub_len)
    m = min(x.shape[0], direct.shape[0])
    x[:m] = direct[:m]
    energy = np.mean(x.reshape(n_sub, sub_len) ** 2, axis=1)
    ref = np.percentile(energy, 99) if n_sub else 0.0
    if ref <= 1e-20:
        mask = np.zeros(n_sub, dtype=bool)
    else:
        mask = energy > ref * 10.0 ** (threshold_db / 10.0)
    frac = mask.reshape(n_frames, per_frame).mean(axis=1) if n_frames else np.zeros(0)
    speech = np.zeros(direct.shape[0], dtype=bool)
    per_sample = np.repeat(mask, sub_len)[: direct.shape[0]]
    speech[: per_sample.shape[0]] = per_sample
    return frac >= min_fraction - 1e-9, speech


def _speech_track(
    pool: SpeechPool, n: int, fs: int, cfg: Any, rng: np.random.Generator
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Utterances separated by pauses, from a lead silence on, cut to n samples."""
    out = np.zeros(n)
    pos = int(rng.uniform(*cfg.lead_s) * fs)
    used: list[dict[str, Any]] = []
    while pos < n:
        x, name = pool.utterance(rng, cfg.real_prob)
        gain_db = rng.uniform(*cfg.utterance_gain_db)
        seg = x[: n - pos] * 10.0 ** (gain_db / 20.0)
        out[pos : pos + seg.shape[0]] = seg
        used.append({"id": name, "start_s": round(pos / fs, 3), "gain_db": round(float(gain_db), 2)})
        pos += x.shape[0] + int(rng.uniform(*cfg.pause_s) * fs)
    return out, used


def _noise_source(kind: str, pool: SpeechPool, fs: int, rng: np.random.Generator):  # noqa: ANN202
    """A function (n, M) -> independent single-channel noises of ``kind``."""

    def babble(n: int, m: int) -> np.ndarray:
        out = np.zeros((n, m))
        for ch in range(m):
            for _ in range(int(rng.integers(4, 9))):
                x, _ = pool.utterance(rng, 0.5)
                reps = int(np.ceil(n / max(x.shape[0], 1))) + 1
                loop = np.tile(x, reps)
                off = int(rng.integers(0, max(1, x.shape[0])))
                out[:, ch] += loop[off : off + n]
        return out

    def recorded(n: int, m: int) -> np.ndarray:
        x = pool.recorded_noise()
        if x is None:
            return coloured_noise(n, rng, "pink", m)
        reps = int(np.ceil(n / x.shape[0])) + 1
        loop = np.tile(x, reps)
        offs = rng.integers(0, x.shape[0], m)
        return np.stack([loop[o : o + n] for o in offs], axis=1)

    if kind == "babble":
        return babble
    if kind == "recorded":
        return recorded
    return lambda n, m: coloured_noise(n, rng, kind, m)


def _fan_signal(n: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    """Fan / machine noise: brown-ish broadband noise plus a blade-pass hum with harmonics."""
    t = np.arange(n) / fs
    base = coloured_noise(n, rng, "brown" if rng.random() < 0.5 else "pink")[:, 0].astype(np.float64)
    f0 = rng.uniform(40.0, 200.0)
    hum = sum(rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.28)) for k in range(1, 6))
    am = 1.0 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.2, 2.0) * t)
    x = (base + rng.uniform(0.2, 1.5) * hum) * am
    return x / max(np.sqrt(np.mean(x**2)), 1e-12)


def _static_point(room: Room, rng: np.random.Generator, avoid: np.ndarray, margin: float = 0.2) -> np.ndarray:
    for _ in range(100):
        p = np.array([rng.uniform(margin, room.size_m[i] - margin) for i in range(3)])
        p[2] = rng.uniform(0.2, min(2.5, room.size_m[2] - margin))
        if np.hypot(*(p[:2] - avoid[:2])) > 0.5:
            return p
    return p


def _power(x: np.ndarray, mask: np.ndarray | None = None) -> float:
    if mask is not None and mask.any():
        x = x[mask]
    return float(np.mean(x**2)) if x.size else 0.0


def simulate_scene(
    cfg: SceneConfig | dict[str, Any] | str | None, array: MicArray, seed: int, duration_s: float | None = None
) -> Scene:
    """Simulate one scene (see module docstring); deterministic for ``seed``.

    Args:
        cfg: scene config (SceneConfig, dict of overrides, YAML path, or None for the default).
        array: microphone geometry (array frame, metres).
        seed: random seed (int >= 0).
        duration_s: clip length in seconds (default ``cfg.duration_s``).
    Returns:
        :class:`Scene` with audio (frames, M) float32 at ``cfg.sample_rate_hz``.
    """
    cfg = load_scene_config(cfg)
    dur = float(cfg.duration_s if duration_s is None else duration_s)
    if not np.isfinite(dur) or dur <= 0:
        raise ConfigError(f"duration_s must be a positive number of seconds, got {duration_s!r}")
    if int(seed) < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    fs = int(cfg.sample_rate_hz)
    frame_s = float(cfg.label_frame_s)
    n = int(round(dur * fs))
    n_frames = int(np.floor(n / (frame_s * fs) + 1e-9))
    r_room, r_place, r_speech, r_noise, r_mic, r_int, r_render = (
        np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(7)
    )
    pool = get_speech_pool(
        fs, int(cfg.speech.espeak_pool_size), tuple(cfg.speech.espeak_rate_wpm), tuple(cfg.speech.espeak_pitch)
    )
    opts = RenderOptions(
        ism_max_order=int(cfg.room.ism_max_order),
        rir_interval_s=float(cfg.room.rir_interval_s),
        late_tail=bool(cfg.room.late_tail),
        max_rir_s=float(cfg.room.max_rir_s),
        field=str(cfg.noise.field),
    )

    room = sample_room(cfg.room, r_room)
    pose = sample_array_pose(room.size_m, cfg.array, r_place)
    traj = sample_trajectory(room.size_m, pose.origin_m, dur, cfg.source, r_place)
    mics_nominal = pose.to_room(array.positions_m)
    mics = mics_nominal + r_mic.normal(0.0, cfg.array.position_error_m, mics_nominal.shape)
    mics = np.clip(mics, 1e-3, room.size_m - 1e-3)

    speech, utterances = _speech_track(pool, n, fs, cfg.speech, r_speech)
    talker = render_source(speech, traj, mics, room, fs, r_render, opts, receiver_m=pose.origin_m)

    # Activity from the direct path at the array origin (dry signal delayed by the mean distance).
    dist = np.linalg.norm(traj.position(np.linspace(0, dur, 21)) - pose.origin_m, axis=1)
    shift = int(round(float(np.mean(dist)) / SPEED_OF_SOUND_M_S * fs))
    direct = np.concatenate([np.zeros(shift), speech])[:n]
    active, sample_mask = activity_labels(
        direct, fs, n_frames, frame_s, cfg.labels.vad_threshold_db, cfg.labels.active_min_fraction
    )
    p_talker = _power(talker, sample_mask) if sample_mask.any() else _power(talker)
    p_talker = max(p_talker, 1e-12)

    # Diffuse noise at the drawn SNR.
    kinds = list(cfg.noise.types)
    weights = np.array([cfg.noise.types[k] for k in kinds], dtype=np.float64)
    kind = kinds[int(r_noise.choice(len(kinds), p=weights / weights.sum()))]
    snr_db = float(r_noise.uniform(*cfg.noise.snr_db))
    noise = diffuse_noise(mics, n, fs, r_noise, _noise_source(kind, pool, fs, r_noise), field=cfg.noise.field)
    noise = noise.astype(np.float64) * np.sqrt(p_talker / 10.0 ** (snr_db / 10.0) / max(_power(noise), 1e-20))
    mix = talker + noise

    interferers: list[dict[str, Any]] = []
    draw_fan, draw_talker = r_int.random(), r_int.random()
    if draw_fan < cfg.interferers.fan_prob:
        p = _static_point(room, r_int, pose.origin_m)
        sig = _fan_signal(n, fs, r_int)
        img = render_source(sig, Trajectory(p, p.copy(), dur), mics, room, fs, r_int, opts, pose.origin_m)
        sir = float(r_int.uniform(*cfg.interferers.sir_db))
        img *= np.sqrt(p_talker / 10.0 ** (sir / 10.0) / max(_power(img), 1e-20))
        mix += img
        az, el = az_el_from_vector(pose.to_array(p[None, :])[0])
        interferers.append(
            {
                "kind": "fan",
                "position_m": [round(float(v), 3) for v in p],
                "sir_db": round(sir, 2),
                "azimuth_deg": round(float(np.rad2deg(az)), 2),
                "elevation_deg": round(float(np.rad2deg(el)), 2),
            }
        )
    if draw_talker < cfg.interferers.talker_prob:
        traj2 = sample_trajectory(room.size_m, pose.origin_m, dur, cfg.source, r_int)
        sig, utt2 = _speech_track(pool, n, fs, cfg.speech, r_int)
        img = render_source(sig, traj2, mics, room, fs, r_int, opts, pose.origin_m)
        sir = float(r_int.uniform(*cfg.interferers.sir_db))
        img *= np.sqrt(p_talker / 10.0 ** (sir / 10.0) / max(_power(img), 1e-20))
        mix += img
        interferers.append(
            {
                "kind": "talker",
                "trajectory": traj2.to_dict(),
                "sir_db": round(sir, 2),
                "utterances": [u["id"] for u in utt2],
            }
        )

    # Microphone imperfections and level.
    gains_db = r_mic.normal(0.0, cfg.array.gain_error_db, array.n_mics)
    mix *= 10.0 ** (gains_db / 20.0)[None, :]
    peak_dbfs = float(r_mic.uniform(*cfg.level.peak_dbfs))
    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    if peak > 0:
        mix *= 10.0 ** (peak_dbfs / 20.0) / peak
    self_noise_dbfs = float(r_mic.uniform(*cfg.array.self_noise_dbfs))
    mix += r_mic.standard_normal(mix.shape) * 10.0 ** (self_noise_dbfs / 20.0)
    audio = np.clip(mix, -1.0, 1.0 - 2.0**-15).astype(np.float32)

    t, az, el = direction_labels(traj, pose, n_frames, frame_s)
    labels = Labels(t, az, el, active, frame_s)
    metadata: dict[str, Any] = {
        "seed": int(seed),
        "duration_s": dur,
        "sample_rate_hz": fs,
        "array": array.name,
        "room": room.to_dict(),
        "array_pose": {
            "origin_m": [round(float(v), 3) for v in pose.origin_m],
            "yaw_deg": round(float(np.rad2deg(pose.yaw_rad)), 2),
        },
        "trajectory": traj.to_dict(),
        "utterances": utterances,
        "noise": {"type": kind, "snr_db": round(snr_db, 2), "field": cfg.noise.field},
        "interferers": interferers,
        "mic_gain_db": [round(float(g), 3) for g in gains_db],
        "peak_dbfs": round(peak_dbfs, 2),
        "self_noise_dbfs": round(self_noise_dbfs, 2),
        "active_fraction": round(float(active.mean()) if active.size else 0.0, 3),
    }
    return Scene(audio, fs, labels, metadata)
